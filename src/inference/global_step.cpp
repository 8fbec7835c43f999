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

void update_readout(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                    const Eigen::VectorXd& row_damping, const AdamSettings* adam) {
  if (!adam) {
    globals.spikes = readout_natural_gradient_step(
        globals.spikes, globals.spikes_prior, stats.spikes, step.scale, step.rho * row_damping);
    return;
  }
  // Adam on w_n = (c_n, d_n) along the Euclidean gradient scale g_n - P0 (w_n - m0); the
  // precision P_n is blended as in the natural step (it is the Laplace precision reported).
  Readout& readout = globals.spikes;
  const ReadoutPrior& prior = globals.spikes_prior;
  const int p = readout.dim() + 1;
  Eigen::MatrixXd weights(p, readout.rows());
  weights << readout.C.transpose(), readout.d.transpose();
  const Eigen::MatrixXd gradient =
      step.scale * stats.spikes.gradient - prior.precision * (weights.colwise() - prior.mean);
  Eigen::ArrayXXd moved =
      globals.readout_adam.step(gradient.array(), *adam, adam->learning_rate * step.rho);
  moved.rowwise() *= row_damping.transpose().array();
  weights += moved.matrix();
  readout.C = weights.topRows(p - 1).transpose();
  readout.d = weights.row(p - 1).transpose();
  for (int n = 0; n < readout.rows(); ++n) {
    auto P = readout.precision.middleCols(static_cast<Eigen::Index>(n) * p, p);
    P = (1.0 - step.rho) * P +
        step.rho * (prior.precision + step.scale * stats.spikes.hessian.middleCols(
                                                       static_cast<Eigen::Index>(n) * p, p));
  }
}

void update_shapes(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                   const Eigen::VectorXd& row_damping, const AdamSettings* adam) {
  SpikeShapes& shapes = globals.spike_shapes;
  if (!shapes.active()) return;
  const double prior_precision = 1.0 / (shapes.prior_log_sd * shapes.prior_log_sd);
  const double prior_mean = std::log(shapes.prior_median);
  Eigen::ArrayXXd adam_moves;
  if (adam) {
    const Eigen::ArrayXd log_r = shapes.shapes.array().log();
    const Eigen::ArrayXd gradient =
        step.scale * shapes.shapes.array() * stats.shape_gradient.array() -
        prior_precision * (log_r - prior_mean);
    adam_moves = globals.shape_adam.step(gradient, *adam, adam->learning_rate);
  }
  for (Eigen::Index n = 0; n < shapes.shapes.size(); ++n) {
    const double r = shapes.shapes(n), log_r = std::log(r);
    // d/d log r and d2/d (log r)^2 of scale * sum E log p(x_n | r) + log p0(log r).
    const double gradient =
        step.scale * r * stats.shape_gradient(n) - prior_precision * (log_r - prior_mean);
    const double curvature =
        step.scale * (r * r * stats.shape_curvature(n) + r * stats.shape_gradient(n)) -
        prior_precision;
    // Newton where the objective is concave in log r, else a unit step uphill; never more than
    // one e-fold per step (the likelihood is nearly flat in r for Poisson-like rows).
    // Adam: along the gradient.
    double move = curvature < 0.0 ? -gradient / curvature : (gradient > 0.0 ? 1.0 : -1.0);
    move = adam ? adam_moves(n) : std::clamp(move, -1.0, 1.0);
    const double log_r_new =
        std::clamp(log_r + step.rho * row_damping(n) * move, std::log(1e-3), std::log(1e6));
    shapes.shapes(n) = std::exp(log_r_new);
    shapes.precision(n) = std::max(-curvature, prior_precision);
  }
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
  if (g.spike_shapes.active() && !g.spike_shapes.shapes.allFinite())
    return "the negative-binomial shapes";
  for (const ContinuousReadout& modality : g.continuous)
    if (!modality.readout.C.allFinite() || !modality.readout.d.allFinite() ||
        !modality.variances.allFinite())
      return "the readout of continuous modality '" + modality.name + "'";
  return "";
}

double checked_global_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                           const Eigen::VectorXd& row_damping, int retries,
                           const AdamSettings* adam) {
  const GlobalState start = globals;
  std::string failure;
  for (int attempt = 0; attempt <= retries; ++attempt) {
    globals = start;
    try {
      update_dynamics(globals, stats, step);
      update_readout(globals, stats, step, row_damping, adam);
      update_shapes(globals, stats, step, row_damping, adam);
      update_continuous(globals, stats, step);
      const std::string bad = non_finite_parameter(globals);
      if (bad.empty()) return step.rho;
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
