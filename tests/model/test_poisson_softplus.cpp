// The softplus-link Poisson spike model (src/model/spike/poisson_softplus.cpp): pointwise
// derivatives against finite differences across the regimes of the link, expectations against
// a much finer quadrature, and the link's inverse.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {
namespace {

std::unique_ptr<ObservationModel> softplus_poisson(int nodes = 20) {
  return builtin_spike_models().get("poisson-softplus")->observation({}, false, nodes);
}

// f and its derivatives at the points eta (one column of counts x), orders 0..4.
PointwiseDerivatives derivatives_at(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                    const Eigen::ArrayXd& eta) {
  PointwiseDerivatives at;
  at.wanted = {true, true, true, true, true};
  for (auto& order : at.of_order) order.resize(eta.size());
  model.pointwise(x, 0, eta, at);
  return at;
}

TEST(SoftplusPoisson, PointwiseDerivativesMatchCentralDifferences) {
  const auto model = softplus_poisson();
  const Eigen::ArrayXd eta =
      (Eigen::ArrayXd(8) << -35.0, -12.0, -3.0, -0.5, 0.0, 1.5, 6.0, 25.0).finished();
  for (double count : {0.0, 1.0, 4.0}) {
    const Eigen::ArrayXXd x = Eigen::ArrayXXd::Constant(eta.size(), 1, count);
    const PointwiseDerivatives at = derivatives_at(*model, x, eta);
    const double h = 1e-4;
    for (int k = 0; k < 4; ++k) {
      const Eigen::ArrayXd up = derivatives_at(*model, x, eta + h).of_order[k];
      const Eigen::ArrayXd down = derivatives_at(*model, x, eta - h).of_order[k];
      const Eigen::ArrayXd difference = (up - down) / (2 * h);
      for (Eigen::Index i = 0; i < eta.size(); ++i) {
        // Central differences err by h^2 f''' / 6 plus rounding ~ 1e-16 |f| / h.
        const double tolerance = 1e-6 * (1.0 + std::abs(at.of_order[k + 1](i))) +
                                 1e-11 * (1.0 + std::abs(at.of_order[k](i)));
        EXPECT_NEAR(at.of_order[k + 1](i), difference(i), tolerance)
            << "order " << k + 1 << ", eta " << eta(i) << ", x " << count;
      }
    }
    for (Eigen::Index i = 0; i < eta.size(); ++i)
      EXPECT_LE(at.of_order[2](i), 0.0) << "log-concave, eta " << eta(i);
  }
}

TEST(SoftplusPoisson, ValueIsTheLogLikelihoodWithoutTheBaseMeasure) {
  const auto model = softplus_poisson();
  const Eigen::ArrayXd eta = (Eigen::ArrayXd(3) << -2.0, 0.3, 4.0).finished();
  const Eigen::ArrayXXd x = (Eigen::ArrayXXd(3, 1) << 0.0, 2.0, 7.0).finished();
  const PointwiseDerivatives at = derivatives_at(*model, x, eta);
  for (Eigen::Index i = 0; i < 3; ++i) {
    const double rate = std::log1p(std::exp(eta(i)));
    EXPECT_NEAR(at.of_order[0](i), x(i, 0) * std::log(rate) - rate, 1e-14);
  }
}

// 20 nodes against 120 for eta ~ N(mu, s2) over the ranges a fit meets. softplus is analytic
// only in the strip |Im eta| < pi (poles at +-i pi), so Gauss-Hermite converges geometrically
// at a rate set by sd / pi rather than super-exponentially as for exp: with s2 up to 2 the
// 20-node error measured here is ~5e-8; 1e-6 leaves room and is far below what a fit resolves.
TEST(SoftplusPoisson, TwentyNodeExpectationsAgreeWithAFineRule) {
  const auto coarse = softplus_poisson(20), fine = softplus_poisson(120);
  Eigen::ArrayXXd x(3, 4), mu(3, 4), s2(3, 4);
  x << 0, 1, 3, 0, 2, 0, 5, 1, 0, 0, 1, 9;
  mu << -4, -1, 0.5, 2, -8, 0, 1, 3, -2, -0.5, 0.2, 2.5;
  s2 << 0.01, 0.5, 1, 2, 0.1, 0.3, 0.8, 0.05, 1.5, 0.2, 0.6, 0.4;
  Eigen::ArrayXXd ell[2], g[2], G[2], mean[2];
  coarse->expected_log_likelihood(x, mu, s2, ell[0], g[0], G[0]);
  fine->expected_log_likelihood(x, mu, s2, ell[1], g[1], G[1]);
  coarse->predicted_mean(mu, s2, mean[0]);
  fine->predicted_mean(mu, s2, mean[1]);
  EXPECT_LT((ell[0] - ell[1]).abs().maxCoeff(), 1e-6);
  EXPECT_LT((g[0] - g[1]).abs().maxCoeff(), 1e-6);
  EXPECT_LT((G[0] - G[1]).abs().maxCoeff(), 1e-6);
  EXPECT_LT((mean[0] - mean[1]).abs().maxCoeff(), 1e-6);
  EXPECT_TRUE((G[0] <= 0).all());
}

TEST(SoftplusPoisson, OffsetsInvertTheLink) {
  const auto model = builtin_spike_models().get("poisson-softplus");
  const Eigen::ArrayXd means = (Eigen::ArrayXd(4) << 0.01, 0.3, 2.0, 40.0).finished();
  const Eigen::ArrayXd offsets = model->offsets_for_means(means).array();
  EXPECT_LT((model->mean_of(offsets) - means).abs().maxCoeff(), 1e-12);
  EXPECT_FALSE(model->has_closed_form());
}

}  // namespace
}  // namespace spikevi
