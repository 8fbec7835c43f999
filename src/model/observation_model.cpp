// Expected log-likelihoods under eta ~ N(mu, s2) (DESIGN.md §1): closed forms (Poisson,
// Gaussian) and Gauss–Hermite quadrature (negative binomial, Bernoulli; DESIGN.md §6), with the
// expected derivatives used by the readout step (DESIGN.md §3, Stein / Price).
#include "spikevi/model/observation_model.hpp"

#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
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

void PoissonObservation::check(const Eigen::ArrayXXd& x) const { (void)log_base_measure(x); }

void PoissonObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                   const Eigen::ArrayXd& eta, PointwiseDerivatives& at) const {
  // f = x eta - e^eta: f' = x - e^eta, f'' = f''' = f'''' = -e^eta.
  const Eigen::ArrayXd rate = eta.exp();
  if (at.wanted[0]) at.of_order[0] = x.col(col) * eta - rate;
  if (at.wanted[1]) at.of_order[1] = x.col(col) - rate;
  for (int k = 2; k < 5; ++k) {
    if (at.wanted[k]) at.of_order[k] = -rate;
  }
}

void PoissonObservation::predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                                        Eigen::ArrayXXd& mean) const {
  mean = (mu + 0.5 * s2).exp();
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

// ---- Quadrature models (DESIGN.md §1, §6): pointwise derivatives + gaussian_expectations ----

namespace {

using Eigen::Index;

// f(eta) = x eta - n softplus(eta - shift), softplus(u) = log(1 + e^u), covers the negative
// binomial (n = x + r, shift = log r, after splitting log(r + e^eta) = log r + softplus(u)) and
// the Bernoulli (n = 1, shift = 0). With p = sigmoid(u), q = 1 - p:
//   f' = x - n p,  f'' = -n p q,  f''' = -n p q (q - p),  f'''' = -n p q (1 - 6 p q).
// Everything is written through a = e^{min(u, 0)} and b = e^{-max(u, 0)}, both in (0, 1], so
// no exponential overflows for any eta: p = a / (a + b), q = b / (a + b), and with
// e = a b = e^{-|u|}, softplus(u) = max(u, 0) + log1p(e). Two exponentials instead of one and a
// branch, because Eigen 3.4 evaluates select() one scalar at a time. The buffers hold one
// column, so nothing is allocated per node.
class SoftplusTerms {
 public:
  explicit SoftplusTerms(Index rows)
      : u_(rows), a_(rows), b_(rows), softplus_(rows), p_(rows), q_(rows), pq_(rows) {}

  // softplus(u) is only formed when `with_value` (the log is the costliest part).
  template <class Shift>
  void evaluate(const Eigen::ArrayXd& eta, const Shift& shift, bool with_value) {
    u_ = eta - shift;
    a_ = u_.min(0.0).exp();
    b_ = (-u_.max(0.0)).exp();
    pq_ = 1.0 / (a_ + b_);  // (held in pq_ for two lines)
    p_ = a_ * pq_;
    q_ = b_ * pq_;
    pq_ = p_ * q_;
    if (with_value) {
      // log1p(e) for e = a b in [0, 1], vectorisable: with y = fl(1 + e), e - (y - 1) is the
      // exact rounding error of y, and log1p(e) = log y + (e - (y - 1)) / y up to its square;
      // a few ulp, and e itself when y rounds to 1.
      a_ *= b_;              // e
      softplus_ = 1.0 + a_;  // y
      softplus_ = softplus_.log() + (a_ - (softplus_ - 1.0)) / softplus_;
      softplus_ += u_.max(0.0);
    }
  }

  // f^{(k)} for the wanted k, given the counts x and the "trials" n of this column.
  template <class Counts, class Trials>
  void likelihood(const Counts& x, const Trials& n, const Eigen::ArrayXd& eta,
                  PointwiseDerivatives& at) const {
    if (at.wanted[0]) at.of_order[0] = x * eta - n * softplus_;
    if (at.wanted[1]) at.of_order[1] = x - n * p_;
    if (at.wanted[2]) at.of_order[2] = -n * pq_;
    if (at.wanted[3]) at.of_order[3] = -n * pq_ * (q_ - p_);
    if (at.wanted[4]) at.of_order[4] = -n * pq_ * (1.0 - 6.0 * pq_);
  }

  Index rows() const { return u_.size(); }
  const Eigen::ArrayXd& softplus() const { return softplus_; }
  const Eigen::ArrayXd& p() const { return p_; }

 private:
  Eigen::ArrayXd u_, a_, b_, softplus_, p_, q_, pq_;
};

// One SoftplusTerms per thread, resized to the column: pointwise() is called per column and
// node, and must not allocate there.
SoftplusTerms& softplus_scratch(Index rows) {
  thread_local SoftplusTerms terms(0);
  if (terms.rows() != rows) terms = SoftplusTerms(rows);
  return terms;
}

void check_same_shape(const char* model, const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                      const Eigen::ArrayXXd& s2) {
  if (same_shape(x, mu) && same_shape(x, s2)) return;
  throw InputError(std::string(model) + ": observations are " + std::to_string(x.rows()) + " x " +
                   std::to_string(x.cols()) + " but mu is " + std::to_string(mu.rows()) + " x " +
                   std::to_string(mu.cols()) + " and s2 " + std::to_string(s2.rows()) + " x " +
                   std::to_string(s2.cols()));
}

std::string at_entry(Index i, Index j) {
  return " at (" + std::to_string(i) + ", " + std::to_string(j) + ")";
}

void check_binary(const Eigen::ArrayXXd& x) {
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      if (x(i, j) != 0.0 && x(i, j) != 1.0) {
        throw InputError("bernoulli: observation " + std::to_string(x(i, j)) + at_entry(i, j) +
                         " is not 0 or 1 (binary bins only)");
      }
    }
  }
}

