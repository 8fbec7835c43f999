#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::TempDir;
using ElementType = Hdf5File::ElementType;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The message of the InputError that `action` throws ("" when it throws none).
template <class Action>
std::string input_error(Action action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

Eigen::MatrixXd random_counts(int rows, int cols, std::mt19937_64& rng) {
  std::poisson_distribution<int> poisson(2.5);
  Eigen::MatrixXd out(rows, cols);
  for (Eigen::Index i = 0; i < out.size(); ++i) out.data()[i] = poisson(rng);
  return out;
}

// A complete in-memory data set with ragged trials and every optional part of the format.
Dataset make_dataset(std::vector<int> lengths, int bins, int neurons) {
  std::mt19937_64 rng(7);
  const int dim = 2;
  Dataset data;
  data.trials = static_cast<int>(lengths.size());
  data.bins = bins;
  data.neurons = neurons;
  data.bin_width_s = 0.02;
  data.trial_lengths = lengths;
  for (int length : lengths) {
    data.counts.push_back(random_counts(neurons, length, rng));
    Eigen::MatrixXd behaviour = testing::random_normal(2, length, rng);
    behaviour(1, 0) = kNaN;  // a missing value
    data.continuous["behaviour"].push_back(behaviour);
    data.inputs.push_back(testing::random_normal(1, length, rng));
  }
  data.split = Split{{0, 2}, {1}, {neurons - 1}, neurons};
  Truth truth;
  truth.observation = "negative_binomial";
  truth.C = testing::random_normal(neurons, dim, rng);
  truth.d = testing::random_normal(neurons, 1, rng);
  truth.A = 0.9 * Eigen::MatrixXd::Identity(dim, dim);
  truth.b = testing::random_normal(dim, 1, rng);
  truth.Q = testing::random_spd(dim, rng);
  truth.mu0 = testing::random_normal(dim, 1, rng);
  truth.Sigma0 = testing::random_spd(dim, rng);
  truth.row_parameters["dispersion"] = Eigen::VectorXd::Constant(neurons, 3.0);
  truth.B = testing::random_normal(dim, 1, rng);
  truth.continuous["behaviour"] = {testing::random_normal(2, dim, rng),
                                   testing::random_normal(2, 1, rng), Eigen::Vector2d(0.1, 0.3)};
  for (int length : lengths) {
    truth.latents.push_back(testing::random_normal(dim, length, rng));
    truth.rates.push_back(testing::random_normal(neurons, length, rng).array().exp().matrix());
  }
  data.truth = truth;
  return data;
}

// Equal element by element, NaN equal to NaN.
bool same(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         ((a.array() == b.array()) || (a.array().isNaN() && b.array().isNaN())).all();
}

bool same_trials(const std::vector<Eigen::MatrixXd>& read,
                 const std::vector<Eigen::MatrixXd>& written, int first) {
  if (read.empty()) return false;
  for (std::size_t k = 0; k < read.size(); ++k)
    if (!same(read[k], written.at(first + k))) return false;
  return true;
}

void expect_same_truth(const Truth& read, const Truth& written, int first) {
  EXPECT_EQ(read.observation, written.observation);
  EXPECT_TRUE(same(read.C, written.C));
  EXPECT_TRUE(same(read.d, written.d));
  EXPECT_TRUE(same(read.A, written.A));
  EXPECT_TRUE(same(read.b, written.b));
  EXPECT_TRUE(same(read.B, written.B));
  EXPECT_TRUE(same(read.Q, written.Q));
  EXPECT_TRUE(same(read.mu0, written.mu0));
  EXPECT_TRUE(same(read.Sigma0, written.Sigma0));
  ASSERT_EQ(read.row_parameters.size(), written.row_parameters.size());
  for (const auto& [name, values] : written.row_parameters)
    EXPECT_TRUE(read.row_parameters.count(name) && same(read.row_parameters.at(name), values))
        << name;
  EXPECT_TRUE(same_trials(read.latents, written.latents, first));
  EXPECT_TRUE(same_trials(read.rates, written.rates, first));
  ASSERT_EQ(read.continuous.size(), written.continuous.size());
  for (const auto& [name, readout] : written.continuous) {
    ASSERT_EQ(read.continuous.count(name), 1u) << name;
    EXPECT_TRUE(same(read.continuous.at(name).W, readout.W)) << name;
    EXPECT_TRUE(same(read.continuous.at(name).e, readout.e)) << name;
    EXPECT_TRUE(same(read.continuous.at(name).R, readout.R)) << name;
  }
}

// Every field of the held trials [first, first + read.held()) agrees with `written`.
void expect_same(const Dataset& read, const Dataset& written, int first) {
  EXPECT_EQ(read.trials, written.trials);
  EXPECT_EQ(read.bins, written.bins);
  EXPECT_EQ(read.neurons, written.neurons);
  EXPECT_EQ(read.bin_width_s, written.bin_width_s);
  EXPECT_EQ(read.trial_lengths, written.trial_lengths);
  EXPECT_EQ(read.first_trial, first);
  EXPECT_TRUE(same_trials(read.counts, written.counts, first));
  EXPECT_TRUE(same_trials(read.inputs, written.inputs, first));
  ASSERT_EQ(read.continuous.size(), 1u);
  EXPECT_TRUE(
      same_trials(read.continuous.at("behaviour"), written.continuous.at("behaviour"), first));
  ASSERT_TRUE(read.split && read.truth);
  EXPECT_EQ(read.split->train_trials, written.split->train_trials);
  EXPECT_EQ(read.split->test_trials, written.split->test_trials);
  EXPECT_EQ(read.split->heldout_neurons, written.split->heldout_neurons);
  EXPECT_EQ(read.split->neurons, written.neurons);
  expect_same_truth(*read.truth, *written.truth, first);
}

TEST(Dataset, RoundTripsEveryFieldOfRaggedTrials) {
  TempDir dir;
  const Dataset written = make_dataset({6, 3, 5, 1, 6}, 6, 4);
  write_dataset(dir.file("d.h5"), written);
  const Dataset read = read_dataset(dir.file("d.h5"));
  EXPECT_EQ(read.path, dir.file("d.h5"));
  EXPECT_EQ(read.held(), 5);
  expect_same(read, written, 0);
  EXPECT_EQ(read.total_spikes(), written.total_spikes());
}

TEST(Dataset, ReadsASubRangeOfTrials) {
  TempDir dir;
  const Dataset written = make_dataset({6, 3, 5, 1, 6}, 6, 4);
  write_dataset(dir.file("d.h5"), written);
  const Dataset read = read_dataset(dir.file("d.h5"), {.first_trial = 1, .trial_count = 3});
  EXPECT_EQ(read.held(), 3);
  EXPECT_TRUE(read.holds(3));
  EXPECT_FALSE(read.holds(4));
  EXPECT_TRUE(same(read.trial_counts(2), written.counts[2]));
  expect_same(read, written, 1);
  EXPECT_EQ(read_dataset(dir.file("d.h5"), {.first_trial = 5}).held(), 0);
}

TEST(Dataset, ASerialReadIsNotCollective) {
  TempDir dir;
  write_dataset(dir.file("d.h5"), make_dataset({2, 2, 1}, 2, 3));
  EXPECT_FALSE(read_dataset(dir.file("d.h5")).counts_read_collectively);
  // Collective reads need MPI (tests/io/mpi_dataset.cpp); without it the open refuses.
  EXPECT_THROW(read_dataset(dir.file("d.h5"), {.collective = true}), std::logic_error);
}

TEST(Dataset, SkipsTruthAndContinuousWhenAsked) {
  TempDir dir;
  write_dataset(dir.file("d.h5"), make_dataset({2, 2, 1}, 2, 3));
  const Dataset read =
      read_dataset(dir.file("d.h5"), {.read_truth = false, .read_continuous = false});
  EXPECT_FALSE(read.truth.has_value());
  EXPECT_TRUE(read.continuous.empty());
  EXPECT_EQ(read.held(), 3);
}

TEST(Dataset, WritesPaddingAsZeroCountsAndNaNAndBinWidthTwice) {
  TempDir dir;
  write_dataset(dir.file("d.h5"), make_dataset({1, 2}, 2, 3));
  const Hdf5File file = Hdf5File::open_read(dir.file("d.h5"));
  EXPECT_EQ(file.shape("/counts"), (Hdf5File::Dims{2, 2, 3}));
  EXPECT_EQ(file.element_class("/counts"), Hdf5File::ElementClass::kInteger);
  const std::vector<std::int64_t> counts = file.read_integers("/counts", 0, 1);
  EXPECT_EQ(std::vector<std::int64_t>(counts.begin() + 3, counts.end()),
            std::vector<std::int64_t>(3, 0));
  EXPECT_TRUE(std::isnan(file.read_doubles("/continuous/behaviour")[2]));
  EXPECT_TRUE(std::isnan(file.read_doubles("/truth/latents")[2]));
  EXPECT_EQ(file.read_double_attribute("/counts", "bin_width_s"), 0.02);
  EXPECT_EQ(file.read_double_attribute("/", "bin_width_s"), 0.02);
  EXPECT_EQ(file.read_string_attribute("/truth", "observation"), "negative_binomial");
}

TEST(Dataset, WritesTheTruthOfInputsAndContinuousModalitiesUnderTheirNames) {
  TempDir dir;
  write_dataset(dir.file("d.h5"), make_dataset({1, 2}, 2, 3));
  const Hdf5File file = Hdf5File::open_read(dir.file("d.h5"));
  EXPECT_EQ(file.shape("/inputs"), (Hdf5File::Dims{2, 2, 1}));
  EXPECT_EQ(file.read_doubles("/inputs")[1], 0.0);  // padding of trial 0
  EXPECT_EQ(file.shape("/truth/B"), (Hdf5File::Dims{2, 1}));
  EXPECT_EQ(file.shape("/truth/behaviour_W"), (Hdf5File::Dims{2, 2}));
  EXPECT_EQ(file.shape("/truth/behaviour_e"), (Hdf5File::Dims{2}));
  EXPECT_EQ(file.read_doubles("/truth/behaviour_R"), (std::vector<double>{0.1, 0.3}));
}

TEST(Dataset, RoundTripsBernoulliTruthAndTruthWithoutOptionalParts) {
  TempDir dir;
  Dataset written = make_dataset({3, 2, 1}, 3, 2);
  written.truth->observation = "bernoulli";
  written.truth->row_parameters.clear();
  written.truth->B.resize(0, 0);
  written.truth->continuous.clear();
  write_dataset(dir.file("d.h5"), written);
  const Dataset read = read_dataset(dir.file("d.h5"));
  ASSERT_TRUE(read.truth);
  EXPECT_EQ(read.truth->observation, "bernoulli");
  EXPECT_EQ(read.truth->B.size(), 0);
  EXPECT_TRUE(read.truth->continuous.empty());
  EXPECT_TRUE(read.truth->row_parameters.empty());
  expect_same(read, written, 0);
}

TEST(Dataset, SplitKnowsItsHeldInNeurons) {
  const Split split{{}, {}, {3, 0}, 5};
  EXPECT_EQ(split.heldin_neurons(), (std::vector<int>{1, 2, 4}));
}

// Minimal files as a user's converter writes them: contiguous, any integer type, bin width on
// the root only, no trial_lengths.
class NarrowCounts : public ::testing::TestWithParam<ElementType> {};

TEST_P(NarrowCounts, ReadsContiguousCountsOfAnyIntegerType) {
  TempDir dir;
  const std::vector<std::int64_t> counts = {0, 1, 2, 3, 4, 5, 250, 7, 8, 9, 10, 11};
  {
    Hdf5File file = Hdf5File::create(dir.file("c.h5"));
    file.write_int64("/counts", counts, {2, 3, 2}, {}, GetParam());
    file.write_doubles("/continuous/dff", std::vector<double>(6, 0.5), {2, 3, 1}, {},
                       ElementType::kFloat32);
    file.write_double_attribute("/", "bin_width_s", 0.001);
  }
  const Dataset read = read_dataset(dir.file("c.h5"));
  EXPECT_EQ(read.trial_lengths, (std::vector<int>{3, 3}));
  EXPECT_EQ(read.bin_width_s, 0.001);
  Eigen::MatrixXd second(2, 3);
  second << 250, 8, 10, 7, 9, 11;  // neurons x bins of trial 1
  EXPECT_TRUE(same(read.counts[1], second));
  EXPECT_TRUE(same(read.continuous.at("dff")[0], Eigen::MatrixXd::Constant(1, 3, 0.5)));
  EXPECT_FALSE(read.split || read.truth);
}

INSTANTIATE_TEST_SUITE_P(Dataset, NarrowCounts,
                         ::testing::Values(ElementType::kUint8, ElementType::kUint16,
                                           ElementType::kInt32, ElementType::kInt64));

// ---- malformed files: every "Refused" case of docs/input-format.md ----

using Corrupt = std::function<void(const std::string& path)>;
using Edit = std::function<void(Hdf5File& file)>;
using Dims = Hdf5File::Dims;

struct Malformed {
  std::string name;
  Corrupt corrupt;  // applied to a valid file (3 trials, 4 bins, 3 neurons, D = 2)
  std::vector<std::string> expected;  // parts of the message, besides the path
};

Corrupt edit(Edit change) {
  return [change](const std::string& path) {
    Hdf5File file = Hdf5File::open_read_write(path);
    change(file);
  };
}

Corrupt all_of(std::vector<Edit> changes) {
  return edit([changes](Hdf5File& file) {
    for (const Edit& change : changes) change(file);
  });
}

Edit remove(const std::string& name) {
  return [name](Hdf5File& file) { file.remove(name); };
}

Edit put_integers(const std::string& name, std::vector<std::int64_t> values, Dims dims) {
  return [=](Hdf5File& file) {
    if (file.exists(name)) file.remove(name);
    file.write_int64(name, values, dims);
  };
}

Edit put_doubles(const std::string& name, std::vector<double> values, Dims dims) {
  return [=](Hdf5File& file) {
    if (file.exists(name)) file.remove(name);
    file.write_doubles(name, values, dims);
  };
}

// A [3, 4, inner] array of `fill` with `value` at flat position `at`.
std::vector<double> per_trial(std::size_t inner, std::size_t at, double value, double fill = 0.5) {
  std::vector<double> values(3 * 4 * inner, fill);
  values[at] = value;
  return values;
}

Edit put_bin_width(const std::string& object, double value) {
  return [=](Hdf5File& file) { file.write_double_attribute(object, "bin_width_s", value); };
}

Edit remove_bin_width(const std::string& object) {
  return [=](Hdf5File& file) { file.remove_attribute(object, "bin_width_s"); };
}

std::vector<Malformed> malformed_files() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::int64_t> negative(36, 1);
  negative[(1 * 4 + 2) * 3 + 0] = -2;
  std::vector<std::int64_t> above_largest_count(36, 1);
  above_largest_count.back() = (std::int64_t{1} << 53) + 1;
  return {
      {"MissingCounts", all_of({remove("/counts")}), {"/counts is missing"}},
      {"TwoDimensionalCounts",
       all_of({put_integers("/counts", std::vector<std::int64_t>(12), {3, 4})}),
       {"/counts has shape [3,4]", "3-D"}},
      {"FloatCounts",
       all_of({put_doubles("/counts", std::vector<double>(36, 1.0), {3, 4, 3})}),
       {"/counts has floating-point elements; it must hold integers"}},
      {"NegativeCount",
       all_of({put_integers("/counts", negative, {3, 4, 3})}),
       {"/counts[1,2,0] = -2: counts must be non-negative"}},
      {"ZeroTrials",
       all_of({put_integers("/counts", {}, {0, 4, 3})}),
       {"/counts has shape [0,4,3]", "no trials"}},
      {"ZeroBins", all_of({put_integers("/counts", {}, {3, 0, 3})}), {"/counts", "no bins"}},
      {"ZeroNeurons", all_of({put_integers("/counts", {}, {3, 4, 0})}), {"/counts", "no neurons"}},
      {"BinWidthMissing",
       all_of({remove_bin_width("/counts"), remove_bin_width("/")}),
       {"/counts: attribute bin_width_s is missing"}},
      {"BinWidthZero",
       all_of({put_bin_width("/counts", 0.0)}),
       {"/counts attribute bin_width_s = 0 "}},
      {"BinWidthNegativeOnRoot",
       all_of({remove_bin_width("/counts"), put_bin_width("/", -0.01)}),
       {"/ attribute bin_width_s = -0.01 must be finite and > 0"}},
      {"BinWidthNaN",
       all_of({put_bin_width("/", std::nan(""))}),
       {"/ attribute bin_width_s = nan"}},
      {"BinWidthsDisagree",
       all_of({put_bin_width("/", 0.01)}),
       {"/counts attribute bin_width_s = 0.02 differs from bin_width_s = 0.01 on /"}},
      {"TrialLengthsTooShort",
       all_of({put_integers("/trial_lengths", {4, 2}, {2})}),
       {"/trial_lengths has 2 entries; /counts has 3 trials"}},
      {"TrialLengthZero",
       all_of({put_integers("/trial_lengths", {4, 0, 3}, {3})}),
       {"/trial_lengths[1] = 0 is outside 1..4"}},
      {"TrialLengthPastBins",
       all_of({put_integers("/trial_lengths", {4, 2, 5}, {3})}),
       {"/trial_lengths[2] = 5 is outside 1..4"}},
      {"FloatTrialLengths",
       all_of({put_doubles("/trial_lengths", {4, 2, 3}, {3})}),
       {"/trial_lengths has floating-point elements"}},
      {"ContinuousInfinite",
       all_of({put_doubles("/continuous/behaviour", per_trial(2, (2 * 4 + 1) * 2 + 1, -inf),
                           {3, 4, 2})}),
       {"/continuous/behaviour[2,1,1] = -inf"}},
      {"ContinuousWrongBins",
       all_of({put_doubles("/continuous/behaviour", std::vector<double>(30, 0.5), {3, 5, 2})}),
       {"/continuous/behaviour has shape [3,5,2]", "[trials, bins] = [3,4]"}},
      {"InputsNaN",
       all_of({put_doubles("/inputs", per_trial(1, 3, std::nan("")), {3, 4, 1})}),
       {"/inputs[0,3,0] = nan: inputs must be finite"}},
      {"InputsWrongTrials",
       all_of({put_doubles("/inputs", std::vector<double>(8, 0.5), {2, 4, 1})}),
       {"/inputs has shape [2,4,1]"}},
      {"SplitTrialOutOfRange",
       all_of({put_integers("/split/train_trials", {0, 3}, {2})}),
       {"/split/train_trials[1] = 3 is outside 0..2"}},
      {"SplitTrialRepeated",
       all_of({put_integers("/split/test_trials", {1, 1}, {2})}),
       {"/split/test_trials[1] = 1 repeats an earlier entry"}},
      {"SplitListLongerThanItsRange",
       all_of({put_integers("/split/train_trials", {0, 1, 2, 0}, {4})}),
       {"/split/train_trials has 4 entries, more than the 3 distinct indices it can hold"}},
      {"SplitOverlap",
       all_of({put_integers("/split/test_trials", {2}, {1})}),
       {"/split/test_trials[0] = 2 is also in /split/train_trials"}},
      {"HeldOutNeuronOutOfRange",
       all_of({put_integers("/split/heldout_neurons", {-1}, {1})}),
       {"/split/heldout_neurons[0] = -1 is outside 0..2"}},
      {"AllNeuronsHeldOut",
       all_of({put_integers("/split/heldout_neurons", {2, 0, 1}, {3})}),
       {"/split/heldout_neurons holds all 3 neurons"}},
      {"ContinuousWithoutChannels",
       all_of({put_doubles("/continuous/behaviour", {}, {3, 4, 0})}),
       {"/continuous/behaviour has shape [3,4,0]: no channels"}},
      {"EmptyTrainTrials",
       all_of({put_integers("/split/train_trials", {}, {0})}),
       {"/split/train_trials is empty"}},
      {"EmptyTestTrialsBesideTrainTrials",
       all_of({put_integers("/split/test_trials", {}, {0})}),
       {"/split/test_trials is empty while /split/train_trials is given"}},
      {"CountAboveTheLargestAccepted",
       all_of({put_integers("/counts", above_largest_count, {3, 4, 3})}),
       {"/counts[2,3,2] = 9007199254740993: more than the largest count accepted, "
        "9007199254740992"}},
      {"CountsTooLargeToHold",
       edit([](Hdf5File& file) {
         for (const char* name : {"/counts", "/trial_lengths", "/split"}) file.remove(name);
         file.create_dataset("/counts", {1000000, 1000, 1000}, ElementType::kInt32, {1, 10, 1000});
         file.write_double_attribute("/counts", "bin_width_s", 0.02);
       }),
       {"/counts has shape [1000000,1000,1000]: holding 1000000 of its trials needs about",
        "TiB of memory"}},
      {"TruthWrongC",
       all_of({put_doubles("/truth/C", std::vector<double>(4, 1.0), {2, 2})}),
       {"/truth/C has shape [2,2]; expected [neurons, D] = [3,2]"}},
      {"TruthWrongLatents",
       all_of({put_doubles("/truth/latents", std::vector<double>(36, 1.0), {3, 4, 3})}),
       {"/truth/latents has shape [3,4,3]"}},
      {"TruthWithoutDispersion",
       all_of({remove("/truth/dispersion")}),
       {"/truth/dispersion is missing; observation = negative_binomial"}},
      {"TruthUnknownObservation",
       edit([](Hdf5File& file) { file.write_string_attribute("/truth", "observation", "gamma"); }),
       {"/truth attribute observation = 'gamma' must be poisson, negative_binomial, bernoulli "
        "or poisson-softplus"}},
      {"TruthWrongB",
       all_of({put_doubles("/truth/B", std::vector<double>(4, 1.0), {2, 2})}),
       {"/truth/B has shape [2,2]; expected [D, inputs] = [2,1]"}},
      {"TruthBWithoutInputs",
       all_of({remove("/inputs")}),
       {"/truth/B is given but /inputs is missing"}},
      {"TruthWrongContinuousW",
       all_of({put_doubles("/truth/behaviour_W", std::vector<double>(6, 1.0), {3, 2})}),
       {"/truth/behaviour_W has shape [3,2]; expected [channels, D] = [2,2]"}},
      {"TruthWrongContinuousR",
       all_of({put_doubles("/truth/behaviour_R", std::vector<double>(3, 1.0), {3})}),
       {"/truth/behaviour_R has shape [3]; expected [channels] = [2]"}},
      {"TruthContinuousPartlyMissing",
       all_of({remove("/truth/behaviour_e")}),
       {"/truth/behaviour_e is missing; the truth of /continuous/behaviour needs"}},
      {"TruncatedFile",
       [](const std::string& path) {
         std::filesystem::resize_file(path, std::filesystem::file_size(path) * 2 / 3);
       },
       {"not a readable HDF5 file"}},
      {"TextFile",
       [](const std::string& path) { std::ofstream(path) << "counts\n1 2 3\n"; },
       {"not a readable HDF5 file"}},
      {"MissingPath",
       [](const std::string& path) { std::filesystem::remove(path); },
       {"no such file"}},
  };
}

