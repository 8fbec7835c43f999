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

 private:
  Eigen::VectorXd variances_;
};

}  // namespace spikevi
