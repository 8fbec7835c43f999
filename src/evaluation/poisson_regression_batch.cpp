#include "spikevi/evaluation/poisson_regression_batch.hpp"

#include <cassert>
#include <cmath>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

// A column's penalised objective sum(exp(eta) - y eta) + penalty/2 |b_1:|^2 from its eta.
// (References to columns, so that no column is copied.)
double column_objective(const Eigen::Ref<const Eigen::ArrayXd>& mu,
                        const Eigen::Ref<const Eigen::VectorXd>& eta,
                        const Eigen::Ref<const Eigen::VectorXd>& counts,
                        const Eigen::Ref<const Eigen::VectorXd>& b, double penalty) {
  return mu.sum() - counts.dot(eta) + 0.5 * penalty * b.tail(b.size() - 1).squaredNorm();
}

// The factor of curvature + penalty E (E: identity without the intercept), with the relative
// jitter of the single-regression Newton step (cosmoothing.cpp) so that it stays SPD.
Eigen::LLT<Eigen::MatrixXd> factor(const Eigen::MatrixXd& curvature, double penalty) {
  Eigen::MatrixXd h = curvature;
  h.diagonal().tail(h.rows() - 1).array() += penalty;
  h.diagonal().array() += 1e-12 * (1.0 + h.diagonal().maxCoeff());
  return Eigen::LLT<Eigen::MatrixXd>(h.selfadjointView<Eigen::Lower>());
}

// Per-column state of one solve.
struct ColumnState {
  double objective = 0.0, last_decrement = -1.0;
  bool refresh = false, active = true;
};

}  // namespace

PoissonRegressionBatch::PoissonRegressionBatch(const Eigen::MatrixXd& design,
                                               const Eigen::MatrixXd& counts,
                                               const PoissonRegressionBatchSettings& settings)
    : design_(design), counts_(counts), settings_(settings) {
  if (design.rows() != counts.rows() || design.rows() == 0 || design.cols() < 1)
    throw InputError("PoissonRegressionBatch: design is " + std::to_string(design.rows()) + " x " +
                     std::to_string(design.cols()) + " but there are " +
                     std::to_string(counts.rows()) + " rows of counts (need equal, > 0)");
  const Eigen::Index rows = design.rows();
  const Eigen::Index wanted =
      std::max<Eigen::Index>(1, settings.curvature_rows_per_coefficient * design.cols());
  const Eigen::Index stride = (rows + wanted - 1) / wanted;
  const Eigen::Index sampled = (rows + stride - 1) / stride;
  sampled_design_.resize(sampled, design.cols());
  for (Eigen::Index i = 0; i < sampled; ++i) sampled_design_.row(i) = design.row(i * stride);
  row_scale_ = static_cast<double>(rows) / static_cast<double>(sampled);
  curvature_.resize(static_cast<std::size_t>(counts.cols()));
}

void PoissonRegressionBatch::update_curvature(
    Eigen::Index column, const Eigen::Ref<const Eigen::VectorXd>& coefficients) {
  const Eigen::ArrayXd root_mu =
      (0.5 * (sampled_design_ * coefficients).array()).exp() * std::sqrt(row_scale_);
  weighted_ = sampled_design_.array().colwise() * root_mu;
  Eigen::MatrixXd& h = curvature_[static_cast<std::size_t>(column)];
  h.setZero(design_.cols(), design_.cols());
  h.selfadjointView<Eigen::Lower>().rankUpdate(weighted_.transpose());
}