class MalformedFile : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedFile, IsRefusedNamingFileDatasetAndValue) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  write_dataset(path, make_dataset({4, 2, 3}, 4, 3));
  ASSERT_NO_THROW(read_dataset(path));
  GetParam().corrupt(path);
  const std::string message = input_error([&] { read_dataset(path); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  for (const std::string& part : GetParam().expected)
    EXPECT_NE(message.find(part), std::string::npos) << message << "\n lacks: " << part;
}

INSTANTIATE_TEST_SUITE_P(Dataset, MalformedFile, ::testing::ValuesIn(malformed_files()),
                         [](const auto& test) { return test.param.name; });

TEST(Dataset, LeavesEmptySplitListsOutSoThatTheFileReadsBack) {
  TempDir dir;
  Dataset data = make_dataset({4, 2, 3}, 4, 3);
  data.split->train_trials = {0, 1, 2};
  data.split->test_trials = {};
  write_dataset(dir.file("d.h5"), data);
  EXPECT_FALSE(Hdf5File::open_read(dir.file("d.h5")).exists("/split/test_trials"));
  const Dataset read = read_dataset(dir.file("d.h5"));
  ASSERT_TRUE(read.split.has_value());
  EXPECT_TRUE(read.split->test_trials.empty());
  EXPECT_EQ(training_trials(read), (std::vector<int>{0, 1, 2}));
}

TEST(Dataset, RefusesTrialsOutsideTheFile) {
  TempDir dir;
  write_dataset(dir.file("d.h5"), make_dataset({2, 2}, 2, 3));
  const std::string message =
      input_error([&] { read_dataset(dir.file("d.h5"), {.first_trial = 1, .trial_count = 2}); });
  EXPECT_NE(message.find("/counts: trials [1, 3) requested, the file has 2"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace spikevi
