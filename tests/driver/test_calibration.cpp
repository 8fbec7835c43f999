// Simulation-based calibration on a linear-Gaussian model: spikes with zero loadings (they
// carry no information about z, so their likelihood is constant in z) and a Gaussian
// modality, so the posterior of z is exactly Gaussian with block-tridiagonal precision. The
// Gauss-Markov family then is the exact posterior (CVI's targets are exact for a Gaussian
// likelihood) and its ranks are uniform; the mean-field family keeps the means but takes the
// variances 1/J_ii, below the true (J^-1)_ii, so it is too narrow; the exact posterior with
// its covariance inflated four times is too wide.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/driver/calibration.hpp"
#include "spikevi/error.hpp"
#include "spikevi/model/simulation.hpp"

namespace spikevi {
namespace {

CalibrationModel linear_gaussian_model() {
  CalibrationModel m;
  const double angle = 0.1, decay = 0.95;
  m.A.resize(2, 2);
  m.A << decay * std::cos(angle), -decay * std::sin(angle), decay * std::sin(angle),
      decay * std::cos(angle);
  m.Q = Eigen::MatrixXd::Identity(2, 2) - m.A * m.A.transpose();
  m.b = Eigen::VectorXd::Zero(2);
  m.mu0 = Eigen::VectorXd::Zero(2);
  m.Sigma0 = Eigen::MatrixXd::Identity(2, 2);
  m.spikes.C = Eigen::MatrixXd::Zero(2, 2);
  m.spikes.d = Eigen::VectorXd::Constant(2, std::log(0.3));
  m.spike_model = poisson_spike_model();
  GaussianModality behaviour;
  behaviour.name = "behavior";
  behaviour.readout.C.resize(3, 2);
  behaviour.readout.C << 0.8, -0.3, 0.2, 0.7, -0.5, 0.4;
  behaviour.readout.d = Eigen::Vector3d(0.5, -1.0, 0.0);
  behaviour.variances = Eigen::Vector3d(0.5, 0.8, 0.6);
  m.continuous.push_back(behaviour);
  return m;
}

CalibrationSettings settings(FamilyKind family, double inflation = 1.0) {
  CalibrationSettings s;
  s.replicates = 200;
  s.draws = 99;
  s.bins = 40;
  s.family = family;
  s.variance_inflation = inflation;
  s.seed = 7;
  return s;
}

RankTest ranks_of(const CalibrationSettings& s) {
  SerialCommunicator serial;
  const CalibrationResult result = run_calibration(linear_gaussian_model(), s, serial);
  EXPECT_EQ(result.latent_ranks.rows(), s.replicates);
  EXPECT_EQ(result.latent_ranks.cols(), 10);  // 5 default bins x D = 2
  EXPECT_EQ(result.unconverged_local_steps, 0);
  return test_rank_uniformity(result.latent_ranks, s.draws, RankTestSettings{});
}

// With exact inference a calibrated posterior fails the 1 % chi-square test with probability
// 1 %; the fixed seeds make the outcome deterministic, and the mean-field and widened cases
// are far outside (p-values below 1e-10 here), so the three verdicts are stable.
TEST(Calibration, GaussMarkovIsExactOnALinearGaussianModel) {
  const RankTest test = ranks_of(settings(FamilyKind::kGaussMarkov));
  EXPECT_EQ(test.verdict, RankVerdict::kUniform) << "p " << test.chi_square_p_value;
  EXPECT_GT(test.chi_square_p_value, 0.01);
  EXPECT_FALSE(test.outside_band);
}

TEST(Calibration, MeanFieldIsTooNarrowOnTheSameData) {
  const RankTest test = ranks_of(settings(FamilyKind::kMeanField));
  EXPECT_EQ(test.verdict, RankVerdict::kTooNarrow) << "p " << test.chi_square_p_value;
  EXPECT_LT(test.chi_square_p_value, 1e-6);
  EXPECT_TRUE(test.outside_band);
}

TEST(Calibration, AWidenedPosteriorIsTooWide) {
  const RankTest test = ranks_of(settings(FamilyKind::kGaussMarkov, 4.0));
  EXPECT_EQ(test.verdict, RankVerdict::kTooWide) << "p " << test.chi_square_p_value;
  EXPECT_LT(test.chi_square_p_value, 1e-6);
}

// A replicate depends only on (seed, replicate): the first 50 replicates of a run of 200 are
// those of a run of 50, and another seed changes them.
TEST(Calibration, ReplicatesAreKeyedByReplicate) {
  SerialCommunicator serial;
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov);
  s.replicates = 50;
  const RankTable small = run_calibration(linear_gaussian_model(), s, serial).latent_ranks;
  s.replicates = 60;
  const RankTable large = run_calibration(linear_gaussian_model(), s, serial).latent_ranks;
  EXPECT_TRUE((large.topRows(50).array() == small.array()).all());
  s.replicates = 50;
  s.seed = 8;
  const RankTable other = run_calibration(linear_gaussian_model(), s, serial).latent_ranks;
  EXPECT_FALSE((other.array() == small.array()).all());
}

// The default simulation's own /truth under Poisson spikes: the Gauss-Markov family's ranks are
// near uniform there too (the Gaussian approximation of a Poisson posterior with 60 neurons
// at 20 Hz), and the names say what each scalar is.
TEST(Calibration, NamesAndTruthOfASimulation) {
  SimulationSettings sim;
  sim.trials = 2;
  const Dataset data = simulate(sim);
  SerialCommunicator serial;
  CalibrationSettings s;
  s.replicates = 3;
  s.bins = 100;
  s.monitored_bins = {10, 90};
  const CalibrationResult result =
      run_calibration(CalibrationModel::from_truth(*data.truth), s, serial);
  ASSERT_EQ(result.latent_names.size(), 8u);
  EXPECT_EQ(result.latent_names[1], "z[trial 0, bin 10, dim 1]");
  EXPECT_EQ(result.latent_names[4], "z[trial 0, bin 90, dim 0]");
  EXPECT_GT(result.spikes, 0.0);
}

// With the dynamics drawn from an MNIW prior: the Gaussian modality observes the latents almost
// exactly (noise variance 1e-4 against Q ~ 0.1), so q(z) is nearly a point and the VB-EM
// factorisation q(z) q(A~, Q) is nearly the exact posterior p(z, A~, Q | y): the conjugate MNIW
// update given (almost) known latents is exact. The ranks of A, b and Q are then uniform, and
// a four-times widened q(A~, Q) is too wide.
CalibrationModel nearly_observed_model() {
  CalibrationModel m = linear_gaussian_model();
  m.continuous[0].variances = Eigen::Vector3d::Constant(1e-4);
  return m;
}

CalibrationResult dynamics_run(double inflation, int replicates = 200) {
  const CalibrationModel model = nearly_observed_model();
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov, inflation);
  s.replicates = replicates;
  s.dynamics_prior = model.dynamics_prior(0.05, 10.0);
  SerialCommunicator serial;
  return run_calibration(model, s, serial);
}

