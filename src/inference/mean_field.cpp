#include "spikevi/inference/mean_field.hpp"

#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {

void MeanFieldEvaluator::evaluate(const PriorBlocks& prior,
                                  const std::vector<ModalityView>& modalities, const Sites& sites,
                                  Estimator& estimator, GaussMarkovState& out) {
  factor(prior, sites);  // J SPD, as for Gauss-Markov; also gives m = J^-1 h

  const int dim = precision_.block_size(), bins = precision_.blocks();
  GaussianMoments& q = out.moments;
  q.mean = cholesky_.solve(shift_);
  variances_.resize(dim, bins);
  q.cov.setZero(dim, static_cast<Eigen::Index>(dim) * bins);
  q.lag_cov.setZero(dim, static_cast<Eigen::Index>(dim) * bins);
  q.log_det_precision = 0.0;
  for (int t = 0; t < bins; ++t) {
    const auto diagonal =
        precision_.diagonal.middleCols(static_cast<Eigen::Index>(t) * dim, dim).diagonal();
    // An SPD J has a positive diagonal; the factorisation above has checked it is SPD.
    variances_.col(t) = diagonal.cwiseInverse();
    q.cov.middleCols(static_cast<Eigen::Index>(t) * dim, dim).diagonal() = variances_.col(t);
    q.log_det_precision += diagonal.array().log().sum();
  }

  out.sites = sites;
  out.expected_log_lik = estimator.expected_log_likelihood(modalities, q, this, &out.targets);
  out.elbo = block_diagonal_elbo(prior, q, out.expected_log_lik);
}

void MeanFieldEvaluator::site_gradient(const GaussMarkovState& state, Sites& gradient) {
  mean_part_of_site_gradient(state, gradient);
  // s2_ti = 1 / J_(ti,ti): dS_t = diag(s2_t^2 (L~ - L)_t,ii).
  const int dim = state.moments.dim();
  for (int t = 0; t < state.moments.bins(); ++t) {
    const auto block = static_cast<Eigen::Index>(t) * dim;
    const Eigen::VectorXd change =
        (state.targets.precision - state.sites.precision).middleCols(block, dim).diagonal();
    gradient.precision.middleCols(block, dim).diagonal() +=
        0.5 * variances_.col(t).cwiseAbs2().cwiseProduct(change);
  }
}

Eigen::MatrixXd MeanFieldEvaluator::sample_offsets(const Eigen::MatrixXd& eps) const {
  return variances_.cwiseSqrt().cwiseProduct(eps);
}

double block_diagonal_elbo(const PriorBlocks& prior, const GaussianMoments& q,
                           double expected_log_lik) {
  const int dim = q.dim(), bins = q.bins();
  // m'J_p m + sum_t tr(J_p,tt S_t), J_p block tridiagonal (the lower blocks count twice).
  double quadratic = 0.0;
  for (int t = 0; t < bins; ++t) {
    const auto J_tt = prior.precision.diagonal.middleCols(static_cast<Eigen::Index>(t) * dim, dim);
    const auto m_t = q.mean.col(t);
    quadratic += m_t.dot(J_tt * m_t) + J_tt.cwiseProduct(q.cov_block(t)).sum();
    if (t > 0) {
      const auto J_lower =
          prior.precision.lower.middleCols(static_cast<Eigen::Index>(t) * dim, dim);
      quadratic += 2.0 * m_t.dot(J_lower * q.mean.col(t - 1));
    }
  }
  const double expected_log_prior =
      -0.5 * quadratic + prior.shift.cwiseProduct(q.mean).sum() - prior.constant;
  return expected_log_lik + expected_log_prior + q.entropy();
}

}  // namespace spikevi
