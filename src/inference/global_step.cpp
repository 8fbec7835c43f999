#include "spikevi/inference/global_step.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {

void update_dynamics(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step) {
  globals.dynamics = MatrixNormalInverseWishart::blend(globals.dynamics, globals.dynamics_prior,
                                                       stats.transitions, step.scale, step.rho);
  const Eigen::VectorXd batch_mean = stats.initial_mean_sum / stats.trials;
  const Eigen::MatrixXd batch_second = stats.initial_second_moment_sum / stats.trials;
  const Eigen::MatrixXd second =
      (1.0 - step.rho) * (globals.Sigma0 + globals.mu0 * globals.mu0.transpose()) +
      step.rho * batch_second;
  globals.mu0 = (1.0 - step.rho) * globals.mu0 + step.rho * batch_mean;
  globals.Sigma0 = second - globals.mu0 * globals.mu0.transpose();
  globals.Sigma0 = 0.5 * (globals.Sigma0 + globals.Sigma0.transpose()).eval();
}

void update_continuous(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step) {
  for (std::size_t m = 0; m < globals.continuous.size(); ++m) {
    ContinuousReadout& modality = globals.continuous[m];
    modality.statistics.blend(stats.continuous.at(m), step.scale, step.rho);
    solve_continuous_readout(modality, globals.continuous_prior, globals.noise_prior);
  }
}

std::string non_finite_parameter(const GlobalState& g) {
  if (!g.dynamics.M.allFinite() || !g.dynamics.V.allFinite()) return "the dynamics [A b]";
  if (!g.dynamics.Psi.allFinite() || !std::isfinite(g.dynamics.nu)) return "the process noise Q";
  if (!g.mu0.allFinite() || !g.Sigma0.allFinite()) return "the initial state (mu0, Sigma0)";
  const int p = g.dim() + 1;
  for (Eigen::Index n = 0; n < g.spikes.rows(); ++n)
    if (!g.spikes.C.row(n).allFinite() || !std::isfinite(g.spikes.d(n)) ||
        !g.spikes.precision.middleCols(n * p, p).allFinite())
      return "readout row " + std::to_string(n);
  if (const std::string bad = g.spike_parameters.non_finite(); !bad.empty()) return bad;
  for (Eigen::Index n = 0; n < g.history.B.rows(); ++n)
    if (!g.history.B.row(n).allFinite()) return "history row " + std::to_string(n);
  if (!g.mlp.A.allFinite() || !g.mlp.W.allFinite() || !g.mlp.b.allFinite())
    return "the MLP readout's weights";
  for (const ContinuousReadout& modality : g.continuous)
    if (!modality.readout.C.allFinite() || !modality.readout.d.allFinite() ||
        !modality.variances.allFinite())
      return "the readout of continuous modality '" + modality.name + "'";
  return "";
}

double checked_global_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                           const Eigen::VectorXd& row_damping,
                           std::unique_ptr<Optimizer>& optimizer, int retries) {
  const GlobalState start = globals;
  const std::unique_ptr<Optimizer> start_optimizer = optimizer->clone();
  std::string failure;
  for (int attempt = 0; attempt <= retries; ++attempt) {
    globals = start;
    std::unique_ptr<Optimizer> trial = start_optimizer->clone();
    try {
      update_dynamics(globals, stats, step);
      trial->readout_step(globals, stats, step, row_damping);
      trial->mlp_step(globals, stats, step);
      trial->row_parameter_step(globals, stats, step, row_damping);
      if (globals.history.active())  // beside the readout rows, with their damping
        history_natural_gradient_step(globals.history, stats.history, step.scale,
                                      step.rho * row_damping);
      update_continuous(globals, stats, step);
      const std::string bad = non_finite_parameter(globals);
      if (bad.empty()) {
        optimizer = std::move(trial);
        return step.rho;
      }
      failure = bad + " became non-finite";
    } catch (const NumericalError& error) {
      failure = error.what();
    }
    if (attempt < retries) step.rho *= 0.5;
  }
  globals = start;
  throw NumericalError("the global step failed even at rho = " + std::to_string(step.rho) + ": " +
                       failure);
}

std::vector<int> rows_that_dropped(const ReadoutPrior& prior, const Readout& before,
                                   const Eigen::VectorXd& log_likelihood_before,
                                   const Readout& after,
                                   const Eigen::VectorXd& log_likelihood_after) {
  const Eigen::VectorXd objective_before = log_likelihood_before + row_log_prior(prior, before);
  const Eigen::VectorXd objective_after = log_likelihood_after + row_log_prior(prior, after);
  std::vector<int> dropped;
  for (Eigen::Index n = 0; n < objective_after.size(); ++n)
    if (!std::isfinite(objective_after(n)) || objective_after(n) < objective_before(n))
      dropped.push_back(static_cast<int>(n));
  return dropped;
}

}  // namespace spikevi
