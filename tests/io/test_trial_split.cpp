#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/io/trial_split.hpp"

namespace spikevi {
namespace {

TEST(TrialSplit, SharesRoundAndKeepOneOnEachSide) {
  EXPECT_EQ(split_share(0.2, 450), 90);
  EXPECT_EQ(split_share(0.2, 35), 7);
  EXPECT_EQ(split_share(0.01, 10), 1);  // a positive share gets at least one
  EXPECT_EQ(split_share(0.99, 10), 9);  // and leaves at least one
  EXPECT_EQ(split_share(0.0, 10), 0);
  EXPECT_EQ(split_share(0.5, 1), 0);  // a single trial or neuron cannot be split
}

TEST(TrialSplit, PermutationIsOneAndReproducible) {
  const std::vector<int> order = split_permutation(7, 0, 50);
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(order, identity);
  EXPECT_EQ(split_permutation(7, 0, 50), order);
  EXPECT_NE(split_permutation(8, 0, 50), order);
  EXPECT_NE(split_permutation(7, 1, 50), order);  // trials and neurons draw apart
}

TEST(TrialSplit, RandomSplitPartitionsTrialsAndNeurons) {
  const Split split = random_split(40, 12, 0.25, 0.2, 3);
  EXPECT_EQ(split.test_trials.size(), 10u);
  EXPECT_EQ(split.train_trials.size(), 30u);
  EXPECT_EQ(split.heldout_neurons.size(), 2u);
  EXPECT_EQ(split.neurons, 12);
  std::vector<int> all = split.train_trials;
  all.insert(all.end(), split.test_trials.begin(), split.test_trials.end());
  std::sort(all.begin(), all.end());
  std::vector<int> identity(40);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(all, identity);
  EXPECT_TRUE(std::is_sorted(split.test_trials.begin(), split.test_trials.end()));
  // The first 10 of the seed's trial permutation are the test trials.
  std::vector<int> first = split_permutation(3, 0, 40);
  first.resize(10);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(split.test_trials, first);

  const Split none = random_split(40, 12, 0.0, 0.0, 3);
  EXPECT_TRUE(none.train_trials.empty() && none.test_trials.empty());
  EXPECT_TRUE(none.heldout_neurons.empty());
}

TEST(TrialSplit, LabelsGiveTheTrials) {
  const std::vector<std::string> labels{"train", "val", "test", "none", "train"};
  const Split split = labelled_split(labels, "split", 5, 0.2, 1);
  EXPECT_EQ(split.train_trials, (std::vector<int>{0, 4}));
  EXPECT_EQ(split.test_trials, (std::vector<int>{1, 2}));
  EXPECT_EQ(split.heldout_neurons.size(), 1u);
  EXPECT_THROW(labelled_split({"train", "train"}, "split", 5, 0.2, 1), ConfigError);
}

}  // namespace
}  // namespace spikevi
