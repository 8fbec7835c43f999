#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/model/simulation.hpp"
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

// ---- observation models, behaviour and inputs ----

bool latents_equal(const Dataset& a, const Dataset& b) {
  if (a.truth->latents.size() != b.truth->latents.size()) return false;
  for (std::size_t k = 0; k < a.truth->latents.size(); ++k)
    if (a.truth->latents[k] != b.truth->latents[k]) return false;
  return true;
}

// Pinned from `spikevi simulate` before the observation, behaviour and input options existed:
// the default draws must never move (the numpy prototype cross-check depends on them).
TEST(Simulation, DefaultDrawsArePinned) {
  EXPECT_EQ(simulate(SimulationSettings{}).total_spikes(), 145786.0);
  SimulationSettings sparse = sparse_preset();
  sparse.seed = 3;
  EXPECT_EQ(simulate(sparse).total_spikes(), 54959.0);
}

TEST(Simulation, NewOptionsAtTheirDefaultsChangeNothing) {
  const SimulationSettings plain = small_settings();
  SimulationSettings explicit_defaults = plain;
  explicit_defaults.observation = "poisson";
  explicit_defaults.behavior_channels = 0;
  explicit_defaults.inputs = 0;
  // Inert without the option they qualify.
  explicit_defaults.row_parameters["dispersion"] = 4.0;
  explicit_defaults.behavior_scale = 2.0;
  explicit_defaults.behavior_noise = 0.5;
  explicit_defaults.behavior_missing = 0.3;
  const Dataset a = simulate(plain);
  const Dataset b = simulate(explicit_defaults);
  EXPECT_TRUE(counts_equal(a, b));
  EXPECT_TRUE(latents_equal(a, b));
  EXPECT_EQ(a.truth->rates, b.truth->rates);
  EXPECT_EQ(a.truth->C, b.truth->C);
  EXPECT_EQ(a.truth->d, b.truth->d);
  EXPECT_TRUE(b.continuous.empty());
  EXPECT_TRUE(b.inputs.empty());
  EXPECT_EQ(b.truth->B.size(), 0);
  EXPECT_TRUE(b.truth->continuous.empty());
  EXPECT_TRUE(b.truth->row_parameters.empty());
}

TEST(Simulation, BehaviorAndCountModelsLeaveTheLatentsAlone) {
  const SimulationSettings plain = small_settings();
  const Dataset poisson = simulate(plain);
  SimulationSettings with_behavior = plain;
  with_behavior.behavior_channels = 3;
  with_behavior.behavior_missing = 0.2;
  const Dataset behavior = simulate(with_behavior);
  EXPECT_TRUE(counts_equal(poisson, behavior));
  EXPECT_TRUE(latents_equal(poisson, behavior));
  for (const char* observation : {"negative_binomial", "bernoulli"}) {
    SimulationSettings other = plain;
    other.observation = observation;
    const Dataset data = simulate(other);
    EXPECT_TRUE(latents_equal(poisson, data)) << observation;
    EXPECT_EQ(poisson.truth->C, data.truth->C) << observation;
    EXPECT_EQ(data.truth->observation, observation);
  }
}

TEST(Simulation, ChannelAndInputDrawsDoNotDependOnHowManyThereAre) {
  SimulationSettings settings = small_settings();
  settings.behavior_channels = 2;
  settings.behavior_missing = 0.1;
  settings.inputs = 1;
  const Dataset fewer = simulate(settings);
  settings.behavior_channels = 4;
  settings.inputs = 3;
  const Dataset more = simulate(settings);
  const ContinuousTruth& two = fewer.truth->continuous.at(kBehaviorModality);
  const ContinuousTruth& four = more.truth->continuous.at(kBehaviorModality);
  EXPECT_EQ(two.W, four.W.topRows(2));
  EXPECT_EQ(two.e, four.e.head(2));
  EXPECT_EQ(fewer.truth->B, more.truth->B.leftCols(1));
  for (int k = 0; k < fewer.held(); ++k) {
    EXPECT_EQ(fewer.inputs[k], more.inputs[k].topRows(1)) << "trial " << k;
    const Eigen::MatrixXd& y2 = fewer.continuous.at(kBehaviorModality)[k];
    const Eigen::MatrixXd& y4 = more.continuous.at(kBehaviorModality)[k];
    // The latents differ (more inputs drive them), so compare the noise and the missing mask.
    const Eigen::MatrixXd noise2 =
        y2 - two.W * fewer.truth->latents[k] - two.e.replicate(1, y2.cols());
    const Eigen::MatrixXd noise4 =
        (y4 - four.W * more.truth->latents[k] - four.e.replicate(1, y4.cols())).topRows(2);
    EXPECT_TRUE((noise2.array().isNaN() == noise4.array().isNaN()).all()) << "trial " << k;
    EXPECT_LT(
        (noise2 - noise4).array().isNaN().select(0.0, (noise2 - noise4).array().abs()).maxCoeff(),
        1e-12)
        << "trial " << k;
  }
}