void check_shapes(const Eigen::VectorXd& shapes) {
  for (Index n = 0; n < shapes.size(); ++n) {
    const double r = shapes(n);
    if (!std::isfinite(r) || r <= 0.0) {
      throw NumericalError("negative binomial observation: shape of row " + std::to_string(n) +
                           " is " + std::to_string(r) + ", must be finite and > 0");
    }
  }
}

// The shape-dependent part of the negative binomial pmf relative to its Poisson limit
// (the "NB2" parameterisation of Cameron & Trivedi 1986: mean m, variance m + m^2 / r):
//   a(x, r) = lgamma(x + r) - lgamma(r) - x log r,
//   a_r = psi(x + r) - psi(r) - x / r,   a_rr = psi'(x + r) - psi'(r) + x / r^2.
// Each tends to 0 as r -> infinity while its terms grow like log r, so Boost's differences
// lose all relative accuracy there (at r = 1e7, a_r is ~1e-13 against an error of ~4e-15).
// For integer x <= kExactCountLimit, Gamma(x + r) / Gamma(r) = prod_{k<x} (r + k) gives
//   a = sum_{k=1}^{x-1} log1p(k / r),   a_r = -sum_{k=1}^{x-1} k / (r (r + k)),
//   a_rr = sum_{k=1}^{x-1} k (2r + k) / (r (r + k))^2,
// exact to a few ulp for any r; other counts use Boost.Math lgamma, digamma and trigamma.
constexpr double kExactCountLimit = 64.0;

bool small_integer(double x) { return x <= kExactCountLimit && x == std::floor(x); }

double shape_normaliser(double x, double r) {
  if (small_integer(x)) {
    double sum = 0.0;
    for (int k = 1; k < static_cast<int>(x); ++k) sum += std::log1p(k / r);
    return sum;
  }
  return boost::math::lgamma(x + r) - boost::math::lgamma(r) - x * std::log(r);
}

struct ShapeDerivatives {
  double first, second;
};

ShapeDerivatives shape_normaliser_derivatives(double x, double r) {
  if (small_integer(x)) {
    ShapeDerivatives sum{0.0, 0.0};
    for (int k = 1; k < static_cast<int>(x); ++k) {
      const double rk = r * (r + k);
      sum.first -= k / rk;
      sum.second += k * (2.0 * r + k) / (rk * rk);
    }
    return sum;
  }
  return {boost::math::digamma(x + r) - boost::math::digamma(r) - x / r,
          boost::math::trigamma(x + r) - boost::math::trigamma(r) + x / (r * r)};
}

}  // namespace

// ---- The quadrature base: check, the pointwise derivatives averaged over the nodes ----

QuadratureObservation::QuadratureObservation(int nodes) : rule_(nodes) {}

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

// ---- Poisson by quadrature: f = x eta - e^eta, f' = x - e^eta, f'' = f''' = f'''' = -e^eta. ----

double PoissonQuadratureObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  return PoissonObservation{}.log_base_measure(x);
}

void PoissonQuadratureObservation::check(const Eigen::ArrayXXd& x) const {
  PoissonObservation{}.check(x);
}

void PoissonQuadratureObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                             const Eigen::ArrayXd& eta,
                                             PointwiseDerivatives& at) const {
  PoissonObservation{}.pointwise(x, col, eta, at);
}

void PoissonQuadratureObservation::predicted_mean(const Eigen::ArrayXXd& mu,
                                                  const Eigen::ArrayXXd& s2,
                                                  Eigen::ArrayXXd& mean) const {
  PoissonObservation{}.predicted_mean(mu, s2, mean);
}

// ---- Negative binomial: ell = a(x, r) + E[x eta - (x + r) softplus(eta - log r)] ----
// From log p + lgamma(x + 1) = lgamma(x + r) - lgamma(r) + r log r + x eta - (x + r) log(r + e^eta)
// with log(r + e^eta) = log r + softplus(eta - log r): the r log r and -(x + r) log r terms
// leave a(x, r) = lgamma(x + r) - lgamma(r) - x log r outside the expectation, which is exact
// (see shape_normaliser) and vanishes as r -> infinity, where the integrand tends to x eta - e^eta.

