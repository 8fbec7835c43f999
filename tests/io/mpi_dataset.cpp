// Sharded input: each rank reads only its own contiguous block of trials of /counts in one
// collective MPI-IO read (parallel HDF5), for every integer type the format allows, chunked and
// contiguous; an error in one rank's block fails that rank alone and leaves no rank waiting.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "spikevi/io/dataset.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "support/mpi_test.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::world;
using Dims = Hdf5File::Dims;
using ElementType = Hdf5File::ElementType;

constexpr std::size_t kBins = 3;
constexpr std::size_t kNeurons = 2;

// A directory that every rank names alike (rank 0's pid, broadcast, and a per-test number),
// made by rank 0 and removed by it once every rank is done with it. The ranks of a ctest run
// share one node, hence one temp directory.
class SharedDir {
 public:
  SharedDir() {
    static int made = 0;
    double pid = static_cast<double>(::getpid());
    world().broadcast(std::span<double>(&pid, 1), 0);
    path_ = std::filesystem::temp_directory_path() /
            ("spikevi-mpi-dataset-" + std::to_string(static_cast<long long>(pid)) + "-" +
             std::to_string(made++));
    if (world().is_root()) std::filesystem::create_directories(path_);
    world().barrier();
  }
  ~SharedDir() {
    world().barrier();
    std::error_code ignored;
    if (world().is_root()) std::filesystem::remove_all(path_, ignored);
  }
  SharedDir(const SharedDir&) = delete;
  SharedDir& operator=(const SharedDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// This rank's share of `trials`: [trials * r / P, trials * (r + 1) / P).
struct Block {
  int first = 0;
  int count = 0;
};

Block own_block(int trials) {
  const int rank = world().rank();
  const int size = world().size();
  const int first = trials * rank / size;
  return {first, trials * (rank + 1) / size - first};
}

// The largest value of each stored type (2^53 for int64: exact as a double), so that the
// counts fill the top of every type's range (uint8 above 127, uint16 above 255, ...).
std::int64_t largest(ElementType type) {
  switch (type) {
    case ElementType::kUint8:
      return 255;
    case ElementType::kUint16:
      return 65535;
    case ElementType::kInt32:
      return std::numeric_limits<std::int32_t>::max();
    default:
      return std::int64_t{1} << 53;
  }
}

// Distinct for every (trial, bin, neuron) of up to 8 trials, and within the stored type.
std::int64_t expected_count(std::size_t trial, std::size_t bin, std::size_t neuron,
                            ElementType type) {
  return largest(type) - 3 * static_cast<std::int64_t>((trial * kBins + bin) * kNeurons + neuron);
}

std::vector<std::int64_t> expected_counts(std::size_t first, std::size_t count, ElementType type) {
  std::vector<std::int64_t> values;
  for (std::size_t k = first; k < first + count; ++k)
    for (std::size_t t = 0; t < kBins; ++t)
      for (std::size_t n = 0; n < kNeurons; ++n) values.push_back(expected_count(k, t, n, type));
  return values;
}

// Rank 0 writes a minimal file (/counts and bin_width_s) while the others wait.
void write_counts(const std::string& path, std::size_t trials, ElementType stored, bool chunked,
                  const std::vector<std::int64_t>& counts) {
  if (world().is_root()) {
    Hdf5File file = Hdf5File::create(path);
    file.write_int64("/counts", counts, {trials, kBins, kNeurons},
                     chunked ? Dims{1, kBins, kNeurons} : Dims{}, stored);
    file.write_double_attribute("/", "bin_width_s", 0.01);
    file.close();
  }
  world().barrier();
}

ReadOptions collective_read(const Block& block) {
  return {.first_trial = block.first,
          .trial_count = block.count,
          .read_truth = false,
          .collective = true};
}

struct Layout {
  std::string name;
  ElementType stored;
  bool chunked;
  int trials;  // 3: with 4 ranks, rank 0 holds no trial
};

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name; }

class CollectiveCounts : public ::testing::TestWithParam<Layout> {};

TEST_P(CollectiveCounts, EachRankReadsItsOwnBlockCollectively) {
  const Layout& layout = GetParam();
  const auto trials = static_cast<std::size_t>(layout.trials);
  SharedDir dir;
  const std::string path = dir.file("counts.h5");
  write_counts(path, trials, layout.stored, layout.chunked,
               expected_counts(0, trials, layout.stored));
  const Block block = own_block(layout.trials);
  const auto first = static_cast<std::size_t>(block.first);
  const auto count = static_cast<std::size_t>(block.count);

  // The Hdf5File level: the raw block, and how HDF5 says it read it.
  std::vector<std::int64_t> raw;
  Hdf5File::CollectiveRead how;
  {
    Hdf5File file = Hdf5File::open_read(path, {.mpi_io = true});
    raw = file.read_integers_collective("/counts", first, count);
    how = file.last_collective_read();
    file.close();
  }
  EXPECT_EQ(raw, expected_counts(first, count, layout.stored));

  const Dataset data = read_dataset(path, collective_read(block));
  EXPECT_EQ(data.trials, layout.trials);
  EXPECT_EQ(data.first_trial, block.first);
  ASSERT_EQ(data.held(), block.count);
  for (std::size_t k = 0; k < count; ++k)
    for (std::size_t t = 0; t < kBins; ++t)
      for (std::size_t n = 0; n < kNeurons; ++n)
        EXPECT_EQ(data.counts[k](n, t), expected_count(first + k, t, n, layout.stored))
            << "trial " << first + k << " bin " << t << " neuron " << n;

  // With several ranks HDF5 must report a collective read on every rank, those without trials
  // (3 trials on 4 ranks) included. With one rank HDF5 1.10.8 reports the same ("chunk
  // collective" / "contiguous collective": it does not treat a communicator of one apart), so
  // the check holds for size 1 too.
  EXPECT_TRUE(how.collective) << "rank " << world().rank() << ": I/O mode " << how.io_mode
                              << ", no-collective cause: " << how.no_collective_cause;
  EXPECT_EQ(how.io_mode, layout.chunked ? "chunk collective" : "contiguous collective");
  EXPECT_EQ(how.no_collective_cause, "");
  EXPECT_TRUE(data.counts_read_collectively) << "rank " << world().rank();
}

std::vector<Layout> layouts() {
  const std::pair<ElementType, std::string> types[] = {{ElementType::kUint8, "Uint8"},
                                                       {ElementType::kUint16, "Uint16"},
                                                       {ElementType::kInt32, "Int32"},
                                                       {ElementType::kInt64, "Int64"}};
  std::vector<Layout> out;
  for (const auto& [type, name] : types)
    for (const bool chunked : {true, false})
      for (const int trials : {3, 8})
        out.push_back(
            {name + (chunked ? "Chunked" : "Contiguous") + std::to_string(trials) + "Trials", type,
             chunked, trials});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Dataset, CollectiveCounts, ::testing::ValuesIn(layouts()),
                         [](const auto& test) { return test.param.name; });

// The InputError message read_dataset throws on this rank ("" when it returns).
std::string read_error(const std::string& path, const ReadOptions& options,
                       Dataset* out = nullptr) {
  try {
    const Dataset data = read_dataset(path, options);
    if (out != nullptr) *out = data;
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

// Every rank got past its read: none was left waiting in a collective call.
void expect_every_rank_returned() {
  double returned = 1.0;
  world().allreduce_sum(std::span<double>(&returned, 1));
  EXPECT_EQ(returned, world().size());
}

TEST(CollectiveRead, ANegativeCountFailsOnlyTheRankThatHoldsIt) {
  SharedDir dir;
  const std::string path = dir.file("negative.h5");
  constexpr int kTrials = 8;
  std::vector<std::int64_t> counts = expected_counts(0, kTrials, ElementType::kInt32);
  counts[((kTrials - 1) * kBins + 1) * kNeurons + 0] = -3;  // trial 7, bin 1, neuron 0
  write_counts(path, kTrials, ElementType::kInt32, true, counts);

  Dataset data;
  const Block block = own_block(kTrials);
  const std::string message = read_error(path, collective_read(block), &data);
  expect_every_rank_returned();
  if (world().rank() == world().size() - 1) {
    EXPECT_EQ(message, path + ": /counts[7,1,0] = -3: counts must be non-negative");
  } else {
    EXPECT_EQ(message, "");
    EXPECT_EQ(data.held(), block.count);
    EXPECT_TRUE(data.counts_read_collectively);
  }
}

TEST(CollectiveRead, TrialsOutsideTheFileFailOnlyTheRankThatAskedForThem) {
  SharedDir dir;
  const std::string path = dir.file("outside.h5");
  constexpr int kTrials = 4;
  write_counts(path, kTrials, ElementType::kUint16, false,
               expected_counts(0, kTrials, ElementType::kUint16));
  const bool last = world().rank() == world().size() - 1;
  const Block block = last ? Block{kTrials, 1} : own_block(kTrials);
  const std::string message = read_error(path, collective_read(block));
  expect_every_rank_returned();
  if (last)
    EXPECT_EQ(message, path + ": /counts: trials [4, 5) requested, the file has 4");
  else
    EXPECT_EQ(message, "");
}

TEST(CollectiveRead, AMetadataErrorFailsEveryRankAlike) {
  SharedDir dir;
  const std::string path = dir.file("no_bin_width.h5");
  if (world().is_root()) {
    Hdf5File file = Hdf5File::create(path);
    file.write_int64("/counts", expected_counts(0, 4, ElementType::kInt64), {4, kBins, kNeurons},
                     {1, kBins, kNeurons});
  }
  world().barrier();
  const std::string message = read_error(path, collective_read(own_block(4)));
  expect_every_rank_returned();
  EXPECT_EQ(message, path + ": /counts: attribute bin_width_s is missing (on /counts and /)");
  EXPECT_EQ(read_error(dir.file("missing.h5"), collective_read(own_block(4))),
            dir.file("missing.h5") + ": no such file");
}

// Equal element by element, NaN equal to NaN.
bool same(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         ((a.array() == b.array()) || (a.array().isNaN() && b.array().isNaN())).all();
}

bool same_trials(const std::vector<Eigen::MatrixXd>& a, const std::vector<Eigen::MatrixXd>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (!same(a[k], b[k])) return false;
  return true;
}

// A complete data set with ragged trials, a continuous modality, inputs, a split and truth,
// the same on every rank.
Dataset complete_dataset() {
  std::mt19937_64 rng(11);
  const std::vector<int> lengths = {4, 2, 3, 4, 1, 4, 2};
  Dataset data;
  data.trials = static_cast<int>(lengths.size());
  data.bins = 4;
  data.neurons = 3;
  data.bin_width_s = 0.025;
  data.trial_lengths = lengths;
  for (int length : lengths) {
    data.counts.push_back(
        (testing::random_normal(data.neurons, length, rng).array().abs() * 3).round().matrix());
    Eigen::MatrixXd behaviour = testing::random_normal(2, length, rng);
    behaviour(0, 0) = std::numeric_limits<double>::quiet_NaN();
    data.continuous["behaviour"].push_back(behaviour);
    data.inputs.push_back(testing::random_normal(1, length, rng));
  }
  data.split = Split{{0, 1, 3, 4, 6}, {2, 5}, {1}, data.neurons};
  Truth truth;
  truth.C = testing::random_normal(data.neurons, 2, rng);
  truth.d = testing::random_normal(data.neurons, 1, rng);
  truth.A = 0.9 * Eigen::MatrixXd::Identity(2, 2);
  truth.b = testing::random_normal(2, 1, rng);
  truth.Q = testing::random_spd(2, rng);
  truth.mu0 = testing::random_normal(2, 1, rng);
  truth.Sigma0 = testing::random_spd(2, rng);
  for (int length : lengths) {
    truth.latents.push_back(testing::random_normal(2, length, rng));
    truth.rates.push_back(testing::random_normal(data.neurons, length, rng).array().exp().matrix());
  }
  data.truth = truth;
  return data;
}

TEST(CollectiveRead, ReadsEveryPartOfTheBlockAsASerialReadDoes) {
  SharedDir dir;
  const std::string path = dir.file("complete.h5");
  const Dataset written = complete_dataset();
  if (world().is_root()) write_dataset(path, written);
  world().barrier();
  const Block block = own_block(written.trials);
  ReadOptions options{.first_trial = block.first, .trial_count = block.count, .collective = true};
  const Dataset parallel = read_dataset(path, options);
  options.collective = false;
  const Dataset serial = read_dataset(path, options);  // independent sec2 read of the same block

  EXPECT_TRUE(parallel.counts_read_collectively);
  EXPECT_FALSE(serial.counts_read_collectively);
  EXPECT_EQ(parallel.first_trial, block.first);
  EXPECT_EQ(parallel.held(), block.count);
  EXPECT_EQ(parallel.trial_lengths, written.trial_lengths);
  EXPECT_EQ(parallel.bin_width_s, written.bin_width_s);
  EXPECT_TRUE(same_trials(parallel.counts, serial.counts));
  EXPECT_TRUE(same_trials(parallel.inputs, serial.inputs));
  ASSERT_EQ(parallel.continuous.size(), 1u);
  EXPECT_TRUE(same_trials(parallel.continuous.at("behaviour"), serial.continuous.at("behaviour")));
  ASSERT_TRUE(parallel.split && parallel.truth);
  EXPECT_EQ(parallel.split->test_trials, written.split->test_trials);
  EXPECT_TRUE(same(parallel.truth->C, written.truth->C));
  EXPECT_TRUE(same_trials(parallel.truth->latents, serial.truth->latents));
  EXPECT_TRUE(same_trials(parallel.truth->rates, serial.truth->rates));
  for (int k = 0; k < parallel.held(); ++k)
    EXPECT_TRUE(same(parallel.trial_counts(block.first + k), written.counts[block.first + k]));
}

}  // namespace
}  // namespace spikevi
