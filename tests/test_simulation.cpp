#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "spikevi/error.hpp"
#include "spikevi/simulation.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

SimulationSettings small_settings() {
  SimulationSettings s;
  s.neurons = 20;
  s.trials = 12;
  s.bins = 50;
  return s;
}

bool counts_equal(const Dataset& a, const Dataset& b) {
  if (a.held() != b.held()) return false;
  for (int k = 0; k < a.held(); ++k)
    if (a.counts[k] != b.counts[k]) return false;
  return true;
}

std::vector<int> concatenate_sorted(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  return a;
}

TEST(Simulation, SameSeedGivesIdenticalDataAndDifferentSeedDoesNot) {
  const SimulationSettings settings = small_settings();
  const Dataset first = simulate(settings);
  const Dataset again = simulate(settings);
  EXPECT_TRUE(counts_equal(first, again));
  EXPECT_EQ(first.truth->C, again.truth->C);
  EXPECT_EQ(first.split->test_trials, again.split->test_trials);

  SimulationSettings other = settings;
  other.seed = 2;
  const Dataset different = simulate(other);
  EXPECT_FALSE(counts_equal(first, different));
  EXPECT_NE(first.truth->C, different.truth->C);
}

TEST(Simulation, TrialDrawsDoNotDependOnTheNumberOfTrials) {
  SimulationSettings settings = small_settings();
  settings.trials = 10;
  settings.min_length_fraction = 0.5;
  const Dataset ten = simulate(settings);
  settings.trials = 20;
  const Dataset twenty = simulate(settings);
  EXPECT_EQ(ten.truth->A, twenty.truth->A);
  EXPECT_EQ(ten.truth->d, twenty.truth->d);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(ten.trial_lengths[k], twenty.trial_lengths[k]) << "trial " << k;
    EXPECT_EQ(ten.truth->latents[k], twenty.truth->latents[k]) << "trial " << k;
    EXPECT_EQ(ten.counts[k], twenty.counts[k]) << "trial " << k;
  }
}

TEST(Simulation, NeuronParametersDoNotDependOnTheNumberOfNeurons) {
  SimulationSettings settings = small_settings();
  const Dataset fewer = simulate(settings);
  settings.neurons = 30;
  const Dataset more = simulate(settings);
  EXPECT_EQ(fewer.truth->C, more.truth->C.topRows(20));
  EXPECT_EQ(fewer.truth->d, more.truth->d.head(20));
}

TEST(Simulation, ShapesAndRatesFollowTheModel) {
  const Dataset data = simulate(small_settings());
  const Truth& truth = *data.truth;
  EXPECT_EQ(data.path, "");
  EXPECT_EQ(data.first_trial, 0);
  EXPECT_EQ(data.held(), data.trials);
  EXPECT_EQ(truth.observation, "poisson");
  EXPECT_EQ(truth.C.rows(), 20);
  EXPECT_EQ(truth.dim(), 4);
  for (int k = 0; k < data.held(); ++k) {
    ASSERT_EQ(data.counts[k].cols(), data.trial_lengths[k]);
    Eigen::MatrixXd log_rates = truth.C * truth.latents[k];
    log_rates.colwise() += truth.d;
    EXPECT_LT(testing::max_abs_diff(truth.rates[k], log_rates.array().exp().matrix()), 1e-12);
    EXPECT_TRUE((data.counts[k].array() >= 0.0).all());
    EXPECT_TRUE((data.counts[k].array() == data.counts[k].array().round()).all());
  }
}

TEST(Simulation, DynamicsAreStableRotationsWithIdentityStationaryCovariance) {
  SimulationSettings settings = small_settings();
  settings.latents = 5;
  const Truth truth = truth_parameters(settings);
  const Eigen::MatrixXd stationary = truth.A * truth.Sigma0 * truth.A.transpose() + truth.Q;
  EXPECT_LT(testing::max_abs_diff(stationary, truth.Sigma0), 1e-12);
  EXPECT_GT(truth.Q.llt().matrixL().toDenseMatrix().diagonal().minCoeff(), 0.0);
  const Eigen::VectorXcd eigenvalues = truth.A.eigenvalues();
  for (Eigen::Index i = 0; i < eigenvalues.size(); ++i) {
    EXPECT_GE(std::abs(eigenvalues(i)), 0.97 - 1e-12);
    EXPECT_LE(std::abs(eigenvalues(i)), 0.99 + 1e-12);
  }
  EXPECT_EQ(truth.A(4, 4), 0.98);
  EXPECT_TRUE(truth.b.isZero());
  EXPECT_TRUE(truth.mu0.isZero());
}

