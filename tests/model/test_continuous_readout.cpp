// The Gaussian-modality readout (DESIGN.md §3): closed-form regression statistics over observed
// bins, their SVI blend, and the MAP solve, against exact answers.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/model/continuous_readout.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::random_normal;

// q(z) with the given means and covariance `variance` I in every bin.
GaussianMoments moments(const Eigen::MatrixXd& mean, double variance) {
  const int D = static_cast<int>(mean.rows()), T = static_cast<int>(mean.cols());
  GaussianMoments q;
  q.mean = mean;
  q.cov = (variance * Eigen::MatrixXd::Identity(D, D)).replicate(1, T);
  q.lag_cov = Eigen::MatrixXd::Zero(D, D * T);
  return q;
}

TEST(RegressionStatistics, SumOverObservedBinsOnly) {
  std::mt19937_64 rng(1);
  const int D = 2, T = 4;
  const GaussianMoments q = moments(random_normal(D, T, rng), 0.3);
  Eigen::ArrayXXd y = random_normal(2, T, rng).array();
  y(1, 2) = std::nan("");
  RegressionStatistics stats = RegressionStatistics::zero(2, D);
  stats.add_trial(y, q);
  Eigen::MatrixXd second = Eigen::MatrixXd::Zero(D + 1, D + 1);
  Eigen::VectorXd cross = Eigen::VectorXd::Zero(D + 1);
  double squares = 0.0;
  for (int t = 0; t < T; ++t) {
    if (t == 2) continue;
    Eigen::VectorXd tilde(D + 1);
    tilde << q.mean.col(t), 1.0;
    second += tilde * tilde.transpose();
    second.topLeftCorner(D, D) += q.cov_block(t);
    cross += y(1, t) * tilde;
    squares += y(1, t) * y(1, t);
  }
  EXPECT_LT(testing::max_abs_diff(stats.second_moment.middleCols(D + 1, D + 1), second), 1e-13);
  EXPECT_LT(testing::max_abs_diff(stats.cross.col(1), cross), 1e-13);
  EXPECT_NEAR(stats.sum_squares(1), squares, 1e-13);
  EXPECT_EQ(stats.observed(0), 4.0);
  EXPECT_EQ(stats.observed(1), 3.0);
  EXPECT_THROW(stats.add_trial(Eigen::ArrayXXd::Zero(3, T), q), InputError);
}

TEST(RegressionStatistics, BlendIsTheConvexCombinationOfScaledStatistics) {
  std::mt19937_64 rng(2);
  RegressionStatistics a = RegressionStatistics::zero(1, 1), b = a;
  a.add_trial(random_normal(1, 5, rng).array(), moments(random_normal(1, 5, rng), 0.1));
  b.add_trial(random_normal(1, 5, rng).array(), moments(random_normal(1, 5, rng), 0.2));
  RegressionStatistics blended = a;
  blended.blend(b, 4.0, 0.25);
  EXPECT_NEAR(blended.sum_squares(0), 0.75 * a.sum_squares(0) + b.sum_squares(0), 1e-12);
  EXPECT_NEAR(blended.observed(0), 0.75 * 5 + 5.0, 1e-12);
  blended = a;
  blended.blend(b, 1.0, 1.0);  // full batch: the batch itself
  EXPECT_EQ(blended.cross, b.cross);
}

TEST(ContinuousReadout, SolveRecoversTheTrueReadoutFromExactLatents) {
  // 20000 bins of exact latents (no posterior variance): the MAP solution is within a few
  // standard errors of the truth, SE(w) ~ sqrt(R / n) ~ 0.002 and SE(R) ~ R sqrt(2 / n) ~ 0.001.
  std::mt19937_64 rng(3);
  const int D = 3, channels = 2, T = 20000;
  const Eigen::MatrixXd W = random_normal(channels, D, rng);
  const Eigen::VectorXd e = random_normal(channels, 1, rng);
  const Eigen::Vector2d R(0.1, 0.5);
  const Eigen::MatrixXd z = random_normal(D, T, rng);
  Eigen::MatrixXd y = (W * z).colwise() + e;
  y += (R.array().sqrt().matrix().asDiagonal() * random_normal(channels, T, rng));
  ContinuousReadout modality = make_continuous_readout("behavior", channels, ReadoutPrior::weak(D));
  modality.statistics.add_trial(y.array(), moments(z, 0.0));
  solve_continuous_readout(modality, ReadoutPrior::weak(D), NoisePrior{});
  EXPECT_LT(testing::max_abs_diff(modality.readout.C, W), 0.02);
  EXPECT_LT(testing::max_abs_diff(modality.readout.d, e), 0.02);
  EXPECT_NEAR(modality.variances(0), R(0), 0.006);
  EXPECT_NEAR(modality.variances(1), R(1), 0.03);
  // The Laplace precision is S_zz / R + P0.
  const Eigen::MatrixXd P0 = ReadoutPrior::weak(D).precision;
  const Eigen::MatrixXd expected =
      modality.statistics.second_moment.leftCols(D + 1) / modality.variances(0) + P0;
  EXPECT_LT(testing::max_abs_diff(modality.readout.precision.leftCols(D + 1), expected), 1e-8);
}

TEST(ContinuousReadout, ChannelWithoutObservationsStaysAtThePrior) {
  const ReadoutPrior prior = ReadoutPrior::weak(2);
  ContinuousReadout modality = make_continuous_readout("calcium", 1, prior);
  solve_continuous_readout(modality, prior, NoisePrior{});
  EXPECT_LT(modality.readout.C.cwiseAbs().maxCoeff(), 1e-15);
  // inverse-gamma mode scale / (shape + 1)
  EXPECT_NEAR(modality.variances(0), NoisePrior{}.scale / (NoisePrior{}.shape + 1.0), 1e-15);
}

TEST(NoisePrior, LogDensityIsTheInverseGamma) {
  const NoisePrior prior{2.0, 0.5};
  const double R = 0.3;
  const double expected = 2.0 * std::log(0.5) - std::lgamma(2.0) - 3.0 * std::log(R) - 0.5 / R;
  EXPECT_NEAR(prior.log_density(Eigen::VectorXd::Constant(1, R)), expected, 1e-13);
}

}  // namespace
}  // namespace spikevi
