#include "spikevi/inference/gauss_markov.hpp"

#include <cmath>
#include <numbers>

#include "spikevi/error.hpp"

namespace spikevi {

void GaussMarkovEvaluator::evaluate(const PriorBlocks& prior,
                                    const std::vector<ModalityView>& modalities, const Sites& sites,
                                    Estimator& estimator, GaussMarkovState& out) {
  factor(prior, sites);
  GaussianMoments& q = out.moments;
  q.mean = cholesky_.solve(shift_);
  cholesky_.selected_inverse(q.cov, q.lag_cov);
  q.log_det_precision = cholesky_.log_determinant();

  out.sites = sites;
  out.expected_log_lik = estimator.expected_log_likelihood(modalities, q, this, &out.targets);
  out.elbo = site_form_elbo(prior, sites, q, out.expected_log_lik);
}

void GaussMarkovEvaluator::site_gradient(const GaussMarkovState& state, Sites& gradient) {
  mean_part_of_site_gradient(state, gradient);
  // dS_t = (J^-1 dJ J^-1)_tt = -d/d eps [(J + eps dJ)^-1]_tt, dJ = L~ - L (block diagonal).
  const Eigen::MatrixXd change = state.targets.precision - state.sites.precision;
  const double largest_change = change.cwiseAbs().maxCoeff();
  if (largest_change == 0.0) return;
  const double eps = 1e-6 * precision_.diagonal.cwiseAbs().maxCoeff() / largest_change;
  perturbed_.lower = precision_.lower;
  perturbed_.diagonal = precision_.diagonal + eps * change;
  perturbed_factor_.factor(perturbed_);
  perturbed_factor_.selected_inverse(cov_plus_, lag_scratch_);
  perturbed_.diagonal = precision_.diagonal - eps * change;
  perturbed_factor_.factor(perturbed_);
  perturbed_factor_.selected_inverse(cov_minus_, lag_scratch_);
  gradient.precision -= (cov_plus_ - cov_minus_) / (4.0 * eps);  // + dS/2
}

Eigen::MatrixXd GaussMarkovEvaluator::sample_offsets(const Eigen::MatrixXd& eps) const {
  return cholesky_.sample_offsets(eps);
}

double site_form_elbo(const PriorBlocks& prior, const Sites& sites, const GaussianMoments& q,
                      double expected_log_lik) {
  const int dim = q.dim();
  const int bins = q.bins();
  double site_terms = 0.0;
  for (int t = 0; t < bins; ++t) {
    const auto L = sites.precision.middleCols(static_cast<Eigen::Index>(t) * dim, dim);
    const auto m = q.mean.col(t);
    // tr(L (S + m m'))/2 - l'm
    site_terms +=
        0.5 * (L.cwiseProduct(q.cov_block(t)).sum() + m.dot(L * m)) - sites.shift.col(t).dot(m);
  }
  const double h_dot_m = (prior.shift + sites.shift).cwiseProduct(q.mean).sum();
  const double log_2pi = std::log(2.0 * std::numbers::pi);
  return expected_log_lik + site_terms + 0.5 * h_dot_m - 0.5 * q.log_det_precision +
         0.5 * bins * dim * log_2pi - prior.constant;
}

}  // namespace spikevi
