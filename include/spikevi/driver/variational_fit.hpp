#pragma once
// The VI driver (DESIGN.md §2-4): local steps on the trials of a (mini)batch, ONE allreduce per
// iteration of a flat buffer of every global statistic, summed exactly (reproducible_sum.hpp)
// so that any number of ranks gives the same bits, then the identical global natural-gradient
// step on every rank. Full batch (rho = 1): exact VB-EM; minibatches: stochastic VI.
#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/inference/global_step.hpp"
#include "spikevi/inference/initialisation.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/minibatch.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/inference/optimizer.hpp"
#include "spikevi/inference/squarem.hpp"
#include "spikevi/inference/trial.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/model/history.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

struct FitSettings {
  int latents = 4;
  int iterations = 100;
  ModelSettings model;  // spike observation model, family, expectations
  // Names of the Gaussian modalities in TrialCounts::continuous (empty: spikes only).
  std::vector<std::string> continuous_names;
  // Full batch: stop when |ELBO_i - ELBO_{i-1}| / |ELBO_i| < tolerance; 0 = never. Minibatch
  // runs always take `iterations` steps (their ELBO is a noisy estimate).
  double tolerance = 1e-6;
  MinibatchSettings minibatch;
  PriorSettings priors;
  InitialisationSettings initialisation;
  LocalStepSettings local;
  // Full batch, natural-gradient optimiser, linear readout: SQUAREM over the globals
  // (squarem.hpp); none keeps plain VB-EM.
  Acceleration accelerate = Acceleration::kNone;
  // --history K: history terms from the held-in rows (history.hpp); lags 0 = none.
  HistorySettings history;
};

struct IterationRecord {
  int iteration = 0;
  // Objective after the local step (DESIGN.md §3 "objective"); with minibatches the unbiased
  // estimate (K/|B|) sum_B ELBO_k + global terms.
  double elbo = 0.0;
  double elbo_per_spike = 0.0;
  double relative_change = 0.0;   // vs the previous iteration (NaN at the first)
  double seconds = 0.0;           // wall time of this iteration
  double local_iterations = 0.0;  // mean number of CVI steps per trial of the batch
  int batch_trials = 0;           // |B_i|
  double rho = 1.0;               // step size of the global step that used these statistics
  int rejected_readout_rows = 0;  // full batch: rows whose readout step was undone
  // --accelerate squarem: the step length of this iteration's extrapolation (0: none) and
  // whether it was rejected (then the iteration took the plain step). Not checkpointed.
  double squarem_alpha = 0.0;
  bool squarem_rejected = false;
};

// How a fit ended (Ceres' TerminationType): converged (full batch: the relative ELBO change
// fell below the tolerance), reached its iteration limit, was stopped (a stop requested on any
// rank, agreed at an iteration boundary), or failed numerically (a local step or the global step
// could not produce a finite state; the fit keeps the last finite one).
enum class Termination { kConverged, kIterationLimit, kStopped, kNumericalFailure };
std::string termination_name(Termination termination);  // "converged", "iteration limit", ...

// The fit's result on this rank (Ceres' Solver::Summary plus the solution).
struct FitOutcome {
  GlobalState globals;
  std::vector<IterationRecord> trace;
  // Per local trial, at the final globals; after a numerical failure only their sites (those of
  // the last finite state) are meaningful.
  std::vector<GaussMarkovState> posteriors;
  Termination termination = Termination::kIterationLimit;
  std::string message;       // why it ended, in a sentence
  double elbo = 0.0;         // the objective on all trials at the final state
  double spike_count = 0.0;  // all trials of all ranks
  double evidence_laplace = 0.0;
  int unconverged_local_steps = 0;  // trial-iterations whose local step hit its limit
};

// Everything a fit needs to go on exactly where it stopped, at an iteration boundary
// (DESIGN.md §5): the next iteration is global_step(statistics, pending), then local steps
// warm-started from the sites. The same on every rank except `sites` (this rank's trials).
class FitCallback;

struct FitState {
  int iteration = 0;               // iterations completed
  GlobalState globals;             // those the local steps of `iteration` used
  std::vector<double> statistics;  // the reduced statistics of `iteration` (packed)
  GlobalStepSize pending;          // the global step they call for
  Eigen::VectorXd row_damping;     // full batch: per-row readout step damping
  OptimizerState optimizer_state;  // Adam's moments (Optimizer::state); empty for natural
  double previous_elbo = 0.0;      // objective of `iteration` (for the relative change)
  int unconverged_local_steps = 0;
  bool converged = false;  // the fit had converged: continuing it runs no iteration
  std::vector<IterationRecord> trace;
  std::vector<Sites> sites;  // this rank's trials, in order
};

// --history: the basis of `history` (no rows: every row) from the counts of `trials`, this rank's
// share of the training trials: their moments are summed over all ranks exactly, so every rank
// and every rank count gets the same basis. What fit_variational and fit_amortised build.
HistoryBasis training_history_basis(const std::vector<TrialCounts>& trials, HistorySettings history,
                                    Communicator& comm);

// Fits on the given trials (this rank's share; the communicator sums over ranks). Every
// rank must pass trials with distinct positions 0 .. K-1 over all ranks together, and the same
// callbacks (fit_callbacks.hpp). With `resume`, continues from that state instead of
// initialising. A numerical failure does not throw: it ends the fit (Termination
// kNumericalFailure, the message naming where) with the last finite state, identically on every
// rank; bad settings or data throw ConfigError or InputError before any iteration.
FitOutcome fit_variational(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                           Communicator& comm, const std::vector<FitCallback*>& callbacks = {},
                           const FitState* resume = nullptr);

}  // namespace spikevi
