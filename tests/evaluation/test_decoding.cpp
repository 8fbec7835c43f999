// Decoding a Gaussian modality (include/spikevi/evaluation/decoding.hpp, DESIGN.md §1):
// the posterior predictive y_tj ~ N(w_j m_t + e_j, w_j' S_t w_j + R_j) against values worked
// out by hand, its central intervals against the normal quantile written out to 17 digits,
// and R^2 and coverage against their closed forms, NaN = missing.
//
// Tolerances: every input below is a small dyadic rational, so the means, variances, sums of
// squares and R^2 are exact in double precision and are compared exactly. What is rounded is a
// square root (correctly rounded) and the quantile z: the level is a double, and the rounding
// of (1 + level) / 2 (~1e-16) is amplified by dz/dp = 1 / phi(z) <= 70 for the levels used,
// on top of the quantile's own few ulps. So intervals are compared to 1e-14 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/decoding.hpp"

namespace spikevi {
namespace {

using Matrices = std::vector<Eigen::MatrixXd>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Eigen::MatrixXd matrix(int rows, int cols, std::initializer_list<double> row_major) {
  Eigen::MatrixXd m(rows, cols);
  auto value = row_major.begin();
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = *value++;
  return m;
}

void expect_near_relative(double actual, double expected, const char* what) {
  EXPECT_NEAR(actual, expected, 1e-14 * std::abs(expected)) << what;
}

// Two channels read out of D = 2 latents:
//   W = [1 2; 0 -1], e = (0.5, -1), R = (0.25, 1).
ContinuousReadout two_channels() {
  ContinuousReadout modality;
  modality.name = "behavior";
  modality.readout.C = matrix(2, 2, {1, 2, 0, -1});
  modality.readout.d = Eigen::Vector2d(0.5, -1);
  modality.variances = Eigen::Vector2d(0.25, 1);
  return modality;
}

// Trial 0: two bins, m_1 = (1, -1), m_2 = (0, 2), S_1 = [1 0.5; 0.5 2], S_2 = diag(0.5, 0.25).
// Trial 1: one bin, m_1 = (2, 0), S_1 = 0 (a latent known exactly: only R_j is left).
std::vector<GaussianMoments> two_trials() {
  GaussianMoments first, second;
  first.mean = matrix(2, 2, {1, 0, -1, 2});
  first.cov = matrix(2, 4, {1, 0.5, 0.5, 0, 0.5, 2, 0, 0.25});
  first.lag_cov = Eigen::MatrixXd::Zero(2, 4);
  second.mean = matrix(2, 1, {2, 0});
  second.cov = Eigen::MatrixXd::Zero(2, 2);
  second.lag_cov = Eigen::MatrixXd::Zero(2, 2);
  return {first, second};
}

// By hand, W m_t + e:     trial 0: channel 0 -0.5, 4.5;               channel 1 0, -3
//                         trial 1: channel 0 2.5;                     channel 1 -1
// and w_j' S_t w_j + R_j: trial 0: channel 0 11 + 0.25, 1.5 + 0.25;   channel 1 2 + 1, 0.25 + 1
//                         trial 1: channel 0 0.25;                    channel 1 1
const Matrices kMeans = {matrix(2, 2, {-0.5, 4.5, 0, -3}), matrix(2, 1, {2.5, -1})};
const Matrices kVariances = {matrix(2, 2, {11.25, 1.75, 3, 1.25}), matrix(2, 1, {0.25, 1})};

// The normal quantile of (1 + level) / 2, to 17 significant digits.
constexpr double kZ95 = 1.9599639845400539;
constexpr double kZ50 = 0.67448975019608174;
constexpr double kZ90 = 1.6448536269514728;
constexpr double kZ99 = 2.5758293035489005;

TEST(PredictModality, GivesThePosteriorPredictiveMeanOfEveryChannelAndBin) {
  const DecodedModality decoded = predict_modality(two_channels(), two_trials());
  ASSERT_EQ(decoded.mean.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_EQ(decoded.mean[k].rows(), kMeans[k].rows());  // channels x T_k
    ASSERT_EQ(decoded.mean[k].cols(), kMeans[k].cols());
    EXPECT_TRUE(decoded.mean[k] == kMeans[k]) << "trial " << k << ":\n" << decoded.mean[k];
  }
}

TEST(PredictModality, GivesTheCentralIntervalOfTheLatentAndNoiseVariance) {
  // [mean - z sd, mean + z sd], sd = sqrt(w_j' S_t w_j + R_j), z for the default level 0.95
  const DecodedModality decoded = predict_modality(two_channels(), two_trials());
  ASSERT_EQ(decoded.lower.size(), 2u);
  ASSERT_EQ(decoded.upper.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_EQ(decoded.lower[k].rows(), 2);
    ASSERT_EQ(decoded.lower[k].cols(), kMeans[k].cols());
    ASSERT_EQ(decoded.upper[k].cols(), kMeans[k].cols());
    for (int j = 0; j < 2; ++j)
      for (int t = 0; t < kMeans[k].cols(); ++t) {
        const double half = kZ95 * std::sqrt(kVariances[k](j, t));
        expect_near_relative(decoded.lower[k](j, t), kMeans[k](j, t) - half, "lower");
        expect_near_relative(decoded.upper[k](j, t), kMeans[k](j, t) + half, "upper");
      }
  }
  // the exactly known latent of trial 1 leaves the noise alone: channel 0 is 2.5 -/+ z 0.5
  expect_near_relative(decoded.upper[1](0, 0) - decoded.lower[1](0, 0), 2 * kZ95 * 0.5, "width");
}

TEST(PredictModality, UsesTheNormalQuantileOfTheRequestedLevel) {
  const std::pair<double, double> levels_and_quantiles[] = {
      {0.5, kZ50}, {0.9, kZ90}, {0.95, kZ95}, {0.99, kZ99}};
  for (const auto& [level, z] : levels_and_quantiles) {
    SCOPED_TRACE(::testing::Message() << "level " << level);
    const DecodedModality decoded = predict_modality(two_channels(), two_trials(), level);
    // trial 0, channel 0, bin 2: variance 1.75
    const double half = (decoded.upper[0](0, 1) - decoded.lower[0](0, 1)) / 2;
    expect_near_relative(half / std::sqrt(1.75), z, "z");
  }
}

TEST(PredictModality, ReturnsNothingForNoTrials) {
  const DecodedModality decoded = predict_modality(two_channels(), {});
  EXPECT_TRUE(decoded.mean.empty() && decoded.lower.empty() && decoded.upper.empty());
}

TEST(PredictModality, RefusesALevelOutsideZeroToOne) {
  for (const double level : {0.0, 1.0, -0.5, 1.5, kNaN}) {
    SCOPED_TRACE(::testing::Message() << "level " << level);
    EXPECT_THROW(predict_modality(two_channels(), two_trials(), level), ConfigError);
  }
}

// ---- R^2 and coverage

// Two channels on very different scales over a 2-bin and a 1-bin trial:
//   channel 0: 1, 3 | 5       mean 3,  sum of squares about it 4 + 0 + 4 = 8
//   channel 1: 10, 14 | 12    mean 12, sum of squares about it 4 + 4 + 0 = 8
// predicted: channel 0: 1.5, 3 | 4 (residuals 0.25 + 0 + 1), channel 1: 10, 13 | 12 (0 + 1 + 0),
// so R^2 = 1 - 2.25 / 16 exactly. (About one mean over both channels, 7.5, the total would be
// far larger: the test tells per-channel means from a pooled one.)
const Matrices kValues = {matrix(2, 2, {1, 3, 10, 14}), matrix(2, 1, {5, 12})};
const Matrices kPredictions = {matrix(2, 2, {1.5, 3, 10, 13}), matrix(2, 1, {4, 12})};
constexpr double kRSquared = 1.0 - 2.25 / 16.0;

TEST(RSquared, IsOneMinusResidualOverTotalSumOfSquaresAboutEachChannelsMean) {
  EXPECT_EQ(r_squared(kPredictions, kValues), kRSquared);
}

TEST(RSquared, IsOneForPerfectPredictionsAndZeroForTheChannelMeans) {
  EXPECT_EQ(r_squared(kValues, kValues), 1.0);
  const Matrices means = {matrix(2, 2, {3, 3, 12, 12}), matrix(2, 1, {3, 12})};
  EXPECT_EQ(r_squared(means, kValues), 0.0);
}

TEST(RSquared, LeavesMissingValuesOutOfTheMeansAndBothSums) {
  // channel 0's second value missing (its prediction far off): channel 0 is now 1 | 5, mean 3
  // over its two observed values, total 4 + 4, residuals 0.25 + 1; channel 1 as before.
  // Counting the NaN in the mean (3 values) would give mean 2 and a total of 1 + 9 for it.
  Matrices values = kValues, predictions = kPredictions;
  values[0](0, 1) = kNaN;
  predictions[0](0, 1) = 1e6;
  EXPECT_EQ(r_squared(predictions, values), kRSquared);
}

TEST(RSquared, IgnoresAChannelWithNothingObserved) {
  Matrices values, predictions;
  for (std::size_t k = 0; k < 2; ++k) {
    values.push_back(Eigen::MatrixXd::Constant(3, kValues[k].cols(), kNaN));
    values[k].topRows(2) = kValues[k];
    predictions.push_back(Eigen::MatrixXd::Constant(3, kValues[k].cols(), 7.0));
    predictions[k].topRows(2) = kPredictions[k];
  }
  EXPECT_EQ(r_squared(predictions, values), kRSquared);
}

TEST(RSquared, RefusesMismatchedTrialsOrShapes) {
  // one trial short; trial 1 with 2 bins for 1; trial 0 with 1 channel for 2
  EXPECT_THROW(r_squared({kPredictions[0]}, kValues), InputError);
  EXPECT_THROW(r_squared({kPredictions[0], kPredictions[0]}, kValues), InputError);
  EXPECT_THROW(r_squared({matrix(1, 2, {1, 3}), kPredictions[1]}, kValues), InputError);
}

TEST(RSquared, RefusesValuesWithNothingObserved) {
  const Matrices missing = {Eigen::MatrixXd::Constant(2, 2, kNaN),
                            Eigen::MatrixXd::Constant(2, 1, kNaN)};
  EXPECT_THROW(r_squared(kPredictions, missing), InputError);
  EXPECT_THROW(r_squared({}, {}), InputError);  // no trials at all
}

TEST(ScoreDecoding, CountsTheShareOfObservedValuesInsideTheirIntervals) {
  // intervals around the predictions; of the 5 observed values (one is missing) three lie
  // inside, one of them exactly on a bound (inside: the interval is closed), and two outside.
  DecodedModality decoded;
  decoded.mean = kPredictions;
  decoded.lower = {matrix(2, 2, {0, 0, 11, 13}), matrix(2, 1, {4, 0})};
  decoded.upper = {matrix(2, 2, {2, 9, 12, 14}), matrix(2, 1, {4.5, 13})};
  Matrices values = kValues;  // channel 0: 1 in [0, 2], 3 -> missing, 5 > 4.5 out
  values[0](0, 1) = kNaN;     // channel 1: 10 < 11 out, 14 on [13, 14], 12 in [0, 13]
  Matrices predictions = kPredictions;
  decoded.mean[0](0, 1) = predictions[0](0, 1) = 1e6;  // the missing value's: not scored
  const DecodingScores scores = score_decoding(decoded, values);
  EXPECT_EQ(scores.observed, 5.0);
  EXPECT_EQ(scores.coverage, 3.0 / 5.0);
  EXPECT_EQ(scores.r_squared, r_squared(predictions, values));
  EXPECT_EQ(scores.r_squared, kRSquared);
}

TEST(ScoreDecoding, RefusesPredictionsOfAnotherShape) {
  DecodedModality decoded;
  decoded.mean = decoded.lower = decoded.upper = {kPredictions[0]};
  EXPECT_THROW(score_decoding(decoded, kValues), InputError);
}

TEST(ScoreDecoding, ScoresItsOwnPredictiveIntervalsFromPredictModality) {
  // y exactly at the predictive means: R^2 = 1, every value covered at any level.
  const DecodedModality decoded = predict_modality(two_channels(), two_trials(), 0.5);
  const DecodingScores scores = score_decoding(decoded, kMeans);
  EXPECT_EQ(scores.r_squared, 1.0);
  EXPECT_EQ(scores.coverage, 1.0);
  EXPECT_EQ(scores.observed, 6.0);
}

// refit_modality_readout: y_t = 2 m_t + 1 + r_t with residuals r_t = +-a orthogonal to m and to
// the intercept, so least squares on the posterior means gives w = 2, e = 1 exactly; the
// prior's precision (1e-12) moves them by ~1e-12 relative. R = a^2 - mean_t(w^2 s_t), the
// residual variance less the latents' share. Tolerance 1e-9: the prior's pull, amplified by
// the O(1) conditioning of the 2 x 2 normal equations.
GaussianMoments one_latent(std::initializer_list<double> means, double variance) {
  GaussianMoments q;
  const auto bins = static_cast<Eigen::Index>(means.size());
  q.mean = Eigen::Map<const Eigen::RowVectorXd>(means.begin(), bins);
  q.cov = Eigen::MatrixXd::Constant(1, bins, variance);
  q.lag_cov = Eigen::MatrixXd::Zero(1, bins);
  return q;
}

TEST(RefitModalityReadout, RegressesOnThePosteriorMeansAndSubtractsTheLatentVariance) {
  const double a = 0.5, s = 0.01;
  // m = (-1, -1, 1, 1), r = a (1, -1, -1, 1): sum r = sum r m = 0.
  const std::vector<GaussianMoments> latents{one_latent({-1, -1, 1, 1}, s)};
  const Matrices values{matrix(1, 4, {2 * -1 + 1 + a, 2 * -1 + 1 - a, 2 + 1 - a, 2 + 1 + a})};
  const ReadoutPrior prior = ReadoutPrior::weak(1, 1e-12, 1e-12);
  const ContinuousReadout fitted = refit_modality_readout("y", values, latents, prior, {});
  EXPECT_NEAR(fitted.readout.C(0, 0), 2.0, 1e-9);
  EXPECT_NEAR(fitted.readout.d(0), 1.0, 1e-9);
  EXPECT_NEAR(fitted.variances(0), a * a - 4.0 * s, 1e-9);
  EXPECT_EQ(fitted.name, "y");
}

TEST(RefitModalityReadout, FloorsTheNoiseWhenTheLatentVarianceExplainsTheResiduals) {
  const double a = 0.5, s = 1.0;  // w^2 s = 4 > a^2: R floored at 1e-3 a^2
  const std::vector<GaussianMoments> latents{one_latent({-1, -1, 1, 1}, s)};
  const Matrices values{matrix(1, 4, {-1 + a, -1 - a, 3 - a, 3 + a})};
  const ContinuousReadout fitted =
      refit_modality_readout("y", values, latents, ReadoutPrior::weak(1, 1e-12, 1e-12), {});
  EXPECT_NEAR(fitted.variances(0), 1e-3 * a * a, 1e-12);
}

TEST(RefitModalityReadout, LeavesMissingValuesOutAndRefusesMismatchedTrials) {
  const double a = 0.5, s = 0.01;
  const std::vector<GaussianMoments> latents{one_latent({-1, -1, 1, 1, 7}, s)};
  const Matrices values{matrix(1, 5, {-1 + a, -1 - a, 3 - a, 3 + a, kNaN})};
  const ReadoutPrior prior = ReadoutPrior::weak(1, 1e-12, 1e-12);
  const ContinuousReadout fitted = refit_modality_readout("y", values, latents, prior, {});
  EXPECT_NEAR(fitted.readout.C(0, 0), 2.0, 1e-9);
  EXPECT_NEAR(fitted.variances(0), a * a - 4.0 * s, 1e-9);
  EXPECT_THROW(refit_modality_readout("y", Matrices{}, latents, prior, {}), InputError);
}

}  // namespace
}  // namespace spikevi
