// The global step shared by VB-EM and SVI: the initial-state M-step and its blend, per-row
// damping of the readout step, and the check that undoes a readout row whose step lost.
#include <gtest/gtest.h>

#include "spikevi/error.hpp"
#include "spikevi/inference/global_step.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

GaussianMoments random_moments(int dim, int bins, std::mt19937_64& rng) {
  GaussianMoments q;
  q.mean = testing::random_normal(dim, bins, rng, 0.8);
  q.cov = Eigen::MatrixXd(dim, dim * bins);
  for (int t = 0; t < bins; ++t)
    q.cov.middleCols(t * dim, dim) = testing::random_spd(dim, rng, 0.1, 0.3);
  q.lag_cov = Eigen::MatrixXd::Zero(dim, dim * bins);
  return q;
}

// Statistics of three trials with only the initial-state fields mattering here.
GlobalStatistics initial_state_statistics(std::vector<GaussianMoments>& qs) {
  GlobalStatistics stats = GlobalStatistics::zero(2, 3);
  for (const GaussianMoments& q : qs) {
    stats.initial_mean_sum += q.mean.col(0);
    stats.initial_second_moment_sum += q.cov_block(0) + q.mean.col(0) * q.mean.col(0).transpose();
    stats.trials += 1.0;
  }
  stats.transitions = TransitionStatistics::zero(2);
  return stats;
}

TEST(GlobalStep, InitialStateIsTheMStepAtRhoOneAndItsBlendBelow) {
  std::mt19937_64 rng(3);
  std::vector<GaussianMoments> qs;
  for (int k = 0; k < 3; ++k) qs.push_back(random_moments(2, 4, rng));
  const GlobalStatistics stats = initial_state_statistics(qs);
  GlobalState globals = make_prior_state(2, 3, PriorSettings{});
  globals.mu0 << 0.3, -0.2;
  globals.Sigma0 << 1.5, 0.2, 0.2, 0.7;
  const GlobalState start = globals;

  Eigen::Vector2d mean = Eigen::Vector2d::Zero();
  Eigen::Matrix2d second = Eigen::Matrix2d::Zero();
  for (const GaussianMoments& q : qs) {
    mean += q.mean.col(0) / 3.0;
    second += (q.cov_block(0) + q.mean.col(0) * q.mean.col(0).transpose()) / 3.0;
  }
  update_dynamics(globals, stats, GlobalStepSize{1.0, 1.0});
  EXPECT_LT(testing::max_abs_diff(globals.mu0, mean), 1e-14);
  EXPECT_LT(testing::max_abs_diff(globals.Sigma0, second - mean * mean.transpose()), 1e-14);

  // rho = 0.3: the first and second moments are blended, not mu0 and Sigma0 themselves.
  globals = start;
  update_dynamics(globals, stats, GlobalStepSize{0.3, 10.0});
  const Eigen::Vector2d m1 = 0.7 * start.mu0 + 0.3 * mean;
  const Eigen::Matrix2d m2 =
      0.7 * (start.Sigma0 + start.mu0 * start.mu0.transpose()) + 0.3 * second;
  EXPECT_LT(testing::max_abs_diff(globals.mu0, m1), 1e-14);
  EXPECT_LT(testing::max_abs_diff(globals.Sigma0, m2 - m1 * m1.transpose()), 1e-14);
}

// One trial, three Poisson rows, a readout whose offsets are far below the data (row 0), a
// little below (row 1) and at the empirical value (row 2).
struct ReadoutProblem {
  Eigen::ArrayXXd counts;
  GaussianMoments q;
  GlobalState globals;
};

ReadoutProblem readout_problem() {
  std::mt19937_64 rng(8);
  ReadoutProblem p;
  p.q = random_moments(2, 40, rng);
  p.q.cov *= 0.1;
  p.counts = Eigen::ArrayXXd::Constant(3, 40, 4.0);
  p.globals = make_prior_state(2, 3, PriorSettings{});
  p.globals.spikes.C = 0.05 * testing::random_normal(3, 2, rng);
  p.globals.spikes.d << std::log(4.0) - 8.0, std::log(4.0) - 0.3, std::log(4.0);
  return p;
}

GlobalStatistics readout_statistics(const ReadoutProblem& p) {
  GlobalStatistics stats = GlobalStatistics::zero(2, 3);
  stats.spikes.add_trial(p.globals.spikes, PoissonObservation(), p.counts, p.q);
  stats.transitions = TransitionStatistics::zero(2);
  return stats;
}

