// The full-batch VI driver on simulated data with known truth.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"

namespace spikevi {
namespace {

std::vector<TrialCounts> training_counts(const Dataset& data) {
  return make_trial_counts(data, data.split->train_trials);
}

std::size_t trials_fitted(const Dataset& data) { return data.split->train_trials.size(); }

FitSettings settings_with(int latents, int iterations) {
  FitSettings settings;
  settings.latents = latents;
  settings.iterations = iterations;
  settings.tolerance = 0.0;
  return settings;
}

// The default simulation of `spikevi simulate`: 60 neurons, D = 4, 40 trials of 100 bins.
const Dataset& default_data() {
  static const Dataset data = simulate(SimulationSettings{});
  return data;
}

TEST(FitVariational, ElboTraceNeverDecreasesInFullBatchMode) {
  SerialCommunicator comm;
  const FitOutcome outcome =
      fit_variational(training_counts(default_data()), settings_with(4, 30), comm);
  ASSERT_EQ(outcome.trace.size(), 30u);
  for (std::size_t i = 1; i < outcome.trace.size(); ++i)
    // The global step cannot lower the objective with q(z) fixed, and the local step then
    // starts from the old sites under the new globals (a different q) and climbs to the
    // optimum, stopping once a step gains < 1e-6 nats: allow that slack for each of the 32
    // training trials (the smallest observed gain is ~0.1 nats).
    EXPECT_GE(outcome.trace[i].elbo, outcome.trace[i - 1].elbo - 1e-6 * 32)
        << "iteration " << i + 1;
  EXPECT_GT(outcome.trace.back().elbo, outcome.trace.front().elbo);
}

TEST(FitVariational, HistoryLagsZeroIsTheFitWithoutHistoryBitForBit) {
  SerialCommunicator comm;
  const std::vector<TrialCounts> trials = training_counts(default_data());
  FitSettings with_zero = settings_with(3, 6);
  with_zero.history = HistorySettings{0, 3, 5.0, {0, 1, 2}};  // only K = 0 counts
  const FitOutcome plain = fit_variational(trials, settings_with(3, 6), comm);
  const FitOutcome zero = fit_variational(trials, with_zero, comm);
  ASSERT_EQ(plain.trace.size(), zero.trace.size());
  for (std::size_t i = 0; i < plain.trace.size(); ++i)
    EXPECT_EQ(plain.trace[i].elbo, zero.trace[i].elbo) << "iteration " << i + 1;
  EXPECT_EQ(plain.globals.spikes.C, zero.globals.spikes.C);
  EXPECT_EQ(plain.globals.spikes.d, zero.globals.spikes.d);
  EXPECT_FALSE(zero.globals.history.active());
}

TEST(FitVariational, HistoryFitKeepsTheElboMonotoneAndLearnsItsWeights) {
  SerialCommunicator comm;
  FitSettings settings = settings_with(3, 15);
  settings.history.lags = 2;
  settings.history.rows = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22};
  const FitOutcome outcome = fit_variational(training_counts(default_data()), settings, comm);
  ASSERT_EQ(outcome.trace.size(), 15u);
  for (std::size_t i = 1; i < outcome.trace.size(); ++i)
    EXPECT_GE(outcome.trace[i].elbo, outcome.trace[i - 1].elbo - 1e-6 * 32)
        << "iteration " << i + 1;
  const HistoryCoupling& history = outcome.globals.history;
  ASSERT_TRUE(history.active());
  EXPECT_EQ(history.features(), 2 * 4);  // K = 2 lags x P = min(4, 12) components
  EXPECT_EQ(history.basis.rows, settings.history.rows);
  EXPECT_GT(history.B.cwiseAbs().maxCoeff(), 0.0);  // moved from its prior mean
  EXPECT_TRUE(history.B.allFinite());
}

TEST(FitVariational, CosmoothingComesWithinHundredthOfABitOfTheTrueParameters) {
  const Dataset& data = default_data();
  SerialCommunicator comm;
  const FitOutcome outcome = fit_variational(training_counts(data), settings_with(4, 40), comm);
  const LocalStepSettings local{.tolerance = 1e-8, .max_iterations = 200};
  const double fitted =
      cosmooth(InferenceModel::of(outcome.globals, ModelSettings{}), data, local).bits_per_spike;
  const double truth = cosmooth(truth_model(*data.truth), data, local).bits_per_spike;
  EXPECT_GT(truth, 0.05);  // the simulation carries real shared structure
  EXPECT_NEAR(fitted, truth, 0.01);
}

TEST(FitVariational, StaysStableOnSparseBurstyRaggedRecordings) {
  SimulationSettings sparse = sparse_preset();
  sparse.seed = 7;
  const Dataset data = simulate(sparse);
  SerialCommunicator comm;
  const FitOutcome outcome = fit_variational(training_counts(data), settings_with(4, 25), comm);
  for (std::size_t i = 1; i < outcome.trace.size(); ++i)
    EXPECT_GE(outcome.trace[i].elbo,
              outcome.trace[i - 1].elbo - 1e-6 * static_cast<double>(trials_fitted(data)));
  // No runaway baselines: every fitted offset stays within a factor e^3 of the neuron's
  // empirical mean count, and the loadings stay bounded.
  const std::vector<TrialCounts> trials = training_counts(data);
  Eigen::VectorXd mean_count = Eigen::VectorXd::Zero(data.neurons);
  double bins = 0;
  for (const TrialCounts& t : trials) {
    mean_count += t.counts.rowwise().sum().matrix();
    bins += static_cast<double>(t.counts.cols());
  }
  mean_count /= bins;
  for (int n = 0; n < data.neurons; ++n) {
    const double floor = std::log(std::max(mean_count(n), 1e-3));
    EXPECT_LT(outcome.globals.spikes.d(n), floor + 3.0) << "neuron " << n;
  }
  EXPECT_LT(outcome.globals.spikes.C.cwiseAbs().maxCoeff(), 10.0);
  const double max_rate =
      predicted_rates(outcome.globals.spikes, {outcome.posteriors.front().moments})[0].maxCoeff();
  EXPECT_LT(max_rate, 50.0);  // expected counts per bin stay physiological
}

// Stochastic VI with 8 of 32 trials per iteration and a decaying step reaches the full-batch
// fit: co-smoothing within 0.01 bits/spike and the final (exact, all-trial) ELBO within 0.5 %.
TEST(FitVariational, MinibatchFitReachesTheFullBatchFit) {
  const Dataset& data = default_data();
  SerialCommunicator comm;
  const std::vector<TrialCounts> trials = training_counts(data);
  const FitOutcome full = fit_variational(trials, settings_with(4, 40), comm);
  FitSettings settings = settings_with(4, 120);  // 30 epochs
  settings.minibatch = MinibatchSettings{.size = 8, .tau = 1.0, .kappa = 0.6, .seed = 3};
  const FitOutcome stochastic = fit_variational(trials, settings, comm);
  ASSERT_EQ(stochastic.trace.size(), 120u);
  EXPECT_EQ(stochastic.trace.front().batch_trials, 8);
  EXPECT_DOUBLE_EQ(stochastic.trace[9].rho, std::pow(10.0, -0.6));
  const LocalStepSettings local{.tolerance = 1e-8, .max_iterations = 200};
  auto cobps = [&](const FitOutcome& fit) {
    return cosmooth(InferenceModel::of(fit.globals, ModelSettings{}), data, local).bits_per_spike;
  };
  EXPECT_NEAR(cobps(stochastic), cobps(full), 0.01);
  EXPECT_NEAR(stochastic.elbo, full.elbo, 0.005 * std::abs(full.elbo));
}

}  // namespace
}  // namespace spikevi
