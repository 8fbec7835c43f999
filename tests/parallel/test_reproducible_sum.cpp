// Exact, order-independent summation (DESIGN.md §4): exact answers where they exist, bitwise
// equality over orders and groupings, and the accuracy bound of the header.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "spikevi/parallel/reproducible_sum.hpp"

namespace spikevi {
namespace {

__extension__ typedef __int128 Int128;

constexpr double kMax = std::numeric_limits<double>::max();
constexpr double kMinNormal = std::numeric_limits<double>::min();
constexpr double kMinSubnormal = std::numeric_limits<double>::denorm_min();

std::uint64_t bits_of(double x) { return std::bit_cast<std::uint64_t>(x); }

double sum_of(const std::vector<double>& values) {
  ReproducibleSum sum(1);
  for (const double value : values) sum.add(0, value);
  return sum.value(0);
}

// Finite values with magnitudes log-uniform in [1e-300, 1e300] and random signs.
std::vector<double> wide_values(std::size_t count, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> decade(-300.0, 300.0);
  std::bernoulli_distribution negative(0.5);
  std::vector<double> values(count);
  for (double& value : values) value = (negative(rng) ? -1.0 : 1.0) * std::pow(10.0, decade(rng));
  return values;
}

// The sum of the component values after depositing `values` (component i % components) into
// accumulators in a random order, then merging them pairwise in a random tree.
std::vector<double> shuffled_grouped_sum(std::vector<double> values, std::size_t components,
                                         std::size_t accumulators, std::mt19937_64& rng) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<ReproducibleSum> partial(accumulators, ReproducibleSum(components));
  std::uniform_int_distribution<std::size_t> pick(0, accumulators - 1);
  for (const std::size_t i : order) partial[pick(rng)].add(i % components, values[i]);
  while (partial.size() > 1) {
    std::uniform_int_distribution<std::size_t> which(0, partial.size() - 1);
    const std::size_t from = which(rng);
    std::size_t into = which(rng);
    while (into == from) into = which(rng);
    partial[into].merge(partial[from]);
    partial.erase(partial.begin() + static_cast<std::ptrdiff_t>(from));
  }
  return partial.front().values();
}

TEST(ReproducibleSum, CancelsLargeTermsExactly) {
  EXPECT_EQ(sum_of({1e16, 1.0, -1e16}), 1.0);
  EXPECT_EQ(sum_of({1e16, -1e16, 1.0}), 1.0);
  EXPECT_EQ(sum_of({0x1p60, 0x1p-3, -0x1p60, 0x1p-4}), 0.1875);
}

TEST(ReproducibleSum, StartsEmptyAtPositiveZero) {
  ReproducibleSum sum(3);
  EXPECT_EQ(sum.size(), 3u);
  for (const double value : sum.values()) EXPECT_EQ(bits_of(value), bits_of(0.0));
  EXPECT_EQ(ReproducibleSum().size(), 0u);
}

TEST(ReproducibleSum, ManyCopiesOfOneValueRoundTheExactMultiple) {
  // x = m 2^e exactly, so n copies sum to (n m) 2^e, which the integer conversion rounds once.
  for (const double x : {0.1, -0.7, 1.0 / 3.0, 123456.789, 1e-200, 3e250}) {
    int e = 0;
    const double fraction = std::frexp(x, &e);
    const auto m = static_cast<std::int64_t>(std::ldexp(fraction, 53));
    for (const std::int64_t n : {10, 1000, 65537}) {
      ReproducibleSum sum(1);
      for (std::int64_t i = 0; i < n; ++i) sum.add(0, x);
      EXPECT_EQ(sum.value(0), std::ldexp(static_cast<double>(Int128{n} * m), e - 53))
          << x << " x " << n;
    }
  }
  EXPECT_EQ(sum_of(std::vector<double>(10, 0.1)), 1.0);  // plain summation gives 1 - 2^-53
}

TEST(ReproducibleSum, MatchesTheCorrectlyRoundedExactSum) {
  // Values m 2^e with e in [-20, 0] all lie inside the window of the largest, so the sum is
  // exact: compare with the exact Int128 sum in units of 2^-20, rounded once by the compiler.
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::int64_t> significand(0, (std::int64_t{1} << 53) - 1);
  std::uniform_int_distribution<int> exponent(-20, 0);
  for (int trial = 0; trial < 50; ++trial) {
    ReproducibleSum sum(1);
    Int128 exact = 0;
    for (int i = 0; i < 1000; ++i) {
      // Pairs of nearly equal opposite values make many of the totals cancel deeply.
      const std::int64_t m = significand(rng);
      const int e = exponent(rng);
      const std::int64_t sign = (trial % 2 == 0 || i % 2 == 0) ? 1 : -1;
      const std::int64_t signed_m = sign * (trial % 4 == 1 && i % 2 == 1 ? m / 4096 : m);
      sum.add(0, std::ldexp(static_cast<double>(signed_m), e));
      exact += static_cast<Int128>(signed_m) << (e + 20);
    }
    EXPECT_EQ(sum.value(0), std::ldexp(static_cast<double>(exact), -20)) << "trial " << trial;
  }
}

TEST(ReproducibleSum, RoundsTiesToEven) {
  EXPECT_EQ(sum_of({0x1p53, 1.0}), 0x1p53);
  EXPECT_EQ(sum_of({0x1p53, 3.0}), 0x1p53 + 4.0);
  EXPECT_EQ(sum_of({0x1p53, 1.0, 0x1p-30}), 0x1p53 + 2.0);
  EXPECT_EQ(sum_of({-0x1p53, -1.0, -0x1p-30}), -0x1p53 - 2.0);
}

TEST(ReproducibleSum, PropagatesCarriesAndBorrowsBetweenLimbs) {
  // Digits 0xFFFFFFFF: the low limbs grow far past 2^32 and must carry when read.
  constexpr std::int64_t kCopies = 100000;
  const double all_ones = 0x1p32 - 1.0;       // one full digit
  const double two_digits = 0x1p64 - 0x1p11;  // bits 11..63: digits 0xFFFFF800, 0xFFFFFFFF
  ReproducibleSum sum(3);
  sum.add(2, 0x1p64);  // sets the window to bins 0..2 first
  for (std::int64_t i = 0; i < kCopies; ++i) {
    sum.add(0, all_ones);
    sum.add(1, two_digits);
    sum.add(2, -all_ones);
  }
  const Int128 two_digit_units = (Int128{1} << 53) - 1;  // two_digits = units 2^11
  EXPECT_EQ(sum.value(0), static_cast<double>(kCopies) * all_ones);
  EXPECT_EQ(sum.value(1), std::ldexp(static_cast<double>(kCopies * two_digit_units), 11));
  EXPECT_EQ(sum.value(2), static_cast<double>((Int128{1} << 64) - kCopies * Int128{0xFFFFFFFF}));
  // Borrows across two limbs, and rounding right below a limb boundary.
  EXPECT_EQ(sum_of({0x1p64, -2048.0}), 0x1p64 - 2048.0);
  EXPECT_EQ(sum_of({0x1p64, -1024.0}), 0x1p64);  // tie: to even
  EXPECT_EQ(sum_of({0x1p64, -1024.0, -1.0}), 0x1p64 - 2048.0);
  EXPECT_EQ(sum_of({-0x1p64, 1024.0, 1.0}), -0x1p64 + 2048.0);
}

TEST(ReproducibleSum, HandlesNegativeTotals) {
  EXPECT_EQ(sum_of({-3.5, 1.25}), -2.25);
  EXPECT_EQ(sum_of({1e-300, -0x1p100, 0x1p99}), -0x1p99);
  EXPECT_EQ(sum_of({-0x1p-1074, -0x1p-1074}), -0x1p-1073);
}

TEST(ReproducibleSum, SumsSubnormalsExactly) {
  EXPECT_EQ(sum_of(std::vector<double>(1000, kMinSubnormal)), std::ldexp(1000.0, -1074));
  EXPECT_EQ(sum_of({kMinNormal, -kMinSubnormal}), std::nextafter(kMinNormal, 0.0));
  EXPECT_EQ(sum_of({kMinNormal / 2, kMinNormal / 2}), kMinNormal);
  EXPECT_EQ(sum_of({0x1p-1000, kMinSubnormal, -0x1p-1000}), kMinSubnormal);
}

TEST(ReproducibleSum, GivesPositiveZeroForZeroTotals) {
  EXPECT_EQ(bits_of(sum_of({-0.0})), bits_of(0.0));
  EXPECT_EQ(bits_of(sum_of({-0.0, 0.0, -0.0})), bits_of(0.0));
  EXPECT_EQ(bits_of(sum_of({-1.5, 1.5})), bits_of(0.0));
  EXPECT_EQ(bits_of(sum_of({kMinSubnormal, -kMinSubnormal})), bits_of(0.0));
}

TEST(ReproducibleSum, RoundsOverflowingTotalsToInfinityButSumsThroughThem) {
  EXPECT_EQ(sum_of({kMax, kMax, -kMax}), kMax);
  EXPECT_EQ(sum_of({kMax, kMax}), std::numeric_limits<double>::infinity());
  EXPECT_EQ(sum_of({-kMax, -kMax}), -std::numeric_limits<double>::infinity());
}

TEST(ReproducibleSum, GivesTheSameWhenTheWindowMovesLate) {
  // 1 stays in the window of 2^70 (bins 0..2) but drops below that of 2^100 (bins 1..3), in
  // every order.
  for (const double big : {0x1p70, 0x1p100}) {
    const double expected = big == 0x1p70 ? 1.0 : 0.0;
    EXPECT_EQ(sum_of({1.0, big, -big}), expected) << big;
    EXPECT_EQ(sum_of({big, 1.0, -big}), expected) << big;
    EXPECT_EQ(sum_of({big, -big, 1.0}), expected) << big;
  }
  // Many small values first, then a much larger one; and the reverse.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<double> values;
  for (int i = 0; i < 1000; ++i) values.push_back(unit(rng) * 1e-12);
  values.push_back(3.0e9);
  values.push_back(-7.0e14);
  const double small_first = sum_of(values);
  std::reverse(values.begin(), values.end());
  EXPECT_EQ(bits_of(sum_of(values)), bits_of(small_first));
  // The small values lie below the final window (bins -1..1, base 2^-32): all are dropped.
  EXPECT_EQ(small_first, 3.0e9 - 7.0e14);
}

TEST(ReproducibleSum, IsIndependentOfOrderAndGrouping) {
  constexpr std::size_t kComponents = 3;
  std::mt19937_64 rng(2024);
  std::vector<double> values = wide_values(10000, rng);
  // Component 1: values of one scale that mostly cancel; component 2: tiny and subnormal ones.
  std::normal_distribution<double> normal(0.0, 1.0);
  for (std::size_t i = 1; i < values.size(); i += kComponents) values[i] = normal(rng) * 1e5;
  for (std::size_t i = 2; i < values.size(); i += kComponents)
    values[i] = normal(rng) * std::ldexp(1.0, -1000 - static_cast<int>(i % 70));
  const std::vector<double> reference = shuffled_grouped_sum(values, kComponents, 1, rng);
  for (const std::size_t accumulators : {1, 2, 3, 7, 16, 64}) {
    for (int repeat = 0; repeat < 3; ++repeat) {
      const std::vector<double> sum = shuffled_grouped_sum(values, kComponents, accumulators, rng);
      for (std::size_t c = 0; c < kComponents; ++c)
        EXPECT_EQ(bits_of(sum[c]), bits_of(reference[c])) << accumulators << " component " << c;
    }
  }
  for (const double total : reference) EXPECT_TRUE(std::isfinite(total));
}

TEST(ReproducibleSum, IsAccurateOnWellConditionedData) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(0.5, 2.0);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::bernoulli_distribution negative(0.1);
  ReproducibleSum sum(1);
  long double kahan = 0.0L;
  long double compensation = 0.0L;
  for (int i = 0; i < 10000; ++i) {
    const double x = (negative(rng) ? -1.0 : 1.0) * std::ldexp(mantissa(rng), exponent(rng));
    sum.add(0, x);
    const long double y = static_cast<long double>(x) - compensation;
    const long double t = kahan + y;
    compensation = (t - kahan) - y;
    kahan = t;
  }
  const double reference = static_cast<double>(kahan);
  EXPECT_LT(std::abs(sum.value(0) - reference), 1e-15 * std::abs(reference));
}

