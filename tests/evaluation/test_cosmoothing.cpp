#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/model/simulation.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using Matrices = std::vector<Eigen::MatrixXd>;

Eigen::MatrixXd matrix(int rows, int cols, std::initializer_list<double> row_major) {
  Eigen::MatrixXd m(rows, cols);
  auto value = row_major.begin();
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = *value++;
  return m;
}

std::string error_message(const Matrices& rates, const Matrices& counts) {
  try {
    bits_per_spike(rates, counts);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// The test-trial, held-out-neuron views of the default simulation.
struct CosmoothingCase {
  Matrices train_heldin, train_heldout, test_heldin, test_heldout, true_rates;
};

CosmoothingCase default_case() {
  const Dataset data = simulate(SimulationSettings{});
  const Split& split = *data.split;
  const std::vector<int> heldin = split.heldin_neurons();
  CosmoothingCase c;
  c.train_heldin = select_trials_and_rows(data.counts, 0, split.train_trials, heldin);
  c.train_heldout =
      select_trials_and_rows(data.counts, 0, split.train_trials, split.heldout_neurons);
  c.test_heldin = select_trials_and_rows(data.counts, 0, split.test_trials, heldin);
  c.test_heldout = select_trials_and_rows(data.counts, 0, split.test_trials, split.heldout_neurons);
  c.true_rates =
      select_trials_and_rows(data.truth->rates, 0, split.test_trials, split.heldout_neurons);
  return c;
}

const CosmoothingCase& shared_case() {
  static const CosmoothingCase c = default_case();
  return c;
}

Matrices scaled(Matrices rates, double factor) {
  for (Eigen::MatrixXd& r : rates) r *= factor;
  return rates;
}

TEST(BitsPerSpike, MatchesAHandComputedExample) {
  const Matrices counts = {matrix(2, 3, {1, 0, 2, 0, 0, 0}), matrix(2, 2, {0, 3, 1, 0})};
  const Matrices rates = {matrix(2, 3, {0.5, 0.5, 1.5, 0.1, 0.2, 0.1}),
                          matrix(2, 2, {1.0, 2.0, 0.5, 0.25})};
  // NLL = sum(r - x log r); null rates: neuron 0 6 spikes / 5 bins, neuron 1 1 / 5.
  const double nll_model =
      6.65 - (std::log(0.5) + 2 * std::log(1.5) + 3 * std::log(2.0) + std::log(0.5));
  const double nll_null = (6.0 - 6.0 * std::log(1.2)) + (1.0 - std::log(0.2));
  EXPECT_NEAR(bits_per_spike(rates, counts), (nll_null - nll_model) / (7.0 * std::log(2.0)), 1e-14);
}

TEST(BitsPerSpike, NeuronWithoutSpikesAddsOnlyItsPredictedRates) {
  const Matrices counts = {matrix(2, 2, {2, 0, 0, 0})};
  const Matrices rates = {matrix(2, 2, {1.5, 0.5, 0.3, 0.1})};
  // Neuron 1: null rate 0 (0 log 0 = 0, NLL 0); model NLL 0.4.
  const double nll_model = 2.0 - 2.0 * std::log(1.5) + 0.4;
  const double nll_null = 2.0 - 2.0 * std::log(1.0);
  EXPECT_NEAR(bits_per_spike(rates, counts), (nll_null - nll_model) / (2.0 * std::log(2.0)), 1e-14);
}

TEST(BitsPerSpike, ZeroRateInABinWithSpikesCostsTheNlbFloor) {
  const Matrices counts = {matrix(1, 2, {1, 0})};
  const Matrices rates = {matrix(1, 2, {0.0, 0.5})};
  const double nll_model = 0.5 - std::log(1e-9);
  const double nll_null = 1.0 - std::log(0.5);
  EXPECT_NEAR(bits_per_spike(rates, counts), (nll_null - nll_model) / std::log(2.0), 1e-12);
}

TEST(BitsPerSpike, NullPredictionsScoreZero) {
  const CosmoothingCase& c = shared_case();
  const Eigen::Index neurons = c.test_heldout.front().rows();
  Eigen::VectorXd spikes = Eigen::VectorXd::Zero(neurons);
  double bins = 0.0;
  for (const Eigen::MatrixXd& x : c.test_heldout) {
    spikes += x.rowwise().sum();
    bins += static_cast<double>(x.cols());
  }
  Matrices null_rates;
  for (const Eigen::MatrixXd& x : c.test_heldout)
    null_rates.push_back((spikes / bins).replicate(1, x.cols()));
  EXPECT_NEAR(bits_per_spike(null_rates, c.test_heldout), 0.0, 1e-12);
}

TEST(BitsPerSpike, TrueRatesScorePositiveAndRescalingThemScoresLower) {
  const CosmoothingCase& c = shared_case();
  const double truth = bits_per_spike(c.true_rates, c.test_heldout);
  EXPECT_GT(truth, 0.0);
  EXPECT_LT(bits_per_spike(scaled(c.true_rates, 0.5), c.test_heldout), truth);
  EXPECT_LT(bits_per_spike(scaled(c.true_rates, 2.0), c.test_heldout), truth);
}

TEST(BitsPerSpike, RejectsBadInputNamingTrialAndNeuron) {
  const Matrices counts = {matrix(2, 2, {1, 0, 0, 1}), matrix(2, 1, {1, 1})};
  Matrices rates = {matrix(2, 2, {1, 1, 1, 1}), matrix(2, 1, {1, -0.5})};
  const std::string negative = error_message(rates, counts);
  EXPECT_NE(negative.find("test trial 1, held-out neuron 1"), std::string::npos) << negative;
  rates[1](1, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(error_message(rates, counts).find("held-out neuron 1"), std::string::npos);
  rates[1] = Eigen::MatrixXd::Ones(2, 2);
  EXPECT_NE(error_message(rates, counts).find("test trial 1"), std::string::npos);
  rates.pop_back();
  EXPECT_NE(error_message(rates, counts), "");
  const Matrices silent = {Eigen::MatrixXd::Zero(2, 2)};
  EXPECT_NE(error_message({Eigen::MatrixXd::Ones(2, 2)}, silent).find("no spikes"),
            std::string::npos);
}

// Poisson data with known weights on features of mixed scale and offset.
struct RegressionProblem {
  Eigen::MatrixXd features;
  Eigen::VectorXd counts, weights;
  double intercept = -0.2;
};

RegressionProblem regression_problem(int rows) {
  std::mt19937_64 rng(7);
  RegressionProblem p;
  p.features = testing::random_normal(rows, 4, rng);
  p.features.col(3) = 10.0 * p.features.col(3).array() + 5.0;
  p.weights = Eigen::Vector4d(0.4, -0.3, 0.2, 0.03);
  p.counts.resize(rows);
  for (int i = 0; i < rows; ++i) {
    const double rate = std::exp(p.intercept + p.features.row(i).dot(p.weights));
    p.counts(i) = static_cast<double>(std::poisson_distribution<int>(rate)(rng));
  }
  return p;
}

TEST(PoissonRegression, NewtonRecoversKnownWeightsWithinFourStandardErrors) {
  const RegressionProblem p = regression_problem(4000);
  const PoissonRegression fit = fit_poisson_regression(p.features, p.counts);
  EXPECT_TRUE(fit.converged);
  EXPECT_LT(fit.iterations, 20);
  // Standard errors from the Fisher information at the truth, design [1, X].
  Eigen::MatrixXd design(p.features.rows(), 5);
  design << Eigen::VectorXd::Ones(p.features.rows()), p.features;
  const Eigen::ArrayXd mu = ((design.rightCols(4) * p.weights).array() + p.intercept).exp();
  const Eigen::MatrixXd fisher = design.transpose() * (mu.matrix().asDiagonal() * design);
  const Eigen::VectorXd se = fisher.inverse().diagonal().cwiseSqrt();
  EXPECT_LT(std::abs(fit.intercept - p.intercept), 4.0 * se(0));
  for (int j = 0; j < 4; ++j)
    EXPECT_LT(std::abs(fit.weights(j) - p.weights(j)), 4.0 * se(j + 1)) << "weight " << j;
}

TEST(PoissonRegression, StrongRidgeShrinksWeightsToTheConstantFit) {
  const RegressionProblem p = regression_problem(500);
  const PoissonRegression fit = fit_poisson_regression(p.features, p.counts, {1e9});
  EXPECT_TRUE(fit.converged);
  EXPECT_LT(fit.weights.cwiseAbs().maxCoeff(), 1e-5);
  EXPECT_NEAR(fit.intercept, std::log(p.counts.mean()), 1e-4);
}

TEST(PoissonRegression, CollinearFeaturesWithoutPenaltyStillConverge) {
  RegressionProblem p = regression_problem(1000);
  Eigen::MatrixXd doubled(p.features.rows(), 5);
  doubled << p.features, p.features.col(0);
  const PoissonRegression fit = fit_poisson_regression(doubled, p.counts);
  EXPECT_TRUE(fit.weights.allFinite() && std::isfinite(fit.intercept));
  EXPECT_NEAR(fit.weights(0) + fit.weights(4), p.weights(0), 0.1);
}

TEST(PoissonRegression, WarmStartReachesTheSameOptimum) {
  const RegressionProblem p = regression_problem(2000);
  const PoissonRegression strong = fit_poisson_regression(p.features, p.counts, {200.0});
  const PoissonRegression cold = fit_poisson_regression(p.features, p.counts, {2.0});
  const PoissonRegression warm = fit_poisson_regression(p.features, p.counts, {2.0}, &strong);
  EXPECT_TRUE(warm.converged);
  EXPECT_LT(testing::max_abs_diff(warm.weights, cold.weights), 1e-6);
  EXPECT_NEAR(warm.intercept, cold.intercept, 1e-6);
  EXPECT_LE(warm.iterations, cold.iterations);
}

TEST(PoissonRegression, RejectsAllZeroCounts) {
  EXPECT_THROW(fit_poisson_regression(Eigen::MatrixXd::Ones(3, 1), Eigen::VectorXd::Zero(3)),
               InputError);
}

TEST(SmoothingBaseline, BeatsTheNullButNotTheTrueRates) {
  const CosmoothingCase& c = shared_case();
  const SmoothingBaseline baseline =
      smoothing_baseline(c.train_heldin, c.train_heldout, c.test_heldin);
  const double score = bits_per_spike(baseline.rates, c.test_heldout);
  const double truth = bits_per_spike(c.true_rates, c.test_heldout);
  std::cout << "[ co-bps  ] smoothing baseline " << score << " (kernel SD "
            << baseline.kernel_sd_bins << " bins), true rates " << truth << "\n";
  EXPECT_EQ(baseline.cv_log_likelihood.size(), 4u);
  EXPECT_EQ(baseline.unconverged, 0);
  EXPECT_GT(score, 0.0);
  EXPECT_LT(score, truth);
}

TEST(SmoothingBaseline, FixedSettingsSkipCrossValidation) {
  const CosmoothingCase& c = shared_case();
  SmoothingBaselineSettings settings;
  settings.kernel_sd_candidates.clear();
  settings.ridge_candidates.clear();
  settings.kernel_sd_bins = 3.0;
  settings.ridge = 0.05;
  const SmoothingBaseline baseline =
      smoothing_baseline(c.train_heldin, c.train_heldout, c.test_heldin, settings);
  EXPECT_EQ(baseline.kernel_sd_bins, 3.0);
  EXPECT_EQ(baseline.ridge, std::vector<double>(c.train_heldout.front().rows(), 0.05));
  EXPECT_TRUE(baseline.cv_log_likelihood.empty());
  ASSERT_EQ(baseline.rates.size(), c.test_heldin.size());
  EXPECT_EQ(baseline.rates.front().rows(), c.test_heldout.front().rows());
  EXPECT_EQ(baseline.rates.front().cols(), c.test_heldout.front().cols());
}

TEST(SmoothingBaseline, FixedKernelStillChoosesARidgePerNeuron) {
  const CosmoothingCase& c = shared_case();
  SmoothingBaselineSettings settings;
  settings.kernel_sd_candidates = {2.0};
  const SmoothingBaseline baseline =
      smoothing_baseline(c.train_heldin, c.train_heldout, c.test_heldin, settings);
  EXPECT_EQ(baseline.kernel_sd_bins, settings.kernel_sd_bins);
  EXPECT_EQ(baseline.cv_log_likelihood.size(), 1u);
  for (double ridge : baseline.ridge)
    EXPECT_NE(std::find(settings.ridge_candidates.begin(), settings.ridge_candidates.end(), ridge),
              settings.ridge_candidates.end());
}

TEST(SmoothingBaseline, DoesNotExtrapolateBeyondTheTrainingFeatureRange) {
  const Matrices heldin = {matrix(1, 10, {0, 1, 2, 3, 4, 0, 1, 2, 3, 4})};
  const Matrices heldout = {matrix(1, 10, {0, 1, 1, 3, 4, 0, 2, 2, 3, 5})};
  SmoothingBaselineSettings settings;
  settings.kernel_sd_candidates.clear();
  settings.kernel_sd_bins = 0.3;
  // Single-bin test trials are not smoothed: held-in counts far above anything seen in training.
  const Matrices rates = smoothing_baseline_rates(
      heldin, heldout, {matrix(1, 1, {1000}), matrix(1, 1, {2000})}, settings);
  EXPECT_EQ(rates[0](0, 0), rates[1](0, 0));
  EXPECT_LT(rates[0](0, 0), 10.0);
}

TEST(SmoothingBaseline, StaysFiniteAndUsefulOnTheSparsePreset) {
  const Dataset data = simulate(sparse_preset());
  const Split& split = *data.split;
  const std::vector<int> heldin = split.heldin_neurons();
  SmoothingBaselineSettings settings;
  settings.kernel_sd_candidates.clear();
  const Matrices rates = smoothing_baseline_rates(
      select_trials_and_rows(data.counts, 0, split.train_trials, heldin),
      select_trials_and_rows(data.counts, 0, split.train_trials, split.heldout_neurons),
      select_trials_and_rows(data.counts, 0, split.test_trials, heldin), settings);
  const Matrices counts =
      select_trials_and_rows(data.counts, 0, split.test_trials, split.heldout_neurons);
  const double score = bits_per_spike(rates, counts);
  EXPECT_GT(score, 0.0);
  EXPECT_LT(score, bits_per_spike(select_trials_and_rows(data.truth->rates, 0, split.test_trials,
                                                         split.heldout_neurons),
                                  counts));
}

TEST(SmoothingBaseline, SilentTrainNeuronGetsATinyConstantRate) {
  const Matrices heldin = {matrix(1, 4, {1, 0, 2, 1}), matrix(1, 3, {0, 1, 0})};
  const Matrices heldout = {Eigen::MatrixXd::Zero(1, 4), Eigen::MatrixXd::Zero(1, 3)};
  const Matrices rates = smoothing_baseline_rates(heldin, heldout, {matrix(1, 2, {3, 0})});
  ASSERT_EQ(rates.size(), 1u);
  EXPECT_NEAR(rates[0](0, 0), 0.5 / 7.0, 1e-12);
  EXPECT_NEAR(rates[0](0, 1), 0.5 / 7.0, 1e-12);
}

TEST(SmoothingBaseline, RejectsInconsistentShapesAndSettings) {
  const Matrices heldin = {Eigen::MatrixXd::Ones(2, 4)};
  const Matrices heldout = {Eigen::MatrixXd::Ones(1, 3)};
  EXPECT_THROW(smoothing_baseline(heldin, heldout, heldin), InputError);
  EXPECT_THROW(smoothing_baseline({}, {}, heldin), InputError);
  const Matrices heldout_ok = {Eigen::MatrixXd::Ones(1, 4)};
  EXPECT_THROW(smoothing_baseline(heldin, heldout_ok, {Eigen::MatrixXd::Ones(3, 4)}), InputError);
  SmoothingBaselineSettings settings;
  settings.ridge = -1.0;
  EXPECT_THROW(smoothing_baseline(heldin, heldout_ok, heldin, settings), ConfigError);
}

// A held-out neuron whose rate is a power of the held-in rate, lambda_out = 0.04 r^2, is
// log-linear in log r exactly and only approximately in r: the NLB variant (log features)
// must predict it better than the raw-feature one.
TEST(SmoothingBaseline, LogFeaturesWinWhenTheRateIsAPowerOfTheHeldInRate) {
  std::mt19937 generator(7);
  const auto trials_of = [&](int count) {
    Matrices heldin, heldout;
    for (int k = 0; k < count; ++k) {
      Eigen::MatrixXd in(3, 80), out(1, 80);
      for (int t = 0; t < 80; ++t) {
        const double r = 6.0 + 5.0 * std::sin(0.15 * t + 0.7 * k);
        for (int n = 0; n < 3; ++n) in(n, t) = std::poisson_distribution<int>(r)(generator);
        out(0, t) = std::poisson_distribution<int>(0.04 * r * r)(generator);
      }
      heldin.push_back(in);
      heldout.push_back(out);
    }
    return std::make_pair(heldin, heldout);
  };
  const auto [train_in, train_out] = trials_of(40);
  const auto [test_in, test_out] = trials_of(20);
  SmoothingBaselineSettings raw, log;
  log.features = SmoothingFeatures::kLog;
  const double raw_bps =
      bits_per_spike(smoothing_baseline(train_in, train_out, test_in, raw).rates, test_out);
  const double log_bps =
      bits_per_spike(smoothing_baseline(train_in, train_out, test_in, log).rates, test_out);
  EXPECT_GT(log_bps, raw_bps + 0.005) << "raw " << raw_bps << ", log " << log_bps;
  EXPECT_GT(raw_bps, 0.0);
  EXPECT_EQ(smoothing_features_name(SmoothingFeatures::kLog), "log");
}

}  // namespace
}  // namespace spikevi