TEST(Calibration, DrawnDynamicsAreCalibratedWhenTheLatentsAreNearlyObserved) {
  const CalibrationResult result = dynamics_run(1.0);
  ASSERT_EQ(result.dynamics_ranks.rows(), 200);
  ASSERT_EQ(result.dynamics_ranks.cols(), 6);  // [A b]: 2 x 3
  ASSERT_EQ(result.noise_ranks.cols(), 3);     // Q's lower triangle
  EXPECT_EQ(result.dynamics_names[2], "A[0,1]");
  EXPECT_EQ(result.dynamics_names[5], "b[1]");
  EXPECT_EQ(result.noise_names[1], "Q[1,0]");
  EXPECT_EQ(result.unconverged_dynamics, 0);
  // VB-EM is monotone up to roundoff: 1.3e-3 nats in one replicate, whose drawn A explodes
  // (ELBO -1.7e9 at the prior); a bug in the ELBO or the update would lose far more.
  EXPECT_LT(result.largest_dynamics_decrease, 1e-2) << result.non_monotone_dynamics;
  EXPECT_EQ(result.unconverged_local_steps, 0);
  for (const RankTable* table :
       {&result.latent_ranks, &result.dynamics_ranks, &result.noise_ranks}) {
    const RankTest test = test_rank_uniformity(*table, 99, RankTestSettings{});
    EXPECT_EQ(test.verdict, RankVerdict::kUniform) << "p " << test.chi_square_p_value;
  }
}

