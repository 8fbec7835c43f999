#include <gtest/gtest.h>

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

}  // namespace
}  // namespace spikevi
