#pragma once
// The global natural-gradient step shared by full-batch VB-EM and stochastic VI (DESIGN.md §3):
//   lambda <- (1 - rho) lambda + rho (lambda_prior + scale * s),  scale = K/|B|.
#include <Eigen/Dense>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/optimizer.hpp"
#include "spikevi/model/global_state.hpp"

namespace spikevi {

// q(A~, Q) by the conjugate MNIW blend, and (mu0, Sigma0) from the blended initial-state
// moments: m1 <- (1-rho) mu0 + rho mean_B E[z_1], m2 <- (1-rho)(Sigma0 + mu0 mu0') +
// rho mean_B E[z_1 z_1'], mu0 = m1, Sigma0 = m2 - m1 m1' (the M-step when rho = 1).
void update_dynamics(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step);

// Gaussian modalities: statistics <- (1 - rho) statistics + rho scale s_B, then the closed-form
// readout (continuous_readout.hpp).
void update_continuous(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step);

// The name of the first global parameter holding a non-finite value ("" if there is none).
std::string non_finite_parameter(const GlobalState& globals);

// update_dynamics, the optimiser's readout and row-parameter steps, the history weights' step
// (history.hpp, --history; natural gradients only), update_continuous. A step that
// throws or leaves a non-finite parameter is retried from the same start (the optimiser's state
// included) at half the step size, up to `retries` times (identically on every rank: the inputs
// are the same). Returns the rho taken; when even the last try fails, leaves `globals` and
// `optimizer` as they were and throws NumericalError naming the parameter.
double checked_global_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                           const Eigen::VectorXd& row_damping,
                           std::unique_ptr<Optimizer>& optimizer, int retries = 10);

// Rows whose proposed readout did not raise their term of the objective: with q fixed at the
// posteriors the proposal was made from, E_q log p(x_n | w, z) + log p0(w_n) dropped (or is not
// finite) from `before` (readout, log-likelihood) to `after` (DESIGN.md §3, full batch).
std::vector<int> rows_that_dropped(const ReadoutPrior& prior, const Readout& before,
                                   const Eigen::VectorXd& log_likelihood_before,
                                   const Readout& after,
                                   const Eigen::VectorXd& log_likelihood_after);

}  // namespace spikevi
