// Stochastic VI's minibatches: the draw is uniform over subsets and reproducible, and the
// target of the global natural-gradient step built from (K/|B|) times a minibatch's statistics
// averages to the full-batch target (DESIGN.md §3).
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "spikevi/io/trial_counts.hpp"
#include "spikevi/error.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/minibatch.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

TEST(Minibatch, DrawIsSortedDistinctInRangeAndReproducible) {
  for (std::uint64_t iteration = 0; iteration < 50; ++iteration) {
    const std::vector<int> batch = draw_minibatch(3, iteration, 40, 9);
    ASSERT_EQ(batch.size(), 9u);
    EXPECT_TRUE(std::is_sorted(batch.begin(), batch.end()));
    EXPECT_EQ(std::adjacent_find(batch.begin(), batch.end()), batch.end());
    EXPECT_GE(batch.front(), 0);
    EXPECT_LT(batch.back(), 40);
    EXPECT_EQ(batch, draw_minibatch(3, iteration, 40, 9));  // a pure function of its key
  }
  EXPECT_NE(draw_minibatch(3, 0, 40, 9), draw_minibatch(3, 1, 40, 9));
  EXPECT_NE(draw_minibatch(3, 0, 40, 9), draw_minibatch(4, 0, 40, 9));
  EXPECT_EQ(draw_minibatch(3, 0, 40, 40).size(), 40u);
  EXPECT_TRUE(draw_minibatch(3, 0, 40, 0).empty());
}

// Every one of the C(6,2) = 15 subsets is equally likely: Pearson's chi-square over 30000
// draws (14 degrees of freedom; P(chi2 > 40) = 2e-4, and the draws are fixed by the seed).
TEST(Minibatch, EverySubsetIsEquallyLikely) {
  std::map<std::vector<int>, int> frequency;
  const int draws = 30000;
  for (int i = 0; i < draws; ++i) ++frequency[draw_minibatch(11, i, 6, 2)];
  ASSERT_EQ(frequency.size(), 15u);
  const double expected = draws / 15.0;
  double chi_square = 0.0;
  for (const auto& [subset, count] : frequency)
    chi_square += (count - expected) * (count - expected) / expected;
  EXPECT_LT(chi_square, 40.0);
}

TEST(Minibatch, StepSizeFollowsTheRobbinsMonroSchedule) {
  MinibatchSettings s{.size = 10, .tau = 2.0, .kappa = 0.75, .seed = 1};
  EXPECT_DOUBLE_EQ(s.step_size(0, 100), std::pow(2.0, -0.75));
  EXPECT_DOUBLE_EQ(s.step_size(5, 100), std::pow(7.0, -0.75));
  EXPECT_EQ(s.step_size(5, 10), 1.0);  // |B| = K: full batch
  EXPECT_EQ(MinibatchSettings{}.step_size(3, 10), 1.0);
  EXPECT_DOUBLE_EQ(statistics_scale(100, 10), 10.0);
}

TEST(Minibatch, RefusesNonsensicalSettings) {
  EXPECT_THROW((MinibatchSettings{.size = 11}.validate(10)), ConfigError);
  EXPECT_THROW((MinibatchSettings{.size = -1}.validate(10)), ConfigError);
  EXPECT_THROW((MinibatchSettings{.size = 2, .kappa = 0.5}.validate(10)), ConfigError);
  EXPECT_THROW((MinibatchSettings{.size = 2, .kappa = 1.01}.validate(10)), ConfigError);
  EXPECT_THROW((MinibatchSettings{.size = 2, .tau = 0.5}.validate(10)), ConfigError);
  EXPECT_NO_THROW((MinibatchSettings{.size = 2, .kappa = 1.0}.validate(10)));
}

// Per-trial statistics at fixed random posteriors of a small simulated problem.
struct TrialStatistics {
  std::vector<GlobalStatistics> per_trial;
  MatrixNormalInverseWishart prior;
  int dim = 0, neurons = 0;
};

TrialStatistics trial_statistics(int trials) {
  SimulationSettings settings;
  settings.trials = trials;
  settings.bins = 25;
  settings.neurons = 9;
  settings.latents = 2;
  const Dataset data = simulate(settings);
  std::vector<int> all(static_cast<std::size_t>(trials));
  std::iota(all.begin(), all.end(), 0);
  const std::vector<TrialCounts> counts = make_trial_counts(data, all);
  const Readout readout{data.truth->C, data.truth->d, Eigen::MatrixXd()};
  const PoissonObservation model;
  TrialStatistics out{{}, MatrixNormalInverseWishart::weak_prior(2), 2, 9};
  std::mt19937_64 rng(5);
  for (const TrialCounts& trial : counts) {
    const int T = static_cast<int>(trial.counts.cols());
    GaussianMoments q;
    q.mean = testing::random_normal(2, T, rng, 0.7);
    q.cov = (0.2 * Eigen::MatrixXd::Identity(2, 2)).replicate(1, T);
    q.lag_cov = Eigen::MatrixXd::Constant(2, 2 * T, 0.05);
    GlobalStatistics s = GlobalStatistics::zero(2, 9);
    s.add_trial(q, readout, model, trial.counts, -10.0 * trial.index);
    out.per_trial.push_back(s);
  }
  return out;
}

// (scale * sum over the batch) as a flat vector, and the MNIW target of the step (rho = 1).
struct Target {
  Eigen::VectorXd statistics;
  MatrixNormalInverseWishart::Natural dynamics;
};

