#pragma once
// The shared (global) variational parameters and their priors (DESIGN.md §3).
#include <Eigen/Dense>

#include "spikevi/dynamics.hpp"
#include "spikevi/readout.hpp"

namespace spikevi {

// Hyper-parameters of the weak priors (defaults as in the prototype's report).
struct PriorSettings {
  double readout_weight_precision = 1.0;   // pc: c_n ~ N(0, 1/pc I)
  double readout_offset_precision = 0.01;  // pd: d_n ~ N(0, 1/pd)
  double dynamics_column_variance = 10.0;  // v0: A~ | Q ~ MN(0, Q, v0 I)
  double process_noise = 0.1;              // q0: E[Q] = q0 I under the prior, nu0 = D + 3
};

struct GlobalState {
  MatrixNormalInverseWishart dynamics;
  MatrixNormalInverseWishart dynamics_prior;
  Eigen::VectorXd mu0;     // D, point value
  Eigen::MatrixXd Sigma0;  // D x D, point value
  Readout spikes;          // point values with natural-gradient precisions
  ReadoutPrior spikes_prior;

  int dim() const { return static_cast<int>(mu0.size()); }
  // The global terms of the objective: sum log p0(w) - KL(q(A~,Q) || p(A~,Q)) (DESIGN.md §3).
  double global_terms() const;
  // The Laplace correction sum over point-valued readout rows of
  // (dim/2) log 2pi - log|P_n|/2, added to the ELBO to give `evidence_laplace`.
  double laplace_correction() const;
};

// Priors for a model of `dim` latents and `neurons` spike rows.
GlobalState make_prior_state(int dim, int neurons, const PriorSettings& settings);

}  // namespace spikevi
