#include <gtest/gtest.h>

#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/predictive_coverage.hpp"

namespace spikevi {
namespace {

using Matrices = std::vector<Eigen::MatrixXd>;

// 40 trials x 3 neurons x 50 bins of log-rate moments, and counts drawn from
// Poisson(exp(eta)) with eta ~ N(mu, s2 * truth_variance_factor), optionally over-dispersed by
// a gamma-distributed rate multiplier of shape `shape` (0: none).
struct Case {
  Matrices mean, variance, counts;
  std::vector<int> trials;
};

Case make_case(double truth_variance_factor, double shape, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal;
  Case c;
  for (int k = 0; k < 40; ++k) {
    Eigen::MatrixXd mu(3, 50), s2(3, 50), x(3, 50);
    for (int n = 0; n < 3; ++n)
      for (int t = 0; t < 50; ++t) {
        mu(n, t) = std::log(0.5 + n) + 0.8 * std::sin(0.2 * t + k);
        s2(n, t) = 0.1 + 0.05 * n;
        double rate =
            std::exp(mu(n, t) + std::sqrt(s2(n, t) * truth_variance_factor) * normal(generator));
        if (shape > 0) rate *= std::gamma_distribution<double>(shape, 1.0 / shape)(generator);
        x(n, t) = std::poisson_distribution<int>(rate)(generator);
      }
    c.mean.push_back(mu);
    c.variance.push_back(s2);
    c.counts.push_back(x);
    c.trials.push_back(k);
  }
  return c;
}

PredictiveCoverage coverage_of(const Case& c) {
  const auto poisson = builtin_spike_models().get("poisson");
  return predictive_coverage(*poisson, RowParameters{}, c.mean, c.variance, c.counts, c.trials);
}

// 6000 counts: the binomial SD of a pooled coverage is at most 0.0065; 4 SD = 0.026.
TEST(PredictiveCoverage, CalibratedPredictionsCoverTheirNominalLevels) {
  const PredictiveCoverage coverage = coverage_of(make_case(1.0, 0.0, 11));
  EXPECT_EQ(coverage.scored, 6000.0);
  ASSERT_EQ(coverage.pooled.size(), 3u);
  for (std::size_t l = 0; l < coverage.levels.size(); ++l)
    EXPECT_NEAR(coverage.pooled[l], coverage.levels[l], 0.026) << coverage.levels[l];
  for (std::size_t c = 0; c < coverage.curve_levels.size(); ++c)
    EXPECT_NEAR(coverage.curve_coverage[c], coverage.curve_levels[c], 0.026);
  EXPECT_EQ(coverage.per_neuron.rows(), 3);
  // Per neuron 2000 counts: SD at most 0.011.
  EXPECT_LT((coverage.per_neuron.col(2).array() - 0.95).abs().maxCoeff(), 0.045);
}

TEST(PredictiveCoverage, OverDispersedCountsAreUnderCovered) {
  const PredictiveCoverage coverage = coverage_of(make_case(1.0, 1.5, 12));
  EXPECT_LT(coverage.pooled[2], 0.95 - 0.05);
  EXPECT_LT(coverage.pooled[0], 0.5 - 0.05);
}

TEST(PredictiveCoverage, TooWidePredictionsAreOverCovered) {
  Case c = make_case(1.0, 0.0, 13);
  for (Eigen::MatrixXd& s2 : c.variance) s2 *= 12.0;  // the prediction claims more spread
  const PredictiveCoverage coverage = coverage_of(c);
  EXPECT_GT(coverage.pooled[0], 0.5 + 0.05);
}

TEST(PredictiveCoverage, IsReproducibleAndRefusesBadInput) {
  const Case c = make_case(1.0, 0.0, 14);
  EXPECT_EQ(coverage_of(c).pooled, coverage_of(c).pooled);
  const auto poisson = builtin_spike_models().get("poisson");
  PredictiveCoverageSettings bad;
  bad.levels = {1.0};
  EXPECT_THROW(predictive_coverage(*poisson, {}, c.mean, c.variance, c.counts, c.trials, bad),
               ConfigError);
  Matrices short_counts = c.counts;
  short_counts.pop_back();
  EXPECT_THROW(predictive_coverage(*poisson, {}, c.mean, c.variance, short_counts, c.trials),
               InputError);
}

// Gaussian modality: two trials of 2 channels x 100 bins whose values sit at the predictive
// quantiles u_i = (i + 1/2) / 200, i = 0..199 (trial i / 100, bin i % 100): channel 0 at the
// predicted sd, channel 1 at `wide` times it. Means and variances differ from bin to bin.
struct GaussianCase {
  Matrices mean, variance, values;
};

GaussianCase quantile_grid(double wide) {
  const boost::math::normal standard;
  GaussianCase c;
  for (int k = 0; k < 2; ++k) {
    Eigen::MatrixXd mu(2, 100), s2(2, 100), y(2, 100);
    for (int t = 0; t < 100; ++t) {
      const double z = boost::math::quantile(standard, (100.0 * k + t + 0.5) / 200.0);
      for (int j = 0; j < 2; ++j) {
        mu(j, t) = 3.0 * std::sin(0.3 * t) - j;
        s2(j, t) = 0.2 + 0.01 * t + k;
        y(j, t) = mu(j, t) + (j == 0 ? 1.0 : wide) * std::sqrt(s2(j, t)) * z;
      }
    }
    c.mean.push_back(mu);
    c.variance.push_back(s2);
    c.values.push_back(y);
  }
  return c;
}

// A calibrated channel: the central level-a interval holds exactly the u_i with
// |u_i - 1/2| <= a/2, which is a * 200 of them for every level that is a multiple of 1/200
// (the boundaries fall halfway between grid points, so rounding cannot move one).
TEST(GaussianPredictiveCoverage, CalibratedQuantilesGiveTheNominalLevelsExactly) {
  const GaussianCase c = quantile_grid(1.0);
  const PredictiveCoverage coverage = gaussian_predictive_coverage(c.mean, c.variance, c.values);
  EXPECT_EQ(coverage.scored, 400.0);
  ASSERT_EQ(coverage.levels.size(), 3u);
  for (std::size_t l = 0; l < 3; ++l) {
    EXPECT_NEAR(coverage.pooled[l], coverage.levels[l], 1e-12);
    for (Eigen::Index j = 0; j < 2; ++j)
      EXPECT_NEAR(coverage.per_neuron(j, static_cast<Eigen::Index>(l)), coverage.levels[l], 1e-12);
  }
  ASSERT_EQ(coverage.curve_levels.size(), 19u);
  for (std::size_t i = 0; i < 19; ++i)
    EXPECT_NEAR(coverage.curve_coverage[i], coverage.curve_levels[i], 1e-12);
}

// Values spread twice as wide as predicted: y = mu + 2 sd z, so the PIT is Phi(2 z) and the
// level-a interval covers P(|Z| <= z_a / 2) = 2 Phi(z_a / 2) - 1 of a calibrated sample
// (0.6729 for a = 0.95), up to the grid's resolution of 1/200 (one grid point either side).
TEST(GaussianPredictiveCoverage, OverConfidentChannelIsUnderCoveredByTheKnownAmount) {
  const GaussianCase c = quantile_grid(2.0);
  const PredictiveCoverage coverage = gaussian_predictive_coverage(c.mean, c.variance, c.values);
  const boost::math::normal standard;
  for (std::size_t l = 0; l < 3; ++l) {
    const double a = coverage.levels[l];
    const double expected =
        2.0 * boost::math::cdf(standard, 0.5 * boost::math::quantile(standard, 0.5 + 0.5 * a)) -
        1.0;
    const auto col = static_cast<Eigen::Index>(l);
    EXPECT_NEAR(coverage.per_neuron(0, col), a, 1e-12);          // channel 0 stays calibrated
    EXPECT_NEAR(coverage.per_neuron(1, col), expected, 0.0075);  // 1.5 grid points
    EXPECT_NEAR(coverage.pooled[l], 0.5 * (a + coverage.per_neuron(1, col)), 1e-12);
  }
  EXPECT_NEAR(coverage.per_neuron(1, 2), 0.6729, 0.0075);
}

TEST(GaussianPredictiveCoverage, SkipsMissingValuesAndRefusesBadInput) {
  GaussianCase c = quantile_grid(1.0);
  c.values[1].col(7).setConstant(std::nan(""));
  EXPECT_EQ(gaussian_predictive_coverage(c.mean, c.variance, c.values).scored, 398.0);
  GaussianCase zero = quantile_grid(1.0);
  zero.variance[0](1, 3) = 0.0;
  EXPECT_THROW(gaussian_predictive_coverage(zero.mean, zero.variance, zero.values), NumericalError);
  Matrices short_values = c.values;
  short_values.pop_back();
  EXPECT_THROW(gaussian_predictive_coverage(c.mean, c.variance, short_values), InputError);
  Matrices narrow = c.values;
  narrow[0] = narrow[0].leftCols(50).eval();
  EXPECT_THROW(gaussian_predictive_coverage(c.mean, c.variance, narrow), InputError);
  Matrices missing = c.values;
  for (Eigen::MatrixXd& y : missing) y.setConstant(std::nan(""));
  EXPECT_THROW(gaussian_predictive_coverage(c.mean, c.variance, missing), InputError);
  PredictiveCoverageSettings bad;
  bad.levels = {0.0};
  EXPECT_THROW(gaussian_predictive_coverage(c.mean, c.variance, c.values, bad), ConfigError);
}

}  // namespace
}  // namespace spikevi