PoissonRegressionBatchReport PoissonRegressionBatch::solve(const Eigen::VectorXd& penalties,
                                                           Eigen::MatrixXd& coefficients) {
  const Eigen::Index q = design_.cols(), m = counts_.cols();
  if (coefficients.rows() != q || coefficients.cols() != m || penalties.size() != m)
    throw InputError("PoissonRegressionBatch::solve: coefficients are " +
                     std::to_string(coefficients.rows()) + " x " +
                     std::to_string(coefficients.cols()) + ", penalties " +
                     std::to_string(penalties.size()) + " (need " + std::to_string(q) + " x " +
                     std::to_string(m) + " and " + std::to_string(m) + ")");
  PoissonRegressionBatchReport report;
  report.iterations.assign(static_cast<std::size_t>(m), 0);
  report.converged.assign(static_cast<std::size_t>(m), false);
  Eigen::MatrixXd eta = design_ * coefficients;
  Eigen::ArrayXXd mu = eta.array().exp();
  std::vector<ColumnState> state(static_cast<std::size_t>(m));
  std::vector<Eigen::LLT<Eigen::MatrixXd>> factors(static_cast<std::size_t>(m));
  for (Eigen::Index j = 0; j < m; ++j) {
    const auto c = static_cast<std::size_t>(j);
    state[c].objective =
        column_objective(mu.col(j), eta.col(j), counts_.col(j), coefficients.col(j), penalties(j));
    if (curvature_[c].size() == 0) {
      update_curvature(j, coefficients.col(j));
      ++report.curvature_updates;
    }
    factors[c] = factor(curvature_[c], penalties(j));
  }
  std::vector<Eigen::Index> active;
  // Scratch at full width, so that nothing of rows x m is allocated per step (at 64 000 rows,
  // a reallocated buffer is a fresh mmap and page faults, ~15 % of the time).
  Eigen::MatrixXd residual(design_.rows(), m), gradient(q, m), direction(q, m),
      step_eta(design_.rows(), m);
  Eigen::VectorXd g(q), d(q), eta_trial(design_.rows()), b_trial(q);
  Eigen::ArrayXd mu_trial(design_.rows());
  for (int iteration = 0; iteration < settings_.max_iterations; ++iteration) {
    active.clear();
    for (Eigen::Index j = 0; j < m; ++j)
      if (state[static_cast<std::size_t>(j)].active) active.push_back(j);
    if (active.empty()) break;
    const auto width = static_cast<Eigen::Index>(active.size());
    for (Eigen::Index a = 0; a < width; ++a)
      residual.col(a) = mu.col(active[a]).matrix() - counts_.col(active[a]);
    gradient.leftCols(width).noalias() = design_.transpose() * residual.leftCols(width);
    Eigen::Index kept = 0;  // columns still moving, compacted to the front
    for (Eigen::Index a = 0; a < width; ++a) {
      const Eigen::Index j = active[a];
      const auto c = static_cast<std::size_t>(j);
      g = gradient.col(a);
      g.tail(q - 1) += penalties(j) * coefficients.col(j).tail(q - 1);
      if (state[c].refresh) {
        update_curvature(j, coefficients.col(j));
        ++report.curvature_updates;
        factors[c] = factor(curvature_[c], penalties(j));
        state[c].refresh = false;
      }
      d = -factors[c].solve(g);
      const double decrement = -0.5 * g.dot(d);
      if (decrement <= settings_.tolerance * (1.0 + std::abs(state[c].objective))) {
        report.converged[c] = true;
        state[c].active = false;
        continue;
      }
      // A slowly falling decrement means the curvature estimate has gone stale (a subsample's
      // own error makes the decrement fall by ~(error)^2 per step; a refresh cannot mend that).
      if (state[c].last_decrement > 0.0 &&
          decrement > settings_.refresh_ratio * state[c].last_decrement)
        state[c].refresh = true;
      state[c].last_decrement = decrement;
      gradient.col(kept) = g;
      direction.col(kept) = d;
      active[kept++] = j;
    }
    if (kept == 0) break;
    step_eta.leftCols(kept).noalias() = design_ * direction.leftCols(kept);
    for (Eigen::Index a = 0; a < kept; ++a) {
      const Eigen::Index j = active[a];
      const auto c = static_cast<std::size_t>(j);
      ++report.iterations[c];
      const double slope = gradient.col(a).dot(direction.col(a));
      double t = 1.0, trial = state[c].objective;
      for (int halving = 0; halving < 60; ++halving, t *= 0.5) {
        eta_trial = eta.col(j) + t * step_eta.col(a);
        mu_trial = eta_trial.array().exp();
        b_trial = coefficients.col(j) + t * direction.col(a);
        trial = column_objective(mu_trial, eta_trial, counts_.col(j), b_trial, penalties(j));
        if (trial <= state[c].objective + 0.25 * t * slope) break;  // Armijo; NaN/inf rejected
      }
      if (!(trial <= state[c].objective + 0.25 * t * slope)) {  // no descent left: stop
        state[c].active = false;
        continue;
      }
      coefficients.col(j) = b_trial;
      eta.col(j) = eta_trial;
      mu.col(j) = mu_trial;
      state[c].objective = trial;
    }
  }
  return report;
}

}  // namespace spikevi
