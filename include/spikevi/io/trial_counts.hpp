#pragma once
// The solver's view of a data set's trials (TrialCounts) made from the data set in memory.
#include <string>
#include <vector>

#include "spikevi/inference/trial.hpp"
#include "spikevi/io/dataset.hpp"

namespace spikevi {

// TrialCounts of the listed trials (file indices; each must be held by `data`), restricted to
// the given rows (neurons; empty = all); positions first_position, first_position + 1, ...;
// with the listed Gaussian modalities of /continuous (InputError naming a missing one) and the
// known inputs of /inputs when the file has them.
std::vector<TrialCounts> make_trial_counts(const Dataset& data,
                                           const std::vector<int>& trial_indices,
                                           const std::vector<int>& rows = {},
                                           int first_position = 0,
                                           const std::vector<std::string>& continuous = {});

}  // namespace spikevi
