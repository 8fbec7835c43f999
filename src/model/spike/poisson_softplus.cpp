// The Poisson spike model with a softplus link (DESIGN.md §1): rate softplus(c.z + d), which
// grows linearly rather than exponentially in the latents, the choice of the ssm library for
// sparse counts. No closed form under Gaussian eta: Gauss–Hermite quadrature.
#include <string>

#include "model/spike/softplus_terms.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

// Below this eta, softplus(eta) = e^eta (1 - e^eta / 2 + ...) is e^eta to 1e-13 relative, so
// log softplus is eta and its derivatives those of the exp link; this also keeps the ratios
// s^(k) / s away from 0 / 0 where e^eta underflows.
constexpr double kExpRegime = -30.0;

// f(eta) = x log s(eta) - s(eta), s = softplus. With r_k = s^(k) / s (s' = p, s'' = p q,
// s''' = p q (q - p), s'''' = p q (1 - 6 p q); p = sigmoid(eta), q = 1 - p), the derivatives
// of log s are those of the log of any function:
//   (log s)' = r1,  '' = r2 - r1^2,  ''' = r3 - 3 r1 r2 + 2 r1^3,
//   '''' = r4 - 4 r1 r3 - 3 r2^2 + 12 r1^2 r2 - 6 r1^4,
// and f^(k) = x (log s)^(k) - s^(k). Each is concave: log s and -s are.
class SoftplusPoissonObservation final : public QuadratureObservation {
 public:
  explicit SoftplusPoissonObservation(int nodes) : QuadratureObservation(nodes) {}
  std::string name() const override { return "poisson-softplus"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override {
    return PoissonObservation{}.log_base_measure(x);
  }
  void check(const Eigen::ArrayXXd& x) const override { PoissonObservation{}.check(x); }
  void pointwise(const Eigen::ArrayXXd& x, Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override {
    SoftplusTerms& terms = softplus_scratch(x.rows());
    const Eigen::ArrayXd clamped = eta.max(kExpRegime);
    terms.evaluate(clamped, 0.0, true);
    const Eigen::ArrayXd& s = terms.softplus();
    const auto counts = x.col(col);
    // s itself, unclamped: e^eta in the exp regime.
    const Eigen::ArrayXd rate = (eta < kExpRegime).select(eta.exp(), s);
    if (at.wanted[0]) {
      const Eigen::ArrayXd log_rate = (eta < kExpRegime).select(eta, s.log());
      at.of_order[0] = counts * log_rate - rate;
    }
    const Eigen::ArrayXd r1 = terms.p() / s, r2 = terms.pq() / s;
    const Eigen::ArrayXd s3 = terms.pq() * (terms.q() - terms.p());
    const Eigen::ArrayXd s4 = terms.pq() * (1.0 - 6.0 * terms.pq());
    const Eigen::ArrayXd r3 = s3 / s, r4 = s4 / s;
    // Below kExpRegime the rate's derivatives are the rate itself (exp link).
    const auto derivative_of_rate = [&](const Eigen::ArrayXd& softplus_derivative) {
      return Eigen::ArrayXd((eta < kExpRegime).select(rate, softplus_derivative));
    };
    if (at.wanted[1]) at.of_order[1] = counts * r1 - derivative_of_rate(terms.p());
    if (at.wanted[2]) at.of_order[2] = counts * (r2 - r1.square()) - derivative_of_rate(terms.pq());
    if (at.wanted[3])
      at.of_order[3] = counts * (r3 - 3.0 * r1 * r2 + 2.0 * r1.cube()) - derivative_of_rate(s3);
    if (at.wanted[4])
      at.of_order[4] = counts * (r4 - 4.0 * r1 * r3 - 3.0 * r2.square() + 12.0 * r1.square() * r2 -
                                 6.0 * r1.square().square()) -
                       derivative_of_rate(s4);
  }
  // E softplus(eta) by quadrature.
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override {
    SoftplusTerms terms(mu.rows());
    gaussian_expectations(rule(), mu, s2,
                          [&](Index, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
                            terms.evaluate(eta, 0.0, true);
                            at.of_order[0] = terms.softplus();
                          },
                          {&mean, nullptr, nullptr, nullptr, nullptr});
  }
};

class SoftplusPoissonSpikeModel final : public SpikeModel {
 public:
  std::string name() const override { return "poisson-softplus"; }
  std::string description() const override {
    return "Poisson counts with softplus link, mean log(1 + exp(c.z + d))";
  }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>&, bool,
                                                int nodes) const override {
    return std::make_unique<SoftplusPoissonObservation>(nodes);
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override {
    return eta.max(0.0) + (-eta.abs()).exp().log1p();
  }
  // softplus^-1(m) = log(expm1(m)), the mean kept >= 1e-6 (a silent neuron).
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    return means.max(1e-6).expm1().log().matrix();
  }
  Eigen::VectorXd simulated_offsets(const Eigen::VectorXd& log_expected_counts) const override {
    return offsets_for_means(log_expected_counts.array().exp());
  }
  double draw(double mean, const std::vector<double>&, RandomStream& stream) const override {
    return static_cast<double>(stream.next_poisson(mean));
  }
  std::uint64_t simulation_code() const override { return 7; }
};

}  // namespace

std::shared_ptr<const SpikeModel> make_softplus_poisson_spike_model() {
  return std::make_shared<SoftplusPoissonSpikeModel>();
}

}  // namespace spikevi