NegativeBinomialObservation::NegativeBinomialObservation(Eigen::VectorXd shapes, int nodes)
    : QuadratureObservation(nodes), shapes_(std::move(shapes)) {
  check_shapes(shapes_);
}

void NegativeBinomialObservation::set_shapes(Eigen::VectorXd shapes) {
  check_shapes(shapes);
  shapes_ = std::move(shapes);
}

void NegativeBinomialObservation::check(const Eigen::ArrayXXd& x) const {
  if (x.rows() != shapes_.size()) {
    throw InputError("negative_binomial: " + std::to_string(x.rows()) +
                     " rows of counts for a model with " + std::to_string(shapes_.size()) +
                     " shapes");
  }
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      const double count = x(i, j);
      if (!(count >= 0.0) || !std::isfinite(count)) {
        throw InputError("negative_binomial: count " + std::to_string(count) + at_entry(i, j) +
                         " is not a finite non-negative number");
      }
    }
  }
}

void NegativeBinomialObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                            const Eigen::ArrayXd& eta,
                                            PointwiseDerivatives& at) const {
  SoftplusTerms& terms = softplus_scratch(x.rows());
  terms.evaluate(eta, shapes_.array().log(), at.wanted[0]);
  terms.likelihood(x.col(col), x.col(col) + shapes_.array(), eta, at);
}

void NegativeBinomialObservation::add_eta_free_terms(const Eigen::ArrayXXd& x,
                                                     Eigen::ArrayXXd& ell) const {
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) ell(i, j) += shape_normaliser(x(i, j), shapes_(i));
  }
}

void NegativeBinomialObservation::predicted_mean(const Eigen::ArrayXXd& mu,
                                                 const Eigen::ArrayXXd& s2,
                                                 Eigen::ArrayXXd& mean) const {
  mean = (mu + 0.5 * s2).exp();
}

double NegativeBinomialObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  check(x);
  double sum = 0.0;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) sum -= boost::math::lgamma(x(i, j) + 1.0);
  }
  return sum;
}

// With u = eta - log r, p = sigmoid(u) (du/dr = -1/r, d softplus/du = p, dp/du = p (1 - p)):
//   d ell/dr   = a_r + (1 + x/r) E p - E softplus(u),
//   d2 ell/dr2 = a_rr + E p^2 / r - x E[p (2 - p)] / r^2,
// the expectations taken by the same quadrature (a_r, a_rr: shape_normaliser_derivatives).
void NegativeBinomialObservation::shape_gradient(const Eigen::ArrayXXd& x,
                                                 const Eigen::ArrayXXd& mu,
                                                 const Eigen::ArrayXXd& s2,
                                                 Eigen::VectorXd& gradient,
                                                 Eigen::VectorXd& curvature) const {
  check_same_shape("negative_binomial", x, mu, s2);
  check(x);
  const Eigen::ArrayXd r = shapes_.array(), log_r = r.log();
  SoftplusTerms terms(x.rows());
  // Not derivatives of one f this time: slots 0, 1, 2 carry softplus(u), p and p^2.
  Eigen::ArrayXXd softplus_mean, p_mean, p_squared_mean;
  gaussian_expectations(rule(), mu, s2,
                        [&](Index, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                          terms.evaluate(eta, log_r, true);
                          at.of_order[0] = terms.softplus();
                          at.of_order[1] = terms.p();
                          at.of_order[2] = terms.p().square();
                        },
                        {&softplus_mean, &p_mean, &p_squared_mean, nullptr, nullptr});
  gradient.setZero(x.rows());
  curvature.setZero(x.rows());
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      const double count = x(i, j), shape = r(i);
      const double p = p_mean(i, j), p2 = p_squared_mean(i, j);
      const ShapeDerivatives a = shape_normaliser_derivatives(count, shape);
      gradient(i) += a.first + (1.0 + count / shape) * p - softplus_mean(i, j);
      curvature(i) += a.second + p2 / shape - count * (2.0 * p - p2) / (shape * shape);
    }
  }
}

// ---- Bernoulli: f = x eta - softplus(eta), the n = 1, shift = 0 case of SoftplusTerms. ----

void BernoulliObservation::check(const Eigen::ArrayXXd& x) const { check_binary(x); }

void BernoulliObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                     const Eigen::ArrayXd& eta, PointwiseDerivatives& at) const {
  SoftplusTerms& terms = softplus_scratch(x.rows());
  terms.evaluate(eta, 0.0, at.wanted[0]);
  terms.likelihood(x.col(col), 1.0, eta, at);
}

void BernoulliObservation::predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                                          Eigen::ArrayXXd& mean) const {
  SoftplusTerms terms(mu.rows());
  gaussian_expectations(rule(), mu, s2,
                        [&](Index, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                          terms.evaluate(eta, 0.0, false);
                          at.of_order[0] = terms.p();
                        },
                        {&mean, nullptr, nullptr, nullptr, nullptr});
}

double BernoulliObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  check_binary(x);
  return 0.0;
}

}  // namespace spikevi
