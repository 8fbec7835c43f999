#pragma once
// Model selection by k-fold cross-validation over a grid of candidate models (DESIGN.md §7,
// §8 "Family check"): what `spikevi compare` runs. Each (candidate, fold) pair is one task —
// fit the candidate to the other folds, score it on the fold's trials — and the tasks are
// dealt to the ranks of a communicator (task i to rank i mod P); one sum then gives every rank
// every task's scores. A task's numbers do not depend on the rank that ran it, so the table is
// the same on any number of ranks.
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/evaluation/model_comparison.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/model/spike_model.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

// One point of the grid.
struct Candidate {
  std::shared_ptr<const SpikeModel> observation;
  FamilyKind family = FamilyKind::kGaussMarkov;
  int latents = 4;
  bool use_continuous = false;  // fit the Gaussian modalities of /continuous with the spikes
  ReadoutKind readout = ReadoutKind::kLinear;  // --readout linear,mlp (with --hidden)
  int hidden = 8;
  int history = 0;  // --history K of the fit (0: no history terms)
};

// "poisson / gauss-markov / D = 4 / continuous used"
std::string describe(const Candidate& candidate, bool data_has_continuous);

// Every combination, observations outermost, then families, latents, continuous, readouts,
// history lags (innermost). `continuous` holds true (use) and/or false (ignore). An MLP
// readout's row names its observation "NAME+mlp" in the table, history terms "NAME+historyK".
std::vector<Candidate> candidate_grid(
    const std::vector<std::shared_ptr<const SpikeModel>>& observations,
    const std::vector<FamilyKind>& families, const std::vector<int>& latents,
    const std::vector<bool>& continuous,
    const std::vector<ReadoutKind>& readouts = {ReadoutKind::kLinear}, int hidden = 8,
    const std::vector<int>& history = {0});

// The candidate's fit settings: `base` with its model, family, D and history lags (and the seed
// of `base`).
FitSettings candidate_settings(const FitSettings& base, const Candidate& candidate);

struct CrossValidationSettings {
  FitSettings fit;  // all but what a candidate sets
  LocalStepSettings scoring{.tolerance = 1e-6, .max_iterations = 200};
  int samples = 64;  // importance samples per held-out trial
  // With both families in the grid: the posterior log-rate variance ratio Gauss-Markov /
  // mean-field at each Gauss-Markov fit's globals.
  bool family_check = false;
};

// What one task gave. A task that failed (a numerical failure, or an error in scoring) has
// NaN scores and failed = true; its message went to the standard error of the rank that ran it.
struct FoldOutcome {
  FoldScores scores;
  double variance_ratio = std::numeric_limits<double>::quiet_NaN();
  int iterations = 0;
  bool converged = false;
  int unconverged_local_steps = 0;
  bool failed = false;
};

struct TaskProgress {
  std::size_t candidate = 0;
  int fold = 0;
  int fitted_trials = 0, heldout_trials = 0;
  int done = 0, total = 0;    // this rank's tasks finished / assigned
  double seconds_left = 0.0;  // estimated from this rank's pace
};
using TaskDone = std::function<void(const TaskProgress&, const FoldOutcome&)>;

// outcome[c][f] for candidate c, fold f, on every rank. `data` holds every trial of `folds`
// (file indices) and a split naming the held-out neurons of co-smoothing; its test trials are
// replaced by each fold's. `on_done` is called on the rank that ran a task, after it.
std::vector<std::vector<FoldOutcome>> cross_validate(const Dataset& data,
                                                     const std::vector<std::vector<int>>& folds,
                                                     const std::vector<Candidate>& candidates,
                                                     const CrossValidationSettings& settings,
                                                     Communicator& comm,
                                                     const TaskDone& on_done = {});

// The table's rows, one per candidate in grid order, with the family check filled into the
// mean-field row of every (observation, D, continuous) fitted with both families.
std::vector<ComparisonRow> comparison_rows(const std::vector<Candidate>& candidates,
                                           const std::vector<std::vector<FoldOutcome>>& outcomes,
                                           bool data_has_continuous);

}  // namespace spikevi
