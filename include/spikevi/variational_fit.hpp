#pragma once
// The VI driver: local steps on every trial, one allreduce of the global statistics, the
// global natural-gradient step (DESIGN.md §2-4). Full batch (rho = 1): exact VB-EM.
#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

#include "spikevi/communicator.hpp"
#include "spikevi/dataset.hpp"
#include "spikevi/gauss_markov.hpp"
#include "spikevi/global_state.hpp"

namespace spikevi {

// One trial of spike counts as the solver sees it.
struct TrialCounts {
  int index = 0;                  // trial index in the file
  Eigen::ArrayXXd counts;         // neurons x T_k
  double log_base_measure = 0.0;  // sum -log x!
};

// TrialCounts of the listed trials (file indices; each must be held by `data`), restricted to
// the given rows (neurons; empty = all).
std::vector<TrialCounts> make_trial_counts(const Dataset& data,
                                           const std::vector<int>& trial_indices,
                                           const std::vector<int>& rows = {});

struct InitialisationSettings {
  double smoothing_sd_bins = 2.0;  // Gaussian kernel of the PCA initialisation
  double latent_variance = 0.1;    // q(z) = N(PCA latents, latent_variance I) at the start
  int readout_newton_steps = 20;   // Poisson GLM on the PCA latents
};

struct FitSettings {
  int latents = 4;
  int iterations = 100;
  double tolerance = 1e-6;  // stop when |ELBO_i - ELBO_{i-1}| / |ELBO_i| < tolerance; 0 = never
  PriorSettings priors;
  InitialisationSettings initialisation;
  LocalStepSettings local;
};

struct IterationRecord {
  int iteration = 0;
  double elbo = 0.0;  // objective after the local step (DESIGN.md §3 "objective")
  double elbo_per_spike = 0.0;
  double relative_change = 0.0;  // vs the previous iteration (NaN at the first)
  double seconds = 0.0;          // wall time of this iteration
  int local_iterations = 0;      // largest number of CVI steps any trial took
};

enum class Termination { kConverged, kIterationLimit };

struct FitOutcome {
  GlobalState globals;
  std::vector<IterationRecord> trace;
  std::vector<GaussMarkovState> posteriors;  // per local trial, at the final globals
  Termination termination = Termination::kIterationLimit;
  double spike_count = 0.0;  // all ranks
  double evidence_laplace = 0.0;
};

using ProgressCallback = std::function<void(const IterationRecord&)>;

// Fits on the given trials (this rank's share; the communicator sums over ranks).
FitOutcome fit_variational(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                           Communicator& comm, const ProgressCallback& progress = {});

// The prior over latent paths, with the dynamics either from q(A~, Q) or at point values.
struct LatentPrior {
  DynamicsExpectations dynamics;
  Eigen::VectorXd mu0;
  Eigen::MatrixXd Sigma0;
  static LatentPrior from(const GlobalState& globals);
};

// Infers q(z) of each trial with the globals held fixed (local steps to convergence from zero
// sites), using the readout rows in `readout` (e.g. the held-in neurons only).
std::vector<GaussMarkovState> infer_latents(const LatentPrior& prior, const Readout& readout,
                                            const std::vector<TrialCounts>& trials,
                                            const LocalStepSettings& settings);

}  // namespace spikevi