TEST(Simulation, EmpiricalCountsMatchTruthRatesWithinFiveStandardErrors) {
  SimulationSettings settings = small_settings();
  settings.trials = 40;
  const Dataset data = simulate(settings);
  Eigen::VectorXd spikes = Eigen::VectorXd::Zero(settings.neurons);
  Eigen::VectorXd expected = Eigen::VectorXd::Zero(settings.neurons);
  for (int k = 0; k < data.held(); ++k) {
    spikes += data.counts[k].rowwise().sum();
    expected += data.truth->rates[k].rowwise().sum();
  }
  // Given the rates the counts are Poisson: Var(sum) = sum of the rates.
  for (int n = 0; n < settings.neurons; ++n)
    EXPECT_LT(std::abs(spikes(n) - expected(n)), 5.0 * std::sqrt(expected(n))) << "neuron " << n;
}

TEST(Simulation, LatentsHaveAboutUnitStationaryVariance) {
  SimulationSettings settings;
  settings.neurons = 2;
  settings.trials = 400;
  const Dataset data = simulate(settings);
  Eigen::VectorXd sum_squares = Eigen::VectorXd::Zero(settings.latents);
  double bins = 0.0;
  for (const Eigen::MatrixXd& z : data.truth->latents) {
    sum_squares += z.rowwise().squaredNorm();
    bins += static_cast<double>(z.cols());
  }
  // About 400 trials x 2-3 effective samples each: SE of a variance about 0.05.
  for (int i = 0; i < settings.latents; ++i)
    EXPECT_NEAR(sum_squares(i) / bins, 1.0, 0.2) << "latent " << i;
}