TEST(Simulation, NegativeBinomialCountsHaveTheirMeanVarianceAndZeros) {
  SimulationSettings settings = small_settings();
  settings.trials = 80;
  settings.mean_rate_hz = 50.0;  // about one spike per bin: informative about the variance
  settings.observation = "negative_binomial";
  settings.row_parameters["dispersion"] = 1.5;
  const Dataset data = simulate(settings);
  const Truth& truth = *data.truth;
  EXPECT_EQ(truth.row_parameters.at("dispersion"),
            Eigen::VectorXd::Constant(settings.neurons, 1.5));
  // Pooled over all 80,000 (trial, bin, neuron) entries x, each with its own mean lambda and
  // variance V = lambda + lambda^2 / r:
  // * sum(x - lambda) has SD sqrt(sum V);
  // * the weighted moment estimate 1/r-hat = sum w ((x - lambda)^2 - lambda) / sum w lambda^2
  //   is unbiased for 1/r, with SE sqrt(sum w^2 a^2) / sum w lambda^2, a = (x - lambda)^2 -
  //   lambda - lambda^2 / r (estimated from the data). The weights w = 1 / (V (1 + (2 + 6/r) V))
  //   are about 1 / Var((x - lambda)^2), so that a few bins of large lambda (heavy-tailed
  //   squares) do not dominate; unweighted, the SE varies tenfold between seeds.
  // * the number of zeros has mean sum p0, p0 = (r / (r + lambda))^r, and SD sqrt(sum p0 (1 - p0)).
  // Five SE each: a false failure has probability below 1e-5 (the worst over 30 seeds was 1.9).
  const double r = settings.row_parameters.at("dispersion");
  double deviation = 0.0, variance = 0.0;
  double excess = 0.0, signal = 0.0, a_squared = 0.0;
  double zeros = 0.0, expected_zeros = 0.0, zero_variance = 0.0;
  for (int k = 0; k < data.held(); ++k) {
    Eigen::MatrixXd log_rates = truth.C * truth.latents[k];
    log_rates.colwise() += truth.d;
    EXPECT_LT(testing::max_abs_diff(truth.rates[k], log_rates.array().exp().matrix()), 1e-12);
    const Eigen::ArrayXXd x = data.counts[k].array(), lambda = truth.rates[k].array();
    EXPECT_TRUE((x >= 0.0).all() && (x == x.round()).all());
    const Eigen::ArrayXXd v = lambda + lambda.square() / r;
    const Eigen::ArrayXXd w = (v * (1.0 + (2.0 + 6.0 / r) * v)).inverse();
    deviation += (x - lambda).sum();
    variance += v.sum();
    excess += (w * ((x - lambda).square() - lambda)).sum();
    signal += (w * lambda.square()).sum();
    a_squared += (w * ((x - lambda).square() - v)).square().sum();
    const Eigen::ArrayXXd p0 = (r / (r + lambda)).pow(r);
    zeros += (x == 0.0).cast<double>().sum();
    expected_zeros += p0.sum();
    zero_variance += (p0 * (1.0 - p0)).sum();
  }
  EXPECT_LT(std::abs(deviation), 5.0 * std::sqrt(variance));
  const double inverse_shape = excess / signal;
  const double standard_error = std::sqrt(a_squared) / signal;
  EXPECT_NEAR(inverse_shape, 1.0 / r, 5.0 * standard_error);
  EXPECT_LT(5.0 * standard_error, 0.5 / r);  // discriminating: Poisson has 1/r = 0
  EXPECT_NEAR(zeros, expected_zeros, 5.0 * std::sqrt(zero_variance));
}

