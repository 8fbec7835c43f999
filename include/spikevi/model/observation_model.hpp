#pragma once
// Observation models (DESIGN.md §1): every observation x depends on the latents through a
// scalar eta ~ N(mu, s2) under q, so a model only has to say, element-wise over an N x T
// array (row = neuron or channel, column = bin):
//   ell = E_q[log p(x | eta)] without the parameter-free base measure h(x),
//   g   = d ell / d mu,     G = d ell / d s2   (G <= 0 for log-concave models),
// and, for the readout step (DESIGN.md §3 via Stein's lemma), E_q[f''(eta)], E_q[f'''(eta)],
// E_q[f''''(eta)] for f(eta) = log p(x | eta).
// Missing entries (NaN in x; only Gaussian models accept them) contribute zero to all of these.
#include <Eigen/Dense>
#include <memory>
#include <string>

#include "spikevi/math/quadrature.hpp"

namespace spikevi {

class ObservationModel {
 public:
  virtual ~ObservationModel() = default;
  virtual std::string name() const = 0;
  // ell, g, G resized to x's shape.
  virtual void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                       const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                       Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const = 0;
  virtual void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                    const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2,
                                    Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const = 0;
  // sum over the (observed) entries of log h(x): e.g. -log x! for Poisson, 0 for Gaussian.
  virtual double log_base_measure(const Eigen::ArrayXXd& x) const = 0;

  // Pointwise f^{(k)}(eta) for f = log p(x | eta) - log h(x) less the terms that do not
  // depend on eta (add_eta_free_terms), at the points eta of column `col` of x, for the
  // orders k <= 4 in at.wanted (at.of_order[k] sized by the caller). Missing x: 0 for every
  // order. What the quadrature and Monte Carlo estimators (DESIGN.md §6) average.
  virtual void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                         PointwiseDerivatives& at) const = 0;
  // Adds to ell the part of E f that does not depend on eta (the negative binomial's shape
  // terms); nothing by default.
  virtual void add_eta_free_terms(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& ell) const {
    (void)x;
    (void)ell;
  }
  // Throws InputError when x is not data of this model (e.g. a negative count).
  virtual void check(const Eigen::ArrayXXd& x) const { (void)x; }
  // E[x | eta] averaged over eta ~ N(mu, s2): the expected count (or value) of each entry, for
  // predictions (co-smoothing rates, decoding). Resized to mu's shape.
  virtual void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                              Eigen::ArrayXXd& mean) const = 0;
};

// Poisson with log link: log p = x eta - e^eta - log x!, closed form under Gaussian eta.
class PoissonObservation final : public ObservationModel {
 public:
  std::string name() const override { return "poisson"; }
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const override;
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override;
  double log_base_measure(const Eigen::ArrayXXd& x) const override;
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // exp(mu + s2/2)
};

// Gaussian y ~ N(eta, R_row) with one variance per row (channel); NaN = missing.
class GaussianObservation final : public ObservationModel {
 public:
  explicit GaussianObservation(Eigen::VectorXd variances);
  std::string name() const override { return "gaussian"; }
  const Eigen::VectorXd& variances() const { return variances_; }
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const override;
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override;
  double log_base_measure(const Eigen::ArrayXXd& x) const override {
    (void)x;
    return 0.0;
  }
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // mu

 private:
  Eigen::VectorXd variances_;
};

// ---- Models without a closed form: Gauss-Hermite quadrature (DESIGN.md §1, §6) ----
// A model supplies only its pointwise f and derivatives (ObservationModel::pointwise); this
// base takes ell = E f, g = E f', G = E f'' / 2 (Price) and d2..d4 = E f''..E f'''' with an
// n-node rule (quadrature.hpp; 20 nodes by default, as DESIGN.md §1 suggests). Since every f
// here has f'' <= 0 pointwise and the weights are positive, G <= 0 holds exactly.
class QuadratureObservation : public ObservationModel {
 public:
  explicit QuadratureObservation(int nodes);  // ConfigError for nodes outside [1, 256]
  int nodes() const { return rule_.points(); }
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const final;
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const final;

 protected:
  const GaussHermiteRule& rule() const { return rule_; }

 private:
  GaussHermiteRule rule_;
};

// Poisson with log link, PoissonObservation's model with its expectations taken by quadrature
// (--expectations quadrature). With 20 nodes it agrees with the closed form to ~1e-15 of the
// size of the terms for s2 <= 2 (12 nodes: ~2e-12; tests/model/test_observation_model.cpp).
class PoissonQuadratureObservation final : public QuadratureObservation {
 public:
  explicit PoissonQuadratureObservation(int nodes = 20) : QuadratureObservation(nodes) {}
  std::string name() const override { return "poisson"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // -sum log x!
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // exp(mu + s2/2)
};

// Negative binomial with log link (DESIGN.md §1): mean e^eta, one shape r_n > 0 per row,
// variance e^eta + e^{2 eta} / r_n, and as r_n -> infinity the Poisson model;
//   log p(x | eta) = lgamma(x + r) - lgamma(r) - lgamma(x + 1) + r log r + x eta
//                    - (x + r) log(r + e^eta).
// The shapes are learned (DESIGN.md §3), so only -lgamma(x + 1) is the base measure and
// lgamma(x + r) - lgamma(r) + r log r stays in ell. Counts must be finite and >= 0 (InputError
// otherwise); x.rows() must equal the number of shapes (InputError).
class NegativeBinomialObservation final : public QuadratureObservation {
 public:
  // Throws NumericalError for a shape that is not finite and > 0, ConfigError for bad `nodes`.
  explicit NegativeBinomialObservation(Eigen::VectorXd shapes, int nodes = 20);
  std::string name() const override { return "negative_binomial"; }
  const Eigen::VectorXd& shapes() const { return shapes_; }
  void set_shapes(Eigen::VectorXd shapes);  // validated as in the constructor
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // -sum lgamma(x + 1)
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  // lgamma(x + r) - lgamma(r) - x log r per entry (the .cpp says why this split).
  void add_eta_free_terms(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& ell) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // exp(mu + s2/2)

  // Per row n, for a Newton step on the shape: gradient(n) = d/dr_n sum_t ell_nt and
  // curvature(n) = d^2/dr_n^2 sum_t ell_nt (both resized to x.rows()). The curvature is the
  // exact second derivative, not a bound, and need not be negative. For rho = log r:
  // d/d rho = r gradient, d^2/d rho^2 = r^2 curvature + r gradient.
  void shape_gradient(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                      const Eigen::ArrayXXd& s2, Eigen::VectorXd& gradient,
                      Eigen::VectorXd& curvature) const;

 private:
  Eigen::VectorXd shapes_;
};

// Bernoulli with logit link for binary bins (DESIGN.md §1):
//   log p(x | eta) = x eta - log(1 + e^eta),  x in {0, 1},  base measure 0.
// Any other x (NaN included) is an InputError.
class BernoulliObservation final : public QuadratureObservation {
 public:
  explicit BernoulliObservation(int nodes = 20) : QuadratureObservation(nodes) {}
  std::string name() const override { return "bernoulli"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // 0, after check(x)
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // E sigmoid(eta) by quadrature
};

}  // namespace spikevi
