// The Bernoulli spike model (DESIGN.md §1): binary bins with a logit link, expectations by
// Gauss–Hermite quadrature.
#include <string>

#include "model/observation_checks.hpp"
#include "model/spike/softplus_observation.hpp"
#include "model/spike/softplus_terms.hpp"
#include "spikevi/error.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

void check_binary(const Eigen::ArrayXXd& x) {
  // One vectorised reduction first: x (x - 1) is exactly 0 only for x = 0 or 1 (NaN and
  // infinities give NaN or infinity); the loop only to name the first bad entry.
  if ((x * (x - 1.0)).abs().sum() == 0.0) return;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      if (x(i, j) != 0.0 && x(i, j) != 1.0) {
        throw InputError("bernoulli: observation " + std::to_string(x(i, j)) + at_entry(i, j) +
                         " is not 0 or 1 (binary bins only)");
      }
    }
  }
}

// Bernoulli with logit link for binary bins (DESIGN.md §1):
//   log p(x | eta) = x eta - log(1 + e^eta),  x in {0, 1},  base measure 0.
// Any other x (NaN included) is an InputError.
class BernoulliObservation final : public SoftplusObservation {
 public:
  explicit BernoulliObservation(int nodes) : SoftplusObservation(nodes, {}, {}) {}
  std::string name() const override { return "bernoulli"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // 0, after check(x)
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // E sigmoid(eta) by quadrature
};

// Bernoulli: f = x eta - softplus(eta), the n = 1, shift = 0 case of SoftplusTerms.

void BernoulliObservation::check(const Eigen::ArrayXXd& x) const { check_binary(x); }

void BernoulliObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                     const Eigen::ArrayXd& eta, PointwiseDerivatives& at) const {
  SoftplusTerms& terms = softplus_scratch(x.rows());
  terms.evaluate(eta, 0.0, at.wanted[0]);
  terms.likelihood(x.col(col), 1.0, eta, at);
}

void BernoulliObservation::predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                                          Eigen::ArrayXXd& mean) const {
  mean = moments(mu, s2).of[SoftplusMoments::kP];
}

double BernoulliObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  check_binary(x);
  return 0.0;
}

// ---- The model ----

class BernoulliSpikeModel final : public SpikeModel {
 public:
  std::string name() const override { return "bernoulli"; }
  std::string description() const override {
    return "binary bins (0/1), P(spike) = sigmoid(c.z + d)";
  }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>&, bool,
                                                int nodes) const override {
    return std::make_unique<BernoulliObservation>(nodes);
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override {
    return (1.0 + (-eta).exp()).inverse();
  }
  // The logit of each mean, kept inside [1e-3, 1 - 1e-3].
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    const Eigen::ArrayXd p = means.min(1.0 - 1e-3);
    return (p / (1.0 - p)).log().matrix();
  }
  // d = log(expm1(lambda)) = logit(1 - exp(-lambda)): the probability that a Poisson unit of
  // expected count lambda per bin fires in the bin at all.
  Eigen::VectorXd simulated_offsets(const Eigen::VectorXd& log_expected_counts) const override {
    return log_expected_counts.array().exp().expm1().log().matrix();
  }
  double draw(double mean, const std::vector<double>&, RandomStream& stream) const override {
    return stream.next_uniform() < mean ? 1.0 : 0.0;
  }
  std::uint64_t simulation_code() const override { return 6; }
};

}  // namespace

std::shared_ptr<const SpikeModel> make_bernoulli_spike_model() {
  return std::make_shared<BernoulliSpikeModel>();
}

}  // namespace spikevi
