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
#include <span>
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
  // Both of the above at once (what the readout statistics take); a model may share the work.
  virtual void expected_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                              const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                              Eigen::ArrayXXd& G, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                              Eigen::ArrayXXd& d4) const {
    expected_log_likelihood(x, mu, s2, ell, g, G);
    expected_derivatives(x, mu, s2, d2, d3, d4);
  }
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
  // For a model with row parameters (SpikeModel::row_parameters): per row n and parameter p,
  // gradient(n, p) = d/dtheta_p sum_t ell_nt and curvature(n, p) = d2/dtheta_p^2 sum_t ell_nt
  // at the current values (the exact second derivative, of either sign), rows x parameters.
  // Without row parameters: rows x 0.
  virtual void row_parameter_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                         const Eigen::ArrayXXd& s2, Eigen::MatrixXd& gradient,
                                         Eigen::MatrixXd& curvature) const {
    (void)mu;
    (void)s2;
    gradient.resize(x.rows(), 0);
    curvature.resize(x.rows(), 0);
  }
};

// Poisson with log link: log p = x eta - e^eta - log x!, closed form under Gaussian eta (the
// built-in Poisson spike model's likelihood, src/model/spike/poisson.cpp; public because it is
// the default model of the numerics and their tests).
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
//
// `schedule` (quadrature.hpp) lets a site with a small s2 take fewer nodes than `nodes`, the most
// any site gets; the model's schedule says for which s2 that many nodes are accurate enough.
// An empty schedule, or use_fixed_rule(), is the fixed `nodes`-point rule everywhere. A model may
// take the expectations its own way with the same rule (the softplus family: each entry with
// its own node count, src/model/spike/softplus_observation.hpp).
class QuadratureObservation : public ObservationModel {
 public:
  // ConfigError for nodes outside [1, 256].
  explicit QuadratureObservation(int nodes, std::span<const NodeStep> schedule = {});
  int nodes() const { return rule_.points(); }
  bool adaptive() const { return !rule_.fixed(); }
  // The `nodes()`-point rule at every site (--fixed-quadrature), e.g. as a reference.
  void use_fixed_rule() { rule_ = GaussHermiteLadder(rule_.points()); }
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const override;
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override;
  // One pass over the nodes for all five orders: the same numbers as the two calls.
  void expected_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                      const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                      Eigen::ArrayXXd& G, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                      Eigen::ArrayXXd& d4) const override;

 protected:
  const GaussHermiteLadder& rule() const { return rule_; }

 private:
  GaussHermiteLadder rule_;
};

}  // namespace spikevi
