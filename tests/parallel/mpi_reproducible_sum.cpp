// ReproducibleSum::allreduce under mpirun (1, 2, 4 ranks): the total of values shared out in
// contiguous blocks is bitwise the serial total, whatever the number of ranks (DESIGN.md §4).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "spikevi/parallel/reproducible_sum.hpp"
#include "support/mpi_test.hpp"

namespace spikevi {
namespace {

constexpr std::size_t kComponents = 5;

std::uint64_t bits_of(double x) { return std::bit_cast<std::uint64_t>(x); }

// The same list on every rank, both signs, by component: 0 magnitudes from 1e-300 to 1e300;
// 1 a cancelling mix of one scale; 2 subnormals; 3 and 4 scales that rise (1e-20 .. 1e20) or
// fall (1e200 .. 1e-200) along the list, so that the ranks' blocks have different windows.
std::vector<double> shared_values(std::size_t count) {
  std::mt19937_64 rng(20240611);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double sign = rng() % 2 == 0 ? 1.0 : -1.0;
    const double position = static_cast<double>(i) / static_cast<double>(count);
    double decade = 0.0;
    switch (i % kComponents) {
      case 0:
        decade = 600.0 * unit(rng) - 300.0;
        break;
      case 1:
        decade = 3.0 + 0.2 * normal(rng);
        break;
      case 2:
        values[i] = sign * std::ldexp(static_cast<double>(rng() >> 40), -1074);
        continue;
      case 3:
        decade = 40.0 * position - 20.0 + unit(rng);
        break;
      default:
        decade = 200.0 - 400.0 * position + unit(rng);
    }
    values[i] = sign * std::pow(10.0, decade);
  }
  return values;
}

// Positions [count rank / ranks, count (rank + 1) / ranks) of the list (as rank_share).
std::pair<std::size_t, std::size_t> block_of(std::size_t count, const Communicator& comm) {
  const auto rank = static_cast<std::size_t>(comm.rank());
  const auto ranks = static_cast<std::size_t>(comm.size());
  return {count * rank / ranks, count * (rank + 1) / ranks};
}

// values[i] in component i % kComponents, deposited on one accumulator in reverse order.
ReproducibleSum serial_sum(const std::vector<double>& values) {
  ReproducibleSum sum(kComponents);
  for (std::size_t i = values.size(); i-- > 0;) sum.add(i % kComponents, values[i]);
  return sum;
}

ReproducibleSum distributed_sum(const std::vector<double>& values, Communicator& comm) {
  ReproducibleSum sum(kComponents);
  const auto [begin, end] = block_of(values.size(), comm);
  for (std::size_t i = begin; i < end; ++i) sum.add(i % kComponents, values[i]);
  sum.allreduce(comm);
  return sum;
}

TEST(MpiReproducibleSum, AllreduceIsBitwiseTheSerialSum) {
  Communicator& world = testing::world();
  for (const std::size_t count : {3, 1000, 20011}) {  // 3: some ranks deposit nothing
    const std::vector<double> values = shared_values(count);
    const std::vector<double> expected = serial_sum(values).values();
    const std::vector<double> total = distributed_sum(values, world).values();
    for (std::size_t c = 0; c < kComponents; ++c) {
      EXPECT_EQ(bits_of(total[c]), bits_of(expected[c]))
          << "count " << count << " component " << c << ": " << total[c] << " vs " << expected[c];
    }
  }
}

TEST(MpiReproducibleSum, NaNOnTheLastRankReachesEveryRank) {
  Communicator& world = testing::world();
  const std::vector<double> values = shared_values(997);
  const std::vector<double> expected = serial_sum(values).values();
  ReproducibleSum sum(kComponents);
  const auto [begin, end] = block_of(values.size(), world);
  for (std::size_t i = begin; i < end; ++i) sum.add(i % kComponents, values[i]);
  if (world.rank() == world.size() - 1) sum.add(3, std::numeric_limits<double>::quiet_NaN());
  sum.allreduce(world);
  for (std::size_t c = 0; c < kComponents; ++c) {
    if (c == 3) {
      EXPECT_TRUE(std::isnan(sum.value(c))) << "rank " << world.rank();
    } else {
      EXPECT_EQ(bits_of(sum.value(c)), bits_of(expected[c])) << "component " << c;
    }
  }
}

TEST(MpiReproducibleSum, AllreduceOfNothingIsAllowed) {
  ReproducibleSum empty;
  empty.allreduce(testing::world());
  EXPECT_EQ(empty.size(), 0u);
}

}  // namespace
}  // namespace spikevi
