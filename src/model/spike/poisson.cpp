// The Poisson spike model (DESIGN.md §1): counts ~ Poisson(e^eta), log link, closed-form
// expectations under eta ~ N(mu, s2), or quadrature on request.
#include <boost/math/special_functions/gamma.hpp>
#include <cassert>
#include <cmath>
#include <string>

#include "model/observation_checks.hpp"
#include "spikevi/error.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {

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

namespace {

// Poisson with its expectations taken by quadrature (--expectations quadrature): with 20 nodes
// it agrees with the closed form to ~1e-15 of the size of the terms for s2 <= 2 (12 nodes:
// ~2e-12; tests/model/test_observation_model.cpp).
class PoissonQuadratureObservation final : public QuadratureObservation {
 public:
  explicit PoissonQuadratureObservation(int nodes)
      : QuadratureObservation(nodes, kExpNodeSchedule) {}
  std::string name() const override { return "poisson"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // -sum log x!
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // exp(mu + s2/2)
};

// Poisson by quadrature: f = x eta - e^eta, f' = x - e^eta, f'' = f''' = f'''' = -e^eta. ----

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

// ---- The model: counts ~ Poisson(exp(eta)) ----

class PoissonSpikeModel final : public SpikeModel {
 public:
  std::string name() const override { return "poisson"; }
  std::string description() const override {
    return "Poisson counts with log link, mean exp(c.z + d)";
  }
  bool has_closed_form() const override { return true; }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>&,
                                                bool closed_form, int nodes) const override {
    if (closed_form) return std::make_unique<PoissonObservation>();
    return std::make_unique<PoissonQuadratureObservation>(nodes);
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override { return eta.exp(); }
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    return means.log().matrix();
  }
  double draw(double mean, const std::vector<double>&, RandomStream& stream) const override {
    return static_cast<double>(stream.next_poisson(mean));
  }
  std::uint64_t simulation_code() const override { return 4; }
};

}  // namespace

std::shared_ptr<const SpikeModel> make_poisson_spike_model() {
  return std::make_shared<PoissonSpikeModel>();
}

}  // namespace spikevi
