#pragma once
// The VI driver (DESIGN.md §2-4): local steps on the trials of a (mini)batch, ONE allreduce per
// iteration of a flat buffer of every global statistic, summed exactly (reproducible_sum.hpp)
// so that any number of ranks gives the same bits, then the identical global natural-gradient
// step on every rank. Full batch (rho = 1): exact VB-EM; minibatches: stochastic VI.
#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/inference/global_step.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/optimizer.hpp"
#include "spikevi/inference/minibatch.hpp"
#include "spikevi/inference/model_settings.hpp"

namespace spikevi {

// One trial of spike counts as the solver sees it.
struct TrialCounts {
  int index = 0;                  // trial index in the file
  int position = 0;               // position in the list of all fitted trials (all ranks)
  Eigen::ArrayXXd counts;         // neurons x T_k
  double log_base_measure = 0.0;  // sum -log x! (the driver recomputes it for its model)
  // Gaussian modalities, in the order of FitSettings::continuous_names: channels x T_k, NaN =
  // missing.
  std::vector<Eigen::ArrayXXd> continuous;
  Eigen::MatrixXd inputs;  // known inputs /inputs, U x T_k (0 rows without)
  // What prior_blocks and the transition statistics take: nullptr without inputs.
  const Eigen::MatrixXd* inputs_or_null() const { return inputs.rows() > 0 ? &inputs : nullptr; }
};

// TrialCounts of the listed trials (file indices; each must be held by `data`), restricted to
// the given rows (neurons; empty = all); positions first_position, first_position + 1, ...;
// with the listed Gaussian modalities of /continuous (InputError naming a missing one) and the
// known inputs of /inputs when the file has them.
std::vector<TrialCounts> make_trial_counts(const Dataset& data,
                                           const std::vector<int>& trial_indices,
                                           const std::vector<int>& rows = {},
                                           int first_position = 0,
                                           const std::vector<std::string>& continuous = {});

struct InitialisationSettings {
  double smoothing_sd_bins = 2.0;  // Gaussian kernel of the PCA initialisation
  double latent_variance = 0.1;    // q(z) = N(PCA latents, latent_variance I) at the start
  int readout_newton_steps = 20;   // Poisson GLM on the PCA latents
  // The GLM uses at most this many trials, evenly spaced over all K (its statistics scaled by
  // K/count): a start needs no more, and the cost stays bounded on large data sets.
  int readout_trials = 64;
};

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
};

// kStopped: a stop was requested (a signal on any rank) and agreed at an iteration boundary.
enum class Termination { kConverged, kIterationLimit, kStopped };

// Where the solver's time went on this rank, and the spread of the local work over ranks.
struct FitTiming {
  double initialisation = 0.0;  // PCA start and first global step (collectives included)
  double local = 0.0;           // local steps and statistics of the iterations
  double allreduce = 0.0;       // the per-iteration reductions (waiting for slower ranks too)
  double global = 0.0;          // global steps (replicated on every rank)
  double total = 0.0;           // the whole of fit_variational
  double load_imbalance = 1.0;  // max over ranks of `local` / mean over ranks
};
struct FitOutcome {
  GlobalState globals;
  std::vector<IterationRecord> trace;
  std::vector<GaussMarkovState> posteriors;  // per local trial, at the final globals
  Termination termination = Termination::kIterationLimit;
  double elbo = 0.0;         // the objective on all trials at the final state
  double spike_count = 0.0;  // all trials of all ranks
  double evidence_laplace = 0.0;
  int unconverged_local_steps = 0;  // trial-iterations whose local step hit its limit
  FitTiming timing;
};

using ProgressCallback = std::function<void(const IterationRecord&)>;

// Everything a fit needs to go on exactly where it stopped, at an iteration boundary
// (DESIGN.md §5): the next iteration is global_step(statistics, pending), then local steps
// warm-started from the sites. The same on every rank except `sites` (this rank's trials).
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

// How a caller (the CLI) steers a fit from outside the numerics.
struct FitControl {
  const FitState* resume = nullptr;  // continue from this state instead of initialising
  int checkpoint_every = 0;          // call `checkpoint` every this many iterations (0: never)
  // Called on every rank with the state at an iteration boundary: every checkpoint_every
  // iterations, when a stop was agreed, and once after the last iteration (before a minibatch
  // fit's final pass). Never with a non-finite state.
  std::function<void(const FitState&)> checkpoint;
  // This rank's wish to stop (e.g. a signal arrived); summed in the iteration's reduction, so
  // every rank stops after the same iteration.
  std::function<bool()> stop_requested;
};

// Fits on the given trials (this rank's share; the communicator sums over ranks). Every
// rank must pass trials with distinct positions 0 .. K-1 over all ranks together.
FitOutcome fit_variational(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                           Communicator& comm, const ProgressCallback& progress = {},
                           const FitControl& control = {});

// The prior over latent paths, with the dynamics either from q(A~, Q) or at point values.
struct LatentPrior {
  DynamicsExpectations dynamics;
  Eigen::VectorXd mu0;
  Eigen::MatrixXd Sigma0;
  static LatentPrior from(const GlobalState& globals);
};

// Infers q(z) of each trial from its spikes alone with the globals held fixed (local steps to
// convergence from zero sites), using the readout rows in `readout` (e.g. the held-in neurons
// only), the spike model `model` (rows matching `readout`) and the given family.
std::vector<GaussMarkovState> infer_latents(const LatentPrior& prior, const Readout& readout,
                                            const std::vector<TrialCounts>& trials,
                                            const LocalStepSettings& settings,
                                            const ObservationModel& model = PoissonObservation{},
                                            FamilyKind family = FamilyKind::kGaussMarkov);

}  // namespace spikevi
