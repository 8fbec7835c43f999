// Expected log-likelihoods under eta ~ N(mu, s2) (DESIGN.md §1): the Gaussian modality's closed
// form and the Gauss–Hermite quadrature base of the models without one (DESIGN.md §6). The spike
// models themselves live in src/model/spike/, one file each.
#include "spikevi/model/observation_model.hpp"

#include <cassert>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

#include "model/observation_checks.hpp"
#include "spikevi/error.hpp"

namespace spikevi {

using Eigen::Index;

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

void GaussianObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                    const Eigen::ArrayXd& eta, PointwiseDerivatives& at) const {
  const Eigen::ArrayXd inv_r = variances_.array().inverse();
  const auto observed = (x.col(col) == x.col(col));  // NaN = missing
  const Eigen::ArrayXd resid = x.col(col) - eta;
  if (at.wanted[0])
    at.of_order[0] = observed.select(
        -0.5 * (2.0 * std::numbers::pi * variances_.array()).log() - 0.5 * resid.square() * inv_r,
        0.0);
  if (at.wanted[1]) at.of_order[1] = observed.select(resid * inv_r, 0.0);
  if (at.wanted[2]) at.of_order[2] = observed.select(-inv_r, 0.0);
  for (int k = 3; k < 5; ++k) {
    if (at.wanted[k]) at.of_order[k].setZero();
  }
}

void GaussianObservation::predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                                         Eigen::ArrayXXd& mean) const {
  (void)s2;
  mean = mu;
}

// ---- The quadrature base: check, the pointwise derivatives averaged over the nodes ----

QuadratureObservation::QuadratureObservation(int nodes, std::span<const NodeStep> schedule)
    : rule_(nodes, schedule) {}

void QuadratureObservation::expected_log_likelihood(const Eigen::ArrayXXd& x,
                                                    const Eigen::ArrayXXd& mu,
                                                    const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                                    Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const {
  check_same_shape(name().c_str(), x, mu, s2);
  check(x);
  gaussian_expectations(rule_, mu, s2,
                        [&](Index col, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                          pointwise(x, col, eta, at);
                        },
                        {&ell, &g, &G, nullptr, nullptr});
  G *= 0.5;  // Price: d/ds2 E f = E f'' / 2
  add_eta_free_terms(x, ell);
}

void QuadratureObservation::expected_derivatives(const Eigen::ArrayXXd& x,
                                                 const Eigen::ArrayXXd& mu,
                                                 const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2,
                                                 Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const {
  check_same_shape(name().c_str(), x, mu, s2);
  check(x);
  gaussian_expectations(rule_, mu, s2,
                        [&](Index col, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                          pointwise(x, col, eta, at);
                        },
                        {nullptr, nullptr, &d2, &d3, &d4});
}

void QuadratureObservation::expected_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                           const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                           Eigen::ArrayXXd& g, Eigen::ArrayXXd& G,
                                           Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                                           Eigen::ArrayXXd& d4) const {
  check_same_shape(name().c_str(), x, mu, s2);
  check(x);
  gaussian_expectations(rule_, mu, s2,
                        [&](Index col, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                          pointwise(x, col, eta, at);
                        },
                        {&ell, &g, &d2, &d3, &d4});
  G = 0.5 * d2;  // Price: d/ds2 E f = E f'' / 2
  add_eta_free_terms(x, ell);
}

}  // namespace spikevi