TEST(Simulation, BernoulliCountsAreBinaryWithSigmoidMean) {
  SimulationSettings settings = small_settings();
  settings.trials = 40;
  settings.observation = "bernoulli";
  const Dataset data = simulate(settings);
  const Truth& truth = *data.truth;
  EXPECT_TRUE(truth.row_parameters.empty());
  // The baseline probability is that of a Poisson unit with the same baseline firing at all.
  SimulationSettings poisson_settings = settings;
  poisson_settings.observation = "poisson";
  const Eigen::ArrayXd lambda = truth_parameters(poisson_settings).d.array().exp();
  EXPECT_LT(testing::max_abs_diff(1.0 / (1.0 + (-truth.d.array()).exp()),
                                  (1.0 - (-lambda).exp()).matrix()),
            1e-12);
  // Given the probabilities p the bins are independent Bernoulli: Var(sum x) = sum p(1 - p).
  Eigen::VectorXd deviation = Eigen::VectorXd::Zero(settings.neurons);
  Eigen::VectorXd variance = Eigen::VectorXd::Zero(settings.neurons);
  for (int k = 0; k < data.held(); ++k) {
    Eigen::MatrixXd eta = truth.C * truth.latents[k];
    eta.colwise() += truth.d;
    const Eigen::ArrayXXd p = truth.rates[k].array();
    EXPECT_LT(testing::max_abs_diff(p.matrix(), (1.0 / (1.0 + (-eta.array()).exp())).matrix()),
              1e-12);
    const Eigen::ArrayXXd x = data.counts[k].array();
    EXPECT_TRUE(((x == 0.0) || (x == 1.0)).all()) << "trial " << k;
    deviation += (x - p).matrix().rowwise().sum();
    variance += (p * (1.0 - p)).matrix().rowwise().sum();
  }
  for (int n = 0; n < settings.neurons; ++n)
    EXPECT_LT(std::abs(deviation(n)), 5.0 * std::sqrt(variance(n))) << "neuron " << n;
  EXPECT_LT(std::abs(deviation.sum()), 5.0 * std::sqrt(variance.sum()));
}

TEST(Simulation, BehaviorResidualsHaveVarianceRAndMissingValuesTheirShare) {
  SimulationSettings settings = small_settings();
  settings.trials = 40;
  settings.min_length_fraction = 0.5;
  settings.behavior_channels = 3;
  settings.behavior_noise = 0.1;
  settings.behavior_missing = 0.2;
  const Dataset data = simulate(settings);
  ASSERT_EQ(data.continuous.size(), 1u);
  const std::vector<Eigen::MatrixXd>& y = data.continuous.at(kBehaviorModality);
  const ContinuousTruth& readout = data.truth->continuous.at(kBehaviorModality);
  EXPECT_EQ(readout.W.rows(), 3);
  EXPECT_EQ(readout.W.cols(), settings.latents);
  EXPECT_EQ(readout.R, Eigen::VectorXd::Constant(3, 0.1));
  EXPECT_GT(readout.W.norm(), 0.0);
  ASSERT_EQ(y.size(), static_cast<std::size_t>(data.trials));
  Eigen::ArrayXd sum = Eigen::ArrayXd::Zero(3), sum_squares = Eigen::ArrayXd::Zero(3);
  Eigen::ArrayXd observed = Eigen::ArrayXd::Zero(3);
  double values = 0.0;
  for (int k = 0; k < data.held(); ++k) {
    ASSERT_EQ(y[k].rows(), 3);
    ASSERT_EQ(y[k].cols(), data.trial_lengths[k]);
    Eigen::MatrixXd residual = y[k] - readout.W * data.truth->latents[k];
    residual.colwise() -= readout.e;
    const Eigen::ArrayXXd seen = (!residual.array().isNaN()).cast<double>();
    const Eigen::ArrayXXd r = residual.array().isNaN().select(0.0, residual.array());
    observed += seen.rowwise().sum();
    sum += r.rowwise().sum();
    sum_squares += r.square().rowwise().sum();
    values += static_cast<double>(residual.size());
  }
  // Missing share: binomial SE sqrt(0.2 * 0.8 / values), about 0.005 for ~4500 values.
  const double missing = 1.0 - observed.sum() / values;
  EXPECT_NEAR(missing, 0.2, 5.0 * std::sqrt(0.2 * 0.8 / values));
  // Residuals are N(0, R): SE of the mean sqrt(R / n), of the mean square R sqrt(2 / n), with
  // n about 1200 observed values per channel; five SE.
  for (int j = 0; j < 3; ++j) {
    const double n = observed(j);
    EXPECT_NEAR(sum(j) / n, 0.0, 5.0 * std::sqrt(0.1 / n)) << "channel " << j;
    EXPECT_NEAR(sum_squares(j) / n, 0.1, 5.0 * 0.1 * std::sqrt(2.0 / n)) << "channel " << j;
  }
}