Target target_of(const TrialStatistics& t, const std::vector<int>& batch, double scale) {
  GlobalStatistics sum = GlobalStatistics::zero(t.dim, t.neurons);
  Eigen::VectorXd flat = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(sum.pack().size()));
  for (int k : batch) {
    const std::vector<double> packed = t.per_trial[static_cast<std::size_t>(k)].pack();
    flat += Eigen::Map<const Eigen::VectorXd>(packed.data(), flat.size());
  }
  sum.unpack(std::vector<double>(flat.data(), flat.data() + flat.size()));
  const MatrixNormalInverseWishart stepped =
      MatrixNormalInverseWishart::blend(t.prior, t.prior, sum.transitions, scale, 1.0);
  return {scale * flat, stepped.natural()};
}

void accumulate(Target& total, const Target& one, double weight) {
  total.statistics += weight * one.statistics;
  total.dynamics.eta1 += weight * one.dynamics.eta1;
  total.dynamics.eta2 += weight * one.dynamics.eta2;
  total.dynamics.eta3 += weight * one.dynamics.eta3;
  total.dynamics.nu += weight * one.dynamics.nu;
}

Target zero_like(const Target& t) {
  return {Eigen::VectorXd::Zero(t.statistics.size()),
          {Eigen::MatrixXd::Zero(t.dynamics.eta1.rows(), t.dynamics.eta1.cols()),
           Eigen::MatrixXd::Zero(t.dynamics.eta2.rows(), t.dynamics.eta2.cols()),
           Eigen::MatrixXd::Zero(t.dynamics.eta3.rows(), t.dynamics.eta3.cols()), 0.0}};
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

// Exact: the mean over ALL C(7,3) = 35 minibatches (each equally likely under the draw) of the
// scaled statistics and of the MNIW target equals the full-batch statistics and target.
TEST(Minibatch, ScaledTargetAveragedOverAllMinibatchesIsTheFullBatchTarget) {
  const int K = 7, B = 3;
  const TrialStatistics t = trial_statistics(K);
  std::vector<int> everyone(K);
  std::iota(everyone.begin(), everyone.end(), 0);
  const Target full = target_of(t, everyone, 1.0);
  Target mean = zero_like(full);
  int subsets = 0;
  for (int a = 0; a < K; ++a)
    for (int b = a + 1; b < K; ++b)
      for (int c = b + 1; c < K; ++c, ++subsets)
        accumulate(mean, target_of(t, {a, b, c}, statistics_scale(K, B)), 1.0 / 35.0);
  ASSERT_EQ(subsets, 35);
  EXPECT_LT(relative(mean.statistics, full.statistics), 1e-13);
  EXPECT_LT(relative(mean.dynamics.eta1, full.dynamics.eta1), 1e-13);
  EXPECT_LT(relative(mean.dynamics.eta2, full.dynamics.eta2), 1e-13);
  EXPECT_LT(relative(mean.dynamics.eta3, full.dynamics.eta3), 1e-13);
  EXPECT_NEAR(mean.dynamics.nu, full.dynamics.nu, 1e-12);
}

// The same through the solver's own draw: the mean over 4000 drawn minibatches of 5 of 20
// trials is within 5 standard errors of the full-batch target, component by component of the
// MNIW natural parameters (the Monte Carlo error shrinks as 1/sqrt(draws)).
TEST(Minibatch, ScaledTargetOfDrawnMinibatchesAveragesToTheFullBatchTarget) {
  const int K = 20, B = 5, draws = 4000;
  const TrialStatistics t = trial_statistics(K);
  std::vector<int> everyone(K);
  std::iota(everyone.begin(), everyone.end(), 0);
  const Target full = target_of(t, everyone, 1.0);
  Target mean = zero_like(full), square = zero_like(full);
  for (int i = 0; i < draws; ++i) {
    Target one = target_of(t, draw_minibatch(7, i, K, B), statistics_scale(K, B));
    accumulate(mean, one, 1.0 / draws);
    one.dynamics.eta3 = one.dynamics.eta3.cwiseAbs2();
    one.statistics = one.statistics.cwiseAbs2();
    accumulate(square, one, 1.0 / draws);
  }
  const Eigen::MatrixXd eta3_se =
      ((square.dynamics.eta3 - mean.dynamics.eta3.cwiseAbs2()) / draws).cwiseSqrt();
  EXPECT_TRUE(((mean.dynamics.eta3 - full.dynamics.eta3).cwiseAbs().array() <=
               5.0 * eta3_se.array() + 1e-12)
                  .all())
      << "mean\n"
      << mean.dynamics.eta3 << "\nfull\n"
      << full.dynamics.eta3;
  const Eigen::VectorXd stats_se =
      ((square.statistics - mean.statistics.cwiseAbs2()).cwiseMax(0.0) / draws).cwiseSqrt();
  // (components that never vary, e.g. the trial count, leave only rounding to compare)
  const Eigen::VectorXd floor = 1e-12 * (1.0 + full.statistics.array().abs()).matrix();
  const Eigen::VectorXd z =
      (mean.statistics - full.statistics).cwiseAbs().cwiseQuotient(stats_se + floor);
  // Thousands of correlated components: most within 3 SE, none beyond 6.
  EXPECT_LT(z.maxCoeff(), 6.0);
  EXPECT_GT((z.array() < 3.0).cast<double>().mean(), 0.98);
}

}  // namespace
}  // namespace spikevi
