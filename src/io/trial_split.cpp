#include "spikevi/io/trial_split.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

constexpr std::uint64_t kTrialCode = 0;
constexpr std::uint64_t kNeuronCode = 1;

// The first `first` entries of a permutation and the rest, each ascending.
void cut(std::vector<int> order, int first, std::vector<int>& head, std::vector<int>& tail) {
  head.assign(order.begin(), order.begin() + first);
  tail.assign(order.begin() + first, order.end());
  std::sort(head.begin(), head.end());
  std::sort(tail.begin(), tail.end());
}

void draw_heldout_neurons(Split& split, int neurons, double heldout_fraction, std::uint64_t seed) {
  split.neurons = neurons;
  std::vector<int> heldin;
  cut(split_permutation(seed, kNeuronCode, neurons), split_share(heldout_fraction, neurons),
      split.heldout_neurons, heldin);
}

}  // namespace

int split_share(double fraction, int size) {
  if (size <= 1) return 0;
  const auto count = static_cast<int>(std::lround(fraction * size));
  return std::clamp(count, fraction > 0.0 ? 1 : 0, size - 1);
}

std::vector<int> split_permutation(std::uint64_t seed, std::uint64_t code, int size) {
  std::vector<int> order(static_cast<std::size_t>(std::max(size, 0)));
  std::iota(order.begin(), order.end(), 0);
  RandomStream stream({seed, RandomPurpose::kSplit}, {code, 0, 0});
  for (int i = size - 1; i > 0; --i) {
    const int j = std::min(i, static_cast<int>(stream.next_uniform() * (i + 1)));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

Split random_split(int trials, int neurons, double test_fraction, double heldout_fraction,
                   std::uint64_t seed) {
  Split split;
  const int tested = split_share(test_fraction, trials);
  if (tested > 0)
    cut(split_permutation(seed, kTrialCode, trials), tested, split.test_trials, split.train_trials);
  draw_heldout_neurons(split, neurons, heldout_fraction, seed);
  return split;
}

Split labelled_split(const std::vector<std::string>& labels, const std::string& column, int neurons,
                     double heldout_fraction, std::uint64_t seed) {
  Split split;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    if (labels[k] == "train") split.train_trials.push_back(static_cast<int>(k));
    if (labels[k] == "test" || labels[k] == "val") split.test_trials.push_back(static_cast<int>(k));
  }
  if (split.train_trials.empty() || split.test_trials.empty())
    throw ConfigError(column + ": " + std::to_string(split.train_trials.size()) +
                      " trials are labelled 'train' and " +
                      std::to_string(split.test_trials.size()) +
                      " 'test' or 'val'; a split needs both");
  draw_heldout_neurons(split, neurons, heldout_fraction, seed);
  return split;
}

}  // namespace spikevi