TEST(Calibration, AWidenedDynamicsPosteriorIsTooWide) {
  const CalibrationResult result = dynamics_run(4.0);
  for (const RankTable* table : {&result.dynamics_ranks, &result.noise_ranks}) {
    const RankTest test = test_rank_uniformity(*table, 99, RankTestSettings{});
    EXPECT_EQ(test.verdict, RankVerdict::kTooWide) << "p " << test.chi_square_p_value;
    EXPECT_LT(test.chi_square_p_value, 1e-6);
  }
}

// The check has power where the approximation is wrong: with the latents only noisily observed
// (the model above, noise variances 0.5-0.8), the VB-EM split q(z) q(A~, Q) ignores the
// posterior dependence between the latents and Q, and q(Q) comes out too narrow, a known
// property of mean-field VB for variance parameters (Wang & Titterington 2005). Measured here:
// p below 1e-200 for `noise` (and below 1e-20 for `dynamics`) while the latents stay uniform;
// the assertions keep a wide margin.
TEST(Calibration, TheDynamicsSplitIsTooNarrowWhenTheLatentsAreNoisy) {
  const CalibrationModel model = linear_gaussian_model();
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov);
  s.dynamics_prior = model.dynamics_prior(0.05, 10.0);
  SerialCommunicator serial;
  const CalibrationResult result = run_calibration(model, s, serial);
  const RankTest noise = test_rank_uniformity(result.noise_ranks, 99, RankTestSettings{});
  EXPECT_EQ(noise.verdict, RankVerdict::kTooNarrow) << "p " << noise.chi_square_p_value;
  EXPECT_LT(noise.chi_square_p_value, 1e-20);
  const RankTest dynamics = test_rank_uniformity(result.dynamics_ranks, 99, RankTestSettings{});
  EXPECT_EQ(dynamics.verdict, RankVerdict::kTooNarrow) << "p " << dynamics.chi_square_p_value;
  EXPECT_LT(dynamics.chi_square_p_value, 1e-6);
  const RankTest latents = test_rank_uniformity(result.latent_ranks, 99, RankTestSettings{});
  EXPECT_EQ(latents.verdict, RankVerdict::kUniform) << "p " << latents.chi_square_p_value;
  // VB-EM never lowers the ELBO in exact arithmetic; a converged sweep that gains nothing can
  // read as a loss from rounding of the log-determinants in the ELBO. Measured: 0 on one
  // machine, 2.2e-6 nats on another (another CPU, -march=native), so 1e-4 nats: far below a
  // real loss of a wrong update, which is of the order of the gains (nats per sweep).
  EXPECT_LT(result.largest_dynamics_decrease, 1e-4) << result.non_monotone_dynamics;
}

// Each replicate simulates with its own drawn dynamics: the latents differ from a run at
// theta's dynamics, and without a prior there are no dynamics ranks.
TEST(Calibration, DrawnDynamicsChangeTheReplicates) {
  const CalibrationResult drawn = dynamics_run(1.0, 20);
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov);
  s.replicates = 20;
  SerialCommunicator serial;
  const CalibrationResult fixed = run_calibration(nearly_observed_model(), s, serial);
  EXPECT_EQ(fixed.dynamics_ranks.size(), 0);
  EXPECT_TRUE(fixed.dynamics_names.empty());
  EXPECT_FALSE((drawn.latent_ranks.array() == fixed.latent_ranks.array()).all());
}

TEST(Calibration, RefusesABadDynamicsPrior) {
  const CalibrationModel model = linear_gaussian_model();
  EXPECT_THROW(model.dynamics_prior(0.0, 10.0), ConfigError);
  EXPECT_THROW(model.dynamics_prior(0.1, 3.0), ConfigError);  // must exceed D + 1 = 3
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov);
  s.dynamics_prior = MatrixNormalInverseWishart::weak_prior(3);
  SerialCommunicator serial;
  EXPECT_THROW(run_calibration(model, s, serial), ConfigError);
}

TEST(Calibration, RefusesBadSettings) {
  SerialCommunicator serial;
  CalibrationSettings s = settings(FamilyKind::kGaussMarkov);
  s.monitored_bins = {3, 40};
  EXPECT_THROW(run_calibration(linear_gaussian_model(), s, serial), ConfigError);
  s.monitored_bins = {3, 3};
  EXPECT_THROW(run_calibration(linear_gaussian_model(), s, serial), ConfigError);
  s = settings(FamilyKind::kGaussMarkov);
  s.replicates = 0;
  EXPECT_THROW(run_calibration(linear_gaussian_model(), s, serial), ConfigError);
}

}  // namespace
}  // namespace spikevi
