#pragma once
// How import-nwb assigns trials to /split/train_trials and /split/test_trials and neurons to
// /split/heldout_neurons (docs/commands.md#import-nwb): drawn from a seed, or read from a trial
// table's label column. Pure functions; the draws are counter-based (math/random_stream), so a
// seed gives the same split on every machine.
#include <cstdint>
#include <string>
#include <vector>

#include "spikevi/io/dataset.hpp"

namespace spikevi {

// round(fraction * size), at least 1 when fraction > 0 and size > 1, at most size - 1.
int split_share(double fraction, int size);

// A uniform random permutation of 0 .. size-1 (Fisher-Yates on RandomStream purpose kSplit,
// counter iteration `code`: 0 for trials, 1 for neurons, as spikevi simulate draws them).
std::vector<int> split_permutation(std::uint64_t seed, std::uint64_t code, int size);

// Test trials: the first split_share(test_fraction, trials) of the trial permutation, the rest
// train (no lists when test_fraction is 0); held-out neurons likewise from the neuron
// permutation. Every list ascending.
Split random_split(int trials, int neurons, double test_fraction, double heldout_fraction,
                   std::uint64_t seed);

// Train and test trials from one label per trial: "train" trains, "test" and "val" test (the
// Neural Latents Benchmark's names), any other label leaves the trial in neither list. Held-out
// neurons are drawn as by random_split. Throws ConfigError when no trial is labelled train or
// none test, naming `column`.
Split labelled_split(const std::vector<std::string>& labels, const std::string& column, int neurons,
                     double heldout_fraction, std::uint64_t seed);

}  // namespace spikevi