TEST(Simulation, InputsArePulsesThatDriveTheLatentsThroughB) {
  SimulationSettings settings = small_settings();
  settings.trials = 40;
  settings.bins = 100;
  settings.inputs = 2;
  const Dataset data = simulate(settings);
  SimulationSettings no_inputs = settings;
  no_inputs.inputs = 0;
  const Dataset undriven = simulate(no_inputs);
  const Truth& truth = *data.truth;
  const int dim = settings.latents;
  ASSERT_EQ(truth.B.rows(), dim);
  ASSERT_EQ(truth.B.cols(), 2);
  ASSERT_EQ(data.inputs.size(), static_cast<std::size_t>(data.trials));

  // The same noise draws: the inputs' effect z - z_undriven follows delta_t = A delta_t-1 + B u_t
  // from delta_0 = 0 exactly (up to round-off), so u_kt enters the transition into bin t.
  double pulses = 0.0, slots = 0.0;
  Eigen::MatrixXd increments_outer = Eigen::MatrixXd::Zero(dim, dim);
  Eigen::MatrixXd uu = Eigen::MatrixXd::Zero(2, 2), du = Eigen::MatrixXd::Zero(dim, 2);
  double transitions = 0.0;
  for (int k = 0; k < data.held(); ++k) {
    const Eigen::MatrixXd& u = data.inputs[k];
    const Eigen::MatrixXd& z = truth.latents[k];
    ASSERT_EQ(u.rows(), 2);
    ASSERT_EQ(u.cols(), data.trial_lengths[k]);
    EXPECT_TRUE(u.col(0).isZero()) << "trial " << k;
    EXPECT_TRUE(((u.array() == 0.0) || (u.array() == 1.0)).all()) << "trial " << k;
    pulses += u.sum();
    slots += static_cast<double>(u.size() - u.rows());
    const Eigen::MatrixXd delta = z - undriven.truth->latents[k];
    EXPECT_LT(delta.col(0).cwiseAbs().maxCoeff(), 1e-12);
    for (Eigen::Index t = 1; t < z.cols(); ++t) {
      EXPECT_LT(
          (delta.col(t) - truth.A * delta.col(t - 1) - truth.B * u.col(t)).cwiseAbs().maxCoeff(),
          1e-10);
      const Eigen::VectorXd drift = z.col(t) - truth.A * z.col(t - 1) - truth.b;
      const Eigen::VectorXd increment = drift - truth.B * u.col(t);
      increments_outer += increment * increment.transpose();
      uu += u.col(t) * u.col(t).transpose();
      du += drift * u.col(t).transpose();
      transitions += 1.0;
    }
  }
  // Pulse rate: binomial SE sqrt(p (1 - p) / slots), slots = 40 x 99 x 2; five SE.
  const double p = kInputPulseProbability;
  EXPECT_NEAR(pulses / slots, p, 5.0 * std::sqrt(p * (1.0 - p) / slots));
  // Increments z_t - A z_t-1 - b - B u_t are N(0, Q): the SE of entry (i, j) of their mean outer
  // product is sqrt((Q_ii Q_jj + Q_ij^2) / n) with n = 3960 transitions; five SE.
  const Eigen::MatrixXd covariance = increments_outer / transitions;
  for (int i = 0; i < dim; ++i)
    for (int j = 0; j < dim; ++j) {
      const double se =
          std::sqrt((truth.Q(i, i) * truth.Q(j, j) + truth.Q(i, j) * truth.Q(i, j)) / transitions);
      EXPECT_NEAR(covariance(i, j), truth.Q(i, j), 5.0 * se) << "(" << i << ", " << j << ")";
    }
  // B is identifiable: the least-squares regression of z_t - A z_t-1 - b on u_t recovers it,
  // with SE sqrt(Q_ii [(U'U)^-1]_jj); five SE.
  const Eigen::MatrixXd uu_inverse = uu.inverse();
  const Eigen::MatrixXd b_hat = du * uu_inverse;
  for (int i = 0; i < dim; ++i)
    for (int j = 0; j < 2; ++j)
      EXPECT_NEAR(b_hat(i, j), truth.B(i, j), 5.0 * std::sqrt(truth.Q(i, i) * uu_inverse(j, j)))
          << "B(" << i << ", " << j << ")";
}

