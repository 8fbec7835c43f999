#pragma once
// Simulation-based calibration of the local posterior q(z) (DESIGN.md §8; Talts et al. 2018,
// Modrák et al. 2023): with the globals theta held fixed, replicate r draws a trial's latents
// from p(z | theta) and its spikes (and Gaussian modalities) from the observation model,
// infers q(z) with the chosen family (the local steps of `evaluate`, from zero sites), draws L
// paths from q and ranks every monitored true latent coordinate among them. Under exact
// inference every rank is uniform on 0..L (rank_calibration.hpp tests that).
//
// Optionally (CalibrationSettings::dynamics_prior) the dynamics are drawn too: replicate r
// first draws (A~ = [A b], Q) from an MNIW prior, simulates with them, and infers
// q(z) q(A~, Q) by VB-EM, alternating the local step with the exact conjugate MNIW update
// (DESIGN.md §3, the full-batch global step at rho = 1) until the ELBO
// ELBO_k - KL(q(A~, Q) || prior) stops rising; the readouts, mu0 and Sigma0 stay at theta. The
// true entries of A and b, and of Q, are then ranked among L draws from q(A~, Q) as well.
//
// Every draw of replicate r comes from the counter-based stream (seed, kCalibration) at
// counter (code, r, bin or draw), so a replicate is the same whichever rank runs it. The
// replicates are dealt round-robin to the ranks and the rank table is summed over them
// (integers, exact in doubles): the table is bitwise the same on any rank count.
#include <Eigen/Dense>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/evaluation/rank_calibration.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/model/readout.hpp"
#include "spikevi/model/row_parameters.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

// A Gaussian modality y_t = W z_t + e + N(0, diag(R)) (continuous_readout.hpp).
struct GaussianModality {
  std::string name;
  Readout readout;  // C = W, d = e
  Eigen::VectorXd variances;
};

// theta at point values: z_1 ~ N(mu0, Sigma0), z_t = A z_{t-1} + b + N(0, Q), spikes from
// `spike_model` with eta = C z + d and its row parameters, and the Gaussian modalities.
// Known inputs are not simulated (u = 0).
struct CalibrationModel {
  Eigen::MatrixXd A, Q, Sigma0;
  Eigen::VectorXd b, mu0;
  Readout spikes;
  std::shared_ptr<const SpikeModel> spike_model;
  RowParameters row_parameters;
  std::vector<GaussianModality> continuous;

  int dim() const { return static_cast<int>(mu0.size()); }
  // The true parameters of a simulated data set (/truth).
  static CalibrationModel from_truth(const Truth& truth,
                                     const SpikeModelCatalogue& models = builtin_spike_models());
  // A fit's globals: the dynamics at their posterior means, the point-valued readouts.
  static CalibrationModel from_fit(const GlobalState& globals, const ModelSettings& model);
  // An MNIW prior centred on these dynamics, for drawing them: M0 = [A b], V0 = scale I,
  // nu0 = degrees_of_freedom and Psi0 = (nu0 - D - 1) Q, so that E[A~] = [A b], E[Q] = Q and
  // each entry of A or b has prior variance scale E[Q]_ii. ConfigError unless scale > 0 and
  // nu0 > D + 1.
  MatrixNormalInverseWishart dynamics_prior(double scale, double degrees_of_freedom) const;
};

struct CalibrationSettings {
  int replicates = 200;  // R
  int draws = 99;        // L
  int bins = 100;        // T, the length of each replicate's trial
  // Bins whose latent coordinates (all D) are ranked; empty: 5 bins spread evenly,
  // round((j + 1/2) T / 5).
  std::vector<int> monitored_bins;
  FamilyKind family = FamilyKind::kGaussMarkov;
  // The draws are m + sqrt(variance_inflation) (z - m): 1 is q itself; above 1 a deliberately
  // widened posterior (a check that the test sees it).
  double variance_inflation = 1.0;
  std::uint64_t seed = 1;
  LocalStepSettings local{.tolerance = 1e-6, .max_iterations = 200};
  // Set: each replicate draws its dynamics from this prior (D x (D + 1): no inputs) and ranks
  // them (see the top of this file). VB-EM sweeps stop when one gains less than
  // max(dynamics_tolerance x |ELBO|, 3 x local.tolerance), or after dynamics_sweeps; the prior
  // needs nu0 > D + 1.
  std::optional<MatrixNormalInverseWishart> dynamics_prior;
  int dynamics_sweeps = 200;
  double dynamics_tolerance = 1e-9;
};

// The bins ranked under `settings` (its monitored_bins, or the default spread); ConfigError
// for a bin outside 0..T-1 or a repeated one.
std::vector<int> monitored_bins(const CalibrationSettings& settings);

struct CalibrationResult {
  RankTable latent_ranks;                 // R x K, K = monitored bins x D, bin-major
  std::vector<std::string> latent_names;  // "z[trial 0, bin 10, dim 1]"
  // With a dynamics prior: R x D(D+1) ranks of A and b ("A[0,1]", "b[0]", column-major over
  // [A b]) and R x D(D+1)/2 ranks of Q's lower triangle ("Q[1,0]", column-major); else empty.
  RankTable dynamics_ranks, noise_ranks;
  std::vector<std::string> dynamics_names, noise_names;
  int unconverged_dynamics = 0;  // replicates whose VB-EM stopped at dynamics_sweeps
  int unstable_dynamics = 0;     // drawn A with spectral radius >= 1 (latents that grow)
  // Replicates where a VB-EM sweep lowered the ELBO by more than the stopping threshold, and the
  // largest decrease (nats). Exact VB-EM never lowers it; roundoff does where a drawn A
  // explodes: measured 1.3e-3 nats in a replicate whose ELBO at the prior was -1.7e9 (its terms
  // cancel to ~1e-12 of their size). A large decrease would be a bug.
  int non_monotone_dynamics = 0;
  double largest_dynamics_decrease = 0.0;
  // Sum over replicates of ELBO_k at convergence (with a dynamics prior: without the
  // -KL(q(A~, Q) || prior) term).
  double elbo = 0.0;
  double spikes = 0.0;              // spikes simulated over all replicates
  int unconverged_local_steps = 0;  // replicates whose local step hit its limit
  // Processor time of the replicates (std::clock, before the ranks wait for each other): the
  // most any rank spent, and the sum over ranks. On an idle machine with a core per rank the
  // replicates' wall time is about cpu_seconds_max.
  double cpu_seconds_max = 0.0, cpu_seconds_total = 0.0;
};

// Called on every rank after each of its replicates: (done here, this rank's share).
using CalibrationProgress = std::function<void(int done, int share)>;

// Runs the replicates over the ranks of `comm` (collective). ConfigError for bad settings.
CalibrationResult run_calibration(const CalibrationModel& model,
                                  const CalibrationSettings& settings, Communicator& comm,
                                  const CalibrationProgress& progress = {});

}  // namespace spikevi