TEST(GlobalStep, FlagsExactlyTheRowsWhoseNewtonStepOvershot) {
  ReadoutProblem p = readout_problem();
  const GlobalStatistics stats = readout_statistics(p);
  const Readout before = p.globals.spikes;
  make_optimizer(ModelSettings{}, 2, 3, 0)
      ->readout_step(p.globals, stats, GlobalStepSize{}, Eigen::VectorXd::Ones(3));
  const PoissonObservation model;
  const ReadoutKernels kernels_before(before), kernels_after(p.globals.spikes);
  const Eigen::VectorXd ll_before = row_log_likelihood(kernels_before, model, p.counts, p.q);
  const Eigen::VectorXd ll_after = row_log_likelihood(kernels_after, model, p.counts, p.q);
  // Row 0: from e^-8 of the rate, the Newton step on -e^d lands thousands of nats too high.
  EXPECT_GT(p.globals.spikes.d(0), std::log(4.0) + 10.0);
  const std::vector<int> dropped =
      rows_that_dropped(p.globals.spikes_prior, before, ll_before, p.globals.spikes, ll_after);
  EXPECT_EQ(dropped, std::vector<int>{0});
  // The statistics' own per-row log-likelihood is the same quantity.
  EXPECT_LT(testing::max_abs_diff(stats.spikes.log_likelihood, ll_before), 1e-9);
}

TEST(GlobalStep, RowDampingScalesEachRowsStepLikeItsOwnRho) {
  ReadoutProblem p = readout_problem();
  const GlobalStatistics stats = readout_statistics(p);
  const Readout start = p.globals.spikes;
  make_optimizer(ModelSettings{}, 2, 3, 0)
      ->readout_step(p.globals, stats, GlobalStepSize{0.5, 2.0}, Eigen::Vector3d(1.0, 0.25, 0.5));
  for (int n = 0; n < 3; ++n) {
    const double rho = 0.5 * Eigen::Vector3d(1.0, 0.25, 0.5)(n);
    const Readout alone =
        readout_natural_gradient_step(start, p.globals.spikes_prior, stats.spikes, 2.0, rho);
    EXPECT_EQ(p.globals.spikes.C.row(n), alone.C.row(n)) << "row " << n;
    EXPECT_EQ(p.globals.spikes.d(n), alone.d(n)) << "row " << n;
  }
}

// A Newton target P0 + H that is not positive definite (H pushed negative) fails at rho = 1;
// at rho = 1/2 the blend with the current, very precise P_n is fine: the step is retried there.
TEST(GlobalStep, FailedStepIsRetriedAtHalfTheStepSize) {
  ReadoutProblem p = readout_problem();
  GlobalStatistics stats = readout_statistics(p);
  stats.trials = 1.0;
  stats.initial_second_moment_sum = Eigen::Matrix2d::Identity();
  p.globals.spikes.precision = 100.0 * Eigen::MatrixXd::Identity(3, 3).replicate(1, 3);
  for (int n = 0; n < 3; ++n)
    stats.spikes.hessian.middleCols(n * 3, 3) = -20.0 * Eigen::Matrix3d::Identity();
  const GlobalState start = p.globals;
  auto optimizer = make_optimizer(ModelSettings{}, 2, 3, 0);
  const double rho =
      checked_global_step(p.globals, stats, GlobalStepSize{}, Eigen::VectorXd::Ones(3), optimizer);
  EXPECT_EQ(rho, 0.5);
  EXPECT_EQ(non_finite_parameter(p.globals), "");
  EXPECT_NE(p.globals.spikes.d, start.spikes.d);
}

TEST(GlobalStep, StepThatAlwaysFailsNamesTheParameterAndLeavesTheGlobals) {
  ReadoutProblem p = readout_problem();
  GlobalStatistics stats = readout_statistics(p);
  stats.trials = 1.0;
  stats.initial_second_moment_sum = Eigen::Matrix2d::Identity();
  stats.spikes.gradient(0, 2) = std::nan("");
  const GlobalState start = p.globals;
  try {
    auto optimizer = make_optimizer(ModelSettings{}, 2, 3, 0);
    checked_global_step(p.globals, stats, GlobalStepSize{}, Eigen::VectorXd::Ones(3), optimizer, 3);
    FAIL() << "a NaN gradient was accepted";
  } catch (const NumericalError& error) {
    EXPECT_NE(std::string(error.what()).find("row 2"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("rho = 0.125"), std::string::npos) << error.what();
  }
  EXPECT_EQ(p.globals.spikes.C, start.spikes.C);
  EXPECT_EQ(p.globals.mu0, start.mu0);
}

}  // namespace
}  // namespace spikevi