TEST(Simulation, SplitIsDisjointCoveringAndSorted) {
  const SimulationSettings settings;  // 40 trials, 60 neurons
  const Split split = *simulate(settings).split;
  EXPECT_EQ(split.test_trials.size(), 8u);
  EXPECT_EQ(split.heldout_neurons.size(), 15u);
  EXPECT_EQ(split.neurons, 60);
  EXPECT_TRUE(std::is_sorted(split.train_trials.begin(), split.train_trials.end()));
  EXPECT_TRUE(std::is_sorted(split.test_trials.begin(), split.test_trials.end()));
  EXPECT_TRUE(std::is_sorted(split.heldout_neurons.begin(), split.heldout_neurons.end()));
  std::vector<int> all(40);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(concatenate_sorted(split.train_trials, split.test_trials), all);
  EXPECT_TRUE(std::adjacent_find(split.heldout_neurons.begin(), split.heldout_neurons.end()) ==
              split.heldout_neurons.end());
  EXPECT_GE(split.heldout_neurons.front(), 0);
  EXPECT_LT(split.heldout_neurons.back(), 60);
  // A shuffled split, not the first or last trials.
  EXPECT_NE(split.test_trials, std::vector<int>({0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_NE(split.test_trials, std::vector<int>({32, 33, 34, 35, 36, 37, 38, 39}));
}

TEST(Simulation, SmallFractionsStillHoldOutOneTrialAndOneNeuron) {
  SimulationSettings settings = small_settings();
  settings.test_fraction = 0.01;
  settings.heldout_fraction = 0.01;
  const Split split = *simulate(settings).split;
  EXPECT_EQ(split.test_trials.size(), 1u);
  EXPECT_EQ(split.heldout_neurons.size(), 1u);
}

TEST(Simulation, RaggedTrialLengthsStayInRange) {
  SimulationSettings settings = small_settings();
  settings.trials = 60;
  settings.bins = 100;
  settings.min_length_fraction = 0.5;
  const Dataset data = simulate(settings);
  ASSERT_EQ(data.trial_lengths.size(), 60u);
  for (int k = 0; k < data.trials; ++k) {
    EXPECT_GE(data.trial_lengths[k], 50);
    EXPECT_LE(data.trial_lengths[k], 100);
    EXPECT_EQ(data.counts[k].cols(), data.trial_lengths[k]);
    EXPECT_EQ(data.truth->latents[k].cols(), data.trial_lengths[k]);
    EXPECT_EQ(data.truth->rates[k].cols(), data.trial_lengths[k]);
  }
  const auto [shortest, longest] =
      std::minmax_element(data.trial_lengths.begin(), data.trial_lengths.end());
  EXPECT_LT(*shortest, 60);
  EXPECT_GT(*longest, 90);
}

TEST(Simulation, SparsePresetHasSilentAndBurstyUnits) {
  SimulationSettings settings;
  settings.neurons = 200;
  settings.trials = 4;
  const SimulationSettings sparse = sparse_preset(settings);
  EXPECT_EQ(sparse.neurons, 200);
  const Truth truth = truth_parameters(sparse);
  int low_rate = 0, bursty = 0;
  std::vector<double> ordinary_log_rates;
  for (int n = 0; n < sparse.neurons; ++n) {
    const double baseline_hz = std::exp(truth.d(n)) / sparse.bin_width_s;
    const bool low = baseline_hz >= 0.5 - 1e-9 && baseline_hz <= 2.0 + 1e-9;
    low_rate += low ? 1 : 0;
    if (!low) ordinary_log_rates.push_back(std::log(baseline_hz));
    bursty +=
        low && (truth.C.row(n).array() > 0.0).all() && truth.C.row(n).norm() > sparse.readout_scale
            ? 1
            : 0;
  }
  EXPECT_GT(low_rate, 90);  // about 60 % of 200
  EXPECT_LT(low_rate, 150);
  EXPECT_GT(bursty, 5);  // about 10 % of 200
  EXPECT_LT(bursty, 40);
  // Ordinary units keep their log-normal baselines (geometric mean 20 Hz, log SD 0.5): the
  // unit-type draw must not leak into the rate draw.
  const Eigen::Map<const Eigen::ArrayXd> logs(ordinary_log_rates.data(),
                                              static_cast<Eigen::Index>(ordinary_log_rates.size()));
  const double mean = logs.mean();
  const double sd = std::sqrt((logs - mean).square().mean());
  EXPECT_NEAR(mean, std::log(20.0), 0.2);
  EXPECT_NEAR(sd, 0.5, 0.15);
}

TEST(Simulation, SparsePresetHasMoreSilentBinsAndRaggedTrials) {
  const SimulationSettings settings;
  const Dataset dense = simulate(settings);
  const Dataset sparse = simulate(sparse_preset(settings));
  auto zero_fraction = [](const Dataset& data) {
    double zeros = 0.0, bins = 0.0;
    for (const Eigen::MatrixXd& c : data.counts) {
      zeros += static_cast<double>((c.array() == 0.0).count());
      bins += static_cast<double>(c.size());
    }
    return zeros / bins;
  };
  EXPECT_GT(zero_fraction(sparse), zero_fraction(dense) + 0.15);
  EXPECT_LT(*std::min_element(sparse.trial_lengths.begin(), sparse.trial_lengths.end()), 100);
}

TEST(Simulation, InvalidSettingsNameTheOption) {
  auto message = [](SimulationSettings s) -> std::string {
    try {
      validate_settings(s);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  SimulationSettings s;
  s.neurons = 0;
  EXPECT_EQ(message(s), "--neurons must be >= 2 (got 0)");
  s = {};
  s.trials = 1;
  EXPECT_NE(message(s).find("--trials"), std::string::npos);
  s = {};
  s.heldout_fraction = 1.0;
  EXPECT_NE(message(s).find("--heldout-fraction must be in [0, 1) (got 1)"), std::string::npos);
  s = {};
  s.min_length_fraction = 0.0;
  EXPECT_NE(message(s).find("--min-length-fraction"), std::string::npos);
  s = {};
  s.bin_width_s = -0.01;
  EXPECT_NE(message(s).find("--bin-width"), std::string::npos);
  s = {};
  s.silent_fraction = 0.7;
  s.bursty_fraction = 0.5;
  EXPECT_NE(message(s).find("--bursty-fraction"), std::string::npos);
  s = {};
  s.latents = 0;
  EXPECT_THROW(simulate(s), ConfigError);
  EXPECT_EQ(message(SimulationSettings{}), "");
  EXPECT_EQ(message(sparse_preset()), "");
}

}  // namespace
}  // namespace spikevi
