// Closed-form expected log-likelihoods under eta ~ N(mu, s2) (DESIGN.md §1) and the
// expected derivatives used by the readout step (DESIGN.md §3, Stein / Price).
#include "spikevi/observation_model.hpp"

#include <boost/math/special_functions/gamma.hpp>
#include <cassert>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

[[maybe_unused]] bool same_shape(const Eigen::ArrayXXd& a, const Eigen::ArrayXXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols();
}

void resize_like(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& a, Eigen::ArrayXXd& b,
                 Eigen::ArrayXXd& c) {
  a.resize(x.rows(), x.cols());
  b.resize(x.rows(), x.cols());
  c.resize(x.rows(), x.cols());
}

}  // namespace

// ---- Poisson: f(eta) = x eta - e^eta; E f = x mu - lambda, lambda = exp(mu + s2/2). ----

void PoissonObservation::expected_log_likelihood(const Eigen::ArrayXXd& x,
                                                 const Eigen::ArrayXXd& mu,
                                                 const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                                 Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const {
  assert(same_shape(x, mu) && same_shape(x, s2));
  resize_like(x, ell, g, G);
  // One bin (column) at a time so that the four passes stay in L1 (one pass over the whole
  // N x T arrays each is memory-bound once they outgrow L2).
  for (Eigen::Index t = 0; t < x.cols(); ++t) {
    auto lambda = G.col(t);  // held in G until the last line
    lambda = (mu.col(t) + 0.5 * s2.col(t)).exp();
    ell.col(t) = x.col(t) * mu.col(t) - lambda;
    g.col(t) = x.col(t) - lambda;
    lambda *= -0.5;  // d lambda / d s2 = lambda / 2
  }
}

void PoissonObservation::expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                              const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2,
                                              Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const {
  assert(same_shape(x, mu) && same_shape(x, s2));
  resize_like(x, d2, d3, d4);
  // f'' = f''' = f'''' = -e^eta, and E e^eta = lambda.
  d2 = -(mu + 0.5 * s2).exp();
  d3 = d2;
  d4 = d2;
}

double PoissonObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  double sum = 0.0;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const double count = x(i, j);
      if (!(count >= 0.0) || !std::isfinite(count)) {
        throw InputError("poisson: count " + std::to_string(count) + " at (" + std::to_string(i) +
                         ", " + std::to_string(j) + ") is not a finite non-negative number");
      }
      sum -= boost::math::lgamma(count + 1.0);
    }
  }
  return sum;
}

// ---- Gaussian: f(eta) = -log(2 pi R)/2 - (x - eta)^2 / (2R), per-row variance R. ----

GaussianObservation::GaussianObservation(Eigen::VectorXd variances)
    : variances_(std::move(variances)) {
  for (Eigen::Index j = 0; j < variances_.size(); ++j) {
    const double r = variances_(j);
    if (!std::isfinite(r) || r <= 0.0) {
      throw NumericalError("gaussian observation: variance of channel " + std::to_string(j) +
                           " is " + std::to_string(r) + ", must be finite and > 0");
    }
  }
}

void GaussianObservation::expected_log_likelihood(const Eigen::ArrayXXd& x,
                                                  const Eigen::ArrayXXd& mu,
                                                  const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                                  Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const {
  assert(same_shape(x, mu) && same_shape(x, s2) && x.rows() == variances_.size());
  resize_like(x, ell, g, G);
  const Eigen::Index bins = x.cols();
  const Eigen::ArrayXd inv_r = variances_.array().inverse();
  const Eigen::ArrayXd log_norm = -0.5 * (2.0 * std::numbers::pi * variances_.array()).log();
  const auto observed = (x == x);  // NaN = missing
  const auto inv_r_b = inv_r.replicate(1, bins);
  const auto resid = x - mu;
  ell = observed.select(log_norm.replicate(1, bins) - 0.5 * (resid.square() + s2) * inv_r_b, 0.0);
  g = observed.select(resid * inv_r_b, 0.0);
  G = observed.select(-0.5 * inv_r_b, 0.0);
}

void GaussianObservation::expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2,
                                               Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const {
  assert(same_shape(x, mu) && same_shape(x, s2) && x.rows() == variances_.size());
  (void)mu;
  (void)s2;
  resize_like(x, d2, d3, d4);
  const Eigen::ArrayXd inv_r = variances_.array().inverse();
  d2 = (x == x).select(-inv_r.replicate(1, x.cols()), 0.0);
  d3.setZero();
  d4.setZero();
}

}  // namespace spikevi
