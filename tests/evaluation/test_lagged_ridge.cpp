#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/decoding.hpp"
#include "spikevi/evaluation/lagged_ridge.hpp"

namespace spikevi {
namespace {

using Matrices = std::vector<Eigen::MatrixXd>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Poisson counts of 4 neurons and 2 channels that are an exact lagged linear function of them:
// y_t = w0 x_t + w1 x_{t-1} + w2 x_{t-2} + e (counts before the trial's start are 0).
struct Case {
  Matrices counts, values;
  Eigen::MatrixXd weights;  // 2 x 12
  Eigen::Vector2d intercept{0.5, -1.0};
};

Case exact_case(int trials, double noise_sd, unsigned seed) {
  std::mt19937 generator(seed);
  Case c;
  c.weights = Eigen::MatrixXd::Zero(2, 12);
  c.weights(0, 0) = 1.0, c.weights(0, 5) = -0.5, c.weights(0, 10) = 0.25;
  c.weights(1, 3) = 2.0, c.weights(1, 4) = 0.75;
  std::normal_distribution<double> noise(0.0, noise_sd);
  for (int k = 0; k < trials; ++k) {
    const int bins = 30 + 5 * (k % 3);  // ragged
    Eigen::MatrixXd x(4, bins), y(2, bins);
    for (Eigen::Index t = 0; t < bins; ++t)
      for (int n = 0; n < 4; ++n) x(n, t) = std::poisson_distribution<int>(2.0 + n)(generator);
    for (Eigen::Index t = 0; t < bins; ++t) {
      Eigen::VectorXd lagged = Eigen::VectorXd::Zero(12);
      for (int lag = 0; lag <= 2; ++lag)
        if (t >= lag) lagged.segment(4 * lag, 4) = x.col(t - lag);
      y.col(t) = c.weights * lagged + c.intercept;
      for (int j = 0; j < 2; ++j) y(j, t) += noise(generator);
    }
    c.counts.push_back(x);
    c.values.push_back(y);
  }
  return c;
}

TEST(LaggedRidge, RecoversAnExactLaggedFilterWithoutPenalty) {
  const Case c = exact_case(12, 0.0, 3);
  LaggedRidgeSettings settings;
  settings.ridge = 0.0;
  settings.ridge_candidates.clear();
  const LaggedRidge fit = fit_lagged_ridge(c.counts, c.values, settings);
  EXPECT_LT((fit.weights - c.weights).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LT((fit.intercept - c.intercept).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_NEAR(r_squared(fit.predict(c.counts), c.values), 1.0, 1e-12);
  EXPECT_TRUE(fit.cv_r_squared.empty());
}

TEST(LaggedRidge, MissingValuesAreLeftOutOfTheirChannelsFit) {
  Case c = exact_case(12, 0.0, 4);
  for (std::size_t k = 0; k < c.values.size(); k += 2) c.values[k](1, 3) = kNaN;
  c.values[1].row(0).setConstant(kNaN);
  LaggedRidgeSettings settings;
  settings.ridge = 0.0;
  settings.ridge_candidates.clear();
  const LaggedRidge fit = fit_lagged_ridge(c.counts, c.values, settings);
  EXPECT_LT((fit.weights - c.weights).cwiseAbs().maxCoeff(), 1e-9);
}

// With noise of SD 1 the best possible R^2 is 1 - 1 / var(y); cross-validation must land near
// it on fresh trials and choose a small ridge (the filter is well determined by 40 trials).
TEST(LaggedRidge, CrossValidatedRidgeNearlyReachesTheNoiseCeilingOnFreshTrials) {
  const Case train = exact_case(40, 1.0, 5), test = exact_case(20, 1.0, 6);
  const LaggedRidge fit = fit_lagged_ridge(train.counts, train.values);
  ASSERT_EQ(fit.cv_r_squared.size(), LaggedRidgeSettings{}.ridge_candidates.size());
  const Case clean = exact_case(20, 0.0, 6);  // the same counts, values without noise
  const double ceiling = r_squared(clean.values, test.values);
  const double achieved = r_squared(fit.predict(test.counts), test.values);
  EXPECT_GT(achieved, ceiling - 0.01) << "ceiling " << ceiling;
  EXPECT_LE(fit.ridge, 0.1);
}

TEST(LaggedRidge, RefusesBadInput) {
  const Case c = exact_case(4, 0.0, 7);
  LaggedRidgeSettings bad;
  bad.lags = -1;
  EXPECT_THROW(fit_lagged_ridge(c.counts, c.values, bad), ConfigError);
  EXPECT_THROW(fit_lagged_ridge({}, {}), InputError);
  Matrices short_values = c.values;
  short_values[2] = short_values[2].leftCols(5).eval();  // eval: the block aliases its matrix
  EXPECT_THROW(fit_lagged_ridge(c.counts, short_values), InputError);
  Matrices silent = c.values;
  for (Eigen::MatrixXd& v : silent) v.row(0).setConstant(kNaN);
  EXPECT_THROW(fit_lagged_ridge(c.counts, silent), InputError);
}

}  // namespace
}  // namespace spikevi
