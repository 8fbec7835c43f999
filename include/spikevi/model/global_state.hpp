#pragma once
// The shared (global) variational parameters and their priors (DESIGN.md §3).
#include <Eigen/Dense>
#include <vector>

#include "spikevi/inference/adam.hpp"
#include "spikevi/model/continuous_readout.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

// Hyper-parameters of the weak priors (defaults as in the prototype's report).
struct PriorSettings {
  double readout_weight_precision = 1.0;   // pc: c_n ~ N(0, 1/pc I)
  double readout_offset_precision = 0.01;  // pd: d_n ~ N(0, 1/pd)
  double dynamics_column_variance = 10.0;  // v0: A~ | Q ~ MN(0, Q, v0 I)
  double process_noise = 0.1;              // q0: E[Q] = q0 I under the prior, nu0 = D + 3
  // Negative binomial: log r_n ~ N(log shape_median, shape_log_sd^2), a weak pull that keeps
  // the shape finite for Poisson-like rows (the likelihood is flat in r there).
  double shape_median = 10.0;
  double shape_log_sd = 3.0;
  NoisePrior noise;  // Gaussian modalities: R_j ~ inverse-gamma(1, 0.01)
};

// The negative binomial's shapes r_n as point values with the prior above; `precision` is the
// curvature -d2/d(log r)^2 of the objective at the last step (the Laplace precision).
struct SpikeShapes {
  Eigen::VectorXd shapes;     // r_n; empty unless the spike model is negative binomial
  Eigen::VectorXd precision;  // per row, of log r_n
  double prior_median = 10.0;
  double prior_log_sd = 3.0;
  bool active() const { return shapes.size() > 0; }
  double log_prior() const;  // sum_n log N(log r_n; log median, sd^2)
};

struct GlobalState {
  MatrixNormalInverseWishart dynamics;
  MatrixNormalInverseWishart dynamics_prior;
  Eigen::VectorXd mu0;     // D, point value
  Eigen::MatrixXd Sigma0;  // D x D, point value
  Readout spikes;          // point values with natural-gradient precisions
  ReadoutPrior spikes_prior;
  SpikeShapes spike_shapes;                   // negative binomial only
  std::vector<ContinuousReadout> continuous;  // Gaussian modalities, in the fit's order
  ReadoutPrior continuous_prior;              // of every continuous row (w_j, e_j)
  NoisePrior noise_prior;
  // --optimizer adam: the moments of the spike readout rows ((D+1) x N) and log shapes (N);
  // empty under the natural-gradient steps.
  AdamState readout_adam;
  AdamState shape_adam;

  int dim() const { return static_cast<int>(mu0.size()); }
  // The global terms of the objective (DESIGN.md §3): sum log p0 of every point value (spike
  // and continuous readout rows, shapes, noise variances) - KL(q(A~,Q) || p(A~,Q)).
  double global_terms() const;
  // The Laplace correction sum over point-valued blocks (readout rows, continuous rows and
  // noise variances, log shapes) of (dim/2) log 2pi - log|P|/2, added to the ELBO to give
  // `evidence_laplace`.
  double laplace_correction() const;
};

// What a model holds beyond the Poisson spike readout.
struct ModelLayout {
  bool spike_shapes = false;                  // negative binomial
  std::vector<std::string> continuous_names;  // Gaussian modalities
  std::vector<int> continuous_channels;       // their channel counts
  int inputs = 0;                             // U: known inputs of the dynamics
  bool adam = false;                          // --optimizer adam: Adam moments kept
};

// Priors for a model of `dim` latents and `neurons` spike rows (shapes start at the prior
// median, continuous readouts at their prior).
GlobalState make_prior_state(int dim, int neurons, const PriorSettings& settings,
                             const ModelLayout& layout = {});

}  // namespace spikevi
