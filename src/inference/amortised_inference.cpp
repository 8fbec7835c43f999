#include "spikevi/inference/amortised_inference.hpp"

#include <cmath>

namespace spikevi {

void annealed_site_gradient(const LocalProblem& problem, const GaussMarkovState& state, double beta,
                            Sites& gradient) {
  if (beta == 1.0) {
    problem.family.site_gradient(state, gradient);
    return;
  }
  if (beta == 0.0) {
    GaussMarkovState likelihood_only = state;
    likelihood_only.sites.precision.setZero();
    likelihood_only.sites.shift.setZero();
    problem.family.site_gradient(likelihood_only, gradient);
    return;
  }
  // The targets are linear in the likelihood's derivatives: ell / beta divides them by beta.
  GaussMarkovState scaled = state;
  scaled.targets.precision /= beta;
  scaled.targets.shift /= beta;
  problem.family.site_gradient(scaled, gradient);
  gradient.precision *= beta;
  gradient.shift *= beta;
}

double amortised_trial(const LocalProblem& problem, const SiteEncoder& encoder,
                       const Eigen::ArrayXXd& encoder_input, double beta, GaussMarkovState& state,
                       Eigen::VectorXd& gradient, EncoderPass& pass,
                       Eigen::VectorXd* likelihood_gradient) {
  const Sites sites = encoder.encode(encoder_input, pass);
  problem.evaluate(sites, state);
  Sites site_gradient;
  annealed_site_gradient(problem, state, beta, site_gradient);
  encoder.backward(pass, site_gradient, gradient);
  if (likelihood_gradient) {
    annealed_site_gradient(problem, state, 0.0, site_gradient);
    encoder.backward(pass, site_gradient, *likelihood_gradient);
  }
  return beta * state.elbo + (1.0 - beta) * state.expected_log_lik;
}

void posterior_moments(const PriorBlocks& prior, const Sites& sites, GaussianMoments& q) {
  BlockTridiagonal precision{prior.precision.diagonal + sites.precision, prior.precision.lower};
  BlockCholesky factor;
  factor.factor(precision);
  q.mean = factor.solve(prior.shift + sites.shift);
  factor.selected_inverse(q.cov, q.lag_cov);
  q.log_det_precision = factor.log_determinant();
}

CollapseSums CollapseSums::zero(int dim) {
  return CollapseSums{Eigen::VectorXd::Zero(dim), Eigen::VectorXd::Zero(dim),
                      Eigen::VectorXd::Zero(dim), 0.0};
}

void CollapseSums::add(const CollapseSums& other) {
  kl += other.kl;
  mean += other.mean;
  mean_squared += other.mean_squared;
  bins += other.bins;
}

void CollapseSums::pack_into(double* out) const {
  const Eigen::Index d = kl.size();
  Eigen::Map<Eigen::VectorXd>(out, d) = kl;
  Eigen::Map<Eigen::VectorXd>(out + d, d) = mean;
  Eigen::Map<Eigen::VectorXd>(out + 2 * d, d) = mean_squared;
  out[3 * d] = bins;
}

CollapseSums CollapseSums::unpack(const double* in, int dim) {
  const Eigen::Index d = dim;
  return CollapseSums{Eigen::Map<const Eigen::VectorXd>(in, d),
                      Eigen::Map<const Eigen::VectorXd>(in + d, d),
                      Eigen::Map<const Eigen::VectorXd>(in + 2 * d, d), in[3 * d]};
}

Eigen::VectorXd CollapseSums::kl_per_dimension() const { return kl / std::max(bins, 1.0); }

Eigen::VectorXd CollapseSums::mean_variance() const {
  const Eigen::VectorXd average = mean / std::max(bins, 1.0);
  return (mean_squared / std::max(bins, 1.0) - average.cwiseAbs2()).cwiseMax(0.0);
}

int CollapseSums::active_units(double threshold) const {
  return static_cast<int>((mean_variance().array() > threshold).count());
}

CollapseSums collapse_sums(const PriorBlocks& prior, const GaussianMoments& q) {
  const int dim = q.dim(), bins = q.bins();
  BlockCholesky prior_factor;
  prior_factor.factor(prior.precision);
  const Eigen::MatrixXd prior_mean = prior_factor.solve(prior.shift);
  Eigen::MatrixXd prior_cov, prior_lag;
  prior_factor.selected_inverse(prior_cov, prior_lag);
  CollapseSums sums = CollapseSums::zero(dim);
  sums.bins = bins;
  for (int t = 0; t < bins; ++t)
    for (int i = 0; i < dim; ++i) {
      const Eigen::Index column = Eigen::Index{t} * dim + i;
      const double s2 = q.cov(i, column), p2 = prior_cov(i, column);
      const double difference = q.mean(i, t) - prior_mean(i, t);
      sums.kl(i) += 0.5 * (std::log(p2 / s2) + (s2 + difference * difference) / p2 - 1.0);
    }
  sums.mean = q.mean.rowwise().sum();
  sums.mean_squared = q.mean.cwiseAbs2().rowwise().sum();
  return sums;
}

}  // namespace spikevi