TEST(Simulation, SimulatedFileRoundTripsEveryNewTruthField) {
  testing::TempDir dir;
  SimulationSettings settings = small_settings();
  settings.observation = "negative_binomial";
  settings.behavior_channels = 2;
  settings.behavior_missing = 0.1;
  settings.inputs = 1;
  settings.min_length_fraction = 0.5;
  const Dataset written = simulate(settings);
  write_dataset(dir.file("sim.h5"), written);
  const Dataset read = read_dataset(dir.file("sim.h5"));
  ASSERT_TRUE(read.truth);
  const Truth& truth = *read.truth;
  EXPECT_EQ(truth.observation, "negative_binomial");
  EXPECT_EQ(truth.row_parameters, written.truth->row_parameters);
  EXPECT_EQ(truth.B, written.truth->B);
  ASSERT_EQ(truth.continuous.count(kBehaviorModality), 1u);
  const ContinuousTruth& readout = truth.continuous.at(kBehaviorModality);
  const ContinuousTruth& expected = written.truth->continuous.at(kBehaviorModality);
  EXPECT_EQ(readout.W, expected.W);
  EXPECT_EQ(readout.e, expected.e);
  EXPECT_EQ(readout.R, expected.R);
  EXPECT_TRUE(counts_equal(read, written));
  for (int k = 0; k < read.held(); ++k) {
    EXPECT_EQ(read.inputs[k], written.inputs[k]);
    const Eigen::ArrayXXd y = read.continuous.at(kBehaviorModality)[k].array();
    const Eigen::ArrayXXd expected_y = written.continuous.at(kBehaviorModality)[k].array();
    EXPECT_TRUE(((y == expected_y) || (y.isNaN() && expected_y.isNaN())).all()) << "trial " << k;
  }
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
  s.observation = "gaussian";
  EXPECT_EQ(
      message(s),
      "--observation must be poisson, negbin (negative_binomial), bernoulli or poisson-softplus "
      "(got gaussian)");
  s = {};
  s.row_parameters["dispersion"] = 0.0;
  EXPECT_EQ(message(s), "--dispersion must be finite and > 0 (got 0)");
  s = {};
  s.behavior_channels = -1;
  EXPECT_EQ(message(s), "--behavior must be >= 0 (got -1)");
  s = {};
  s.behavior_noise = 0.0;
  EXPECT_NE(message(s).find("--behavior-noise"), std::string::npos);
  s = {};
  s.behavior_scale = -1.0;
  EXPECT_NE(message(s).find("--behavior-scale"), std::string::npos);
  s = {};
  s.behavior_missing = 1.0;
  EXPECT_EQ(message(s), "--behavior-missing must be in [0, 1) (got 1)");
  s = {};
  s.inputs = -2;
  EXPECT_EQ(message(s), "--inputs must be >= 0 (got -2)");
  s = {};
  s.latents = 0;
  EXPECT_THROW(simulate(s), ConfigError);
  EXPECT_EQ(message(SimulationSettings{}), "");
  EXPECT_EQ(message(sparse_preset()), "");
}

}  // namespace
}  // namespace spikevi