TEST(ReproducibleSum, MakesOnlyTheComponentsWithNonFiniteDepositsNaN) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ReproducibleSum sum(4);
  sum.add(std::vector<double>{1.0, std::nan(""), kInf, -kInf});
  sum.add(std::vector<double>{2.0, 1.0, 1.0, kInf});
  EXPECT_EQ(sum.value(0), 3.0);
  for (std::size_t c = 1; c < 4; ++c) EXPECT_TRUE(std::isnan(sum.value(c))) << c;

  ReproducibleSum finite(4);
  finite.add(std::vector<double>{1.0, 2.0, 3.0, 4.0});
  finite.merge(sum);
  EXPECT_EQ(finite.value(0), 4.0);
  for (std::size_t c = 1; c < 4; ++c) EXPECT_TRUE(std::isnan(finite.value(c))) << c;
  sum.merge(ReproducibleSum(4));
  for (std::size_t c = 1; c < 4; ++c) EXPECT_TRUE(std::isnan(sum.value(c))) << c;
}

TEST(ReproducibleSum, AddsSpansFromAFirstComponent) {
  ReproducibleSum sum(5);
  sum.add(std::vector<double>{1.0, 2.0}, 3);
  sum.add(std::vector<double>{0.5, 0.5, 0.5, 0.5, 0.5});
  EXPECT_EQ(sum.values(), (std::vector<double>{0.5, 0.5, 0.5, 1.5, 2.5}));
  sum.clear();
  EXPECT_EQ(sum.values(), std::vector<double>(5, 0.0));
  sum.add(4, -2.0);
  EXPECT_EQ(sum.value(4), -2.0);
}

TEST(ReproducibleSum, MergeRequiresEqualSizes) {
  ReproducibleSum sum(3);
  EXPECT_THROW(sum.merge(ReproducibleSum(2)), std::invalid_argument);
}

TEST(ReproducibleSum, SerialAllreduceLeavesTheSumsUnchanged) {
  std::mt19937_64 rng(3);
  const std::vector<double> values = wide_values(100, rng);
  ReproducibleSum sum(10);
  for (std::size_t i = 0; i < values.size(); ++i) sum.add(i % 10, values[i]);
  const std::vector<double> before = sum.values();
  SerialCommunicator serial;
  sum.allreduce(serial);
  const std::vector<double> after = sum.values();
  for (std::size_t c = 0; c < before.size(); ++c) EXPECT_EQ(bits_of(after[c]), bits_of(before[c]));
}

}  // namespace
}  // namespace spikevi
