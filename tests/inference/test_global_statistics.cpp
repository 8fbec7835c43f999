// The flat buffer ranks allreduce: it round-trips, and statistics summed over shards equal
// those of the whole (what the MPI sum relies on).
#include <gtest/gtest.h>

#include <numeric>

#include "spikevi/io/trial_counts.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

GlobalStatistics statistics_of(const std::vector<TrialCounts>& trials, const Readout& readout,
                               std::size_t begin, std::size_t end) {
  const PoissonObservation model;
  GlobalStatistics stats = GlobalStatistics::zero(readout.dim(), readout.rows());
  for (std::size_t k = begin; k < end; ++k) {
    std::mt19937_64 rng(9 + k);  // trial k's q does not depend on the shard
    const int T = static_cast<int>(trials[k].counts.cols());
    GaussianMoments q;
    q.mean = testing::random_normal(readout.dim(), T, rng, 0.5);
    q.cov = (0.1 * Eigen::MatrixXd::Identity(readout.dim(), readout.dim())).replicate(1, T);
    q.lag_cov = Eigen::MatrixXd::Constant(readout.dim(), readout.dim() * T, 0.01);
    stats.add_trial(q, readout, model, trials[k].counts, -1.0 * double(k));
  }
  return stats;
}

struct SmallProblem {
  std::vector<TrialCounts> trials;
  Readout readout;  // the true loadings; statistics only need C and d
};

SmallProblem small_problem(int trials, int bins, int neurons, int latents) {
  SimulationSettings settings;
  settings.trials = trials;
  settings.bins = bins;
  settings.neurons = neurons;
  settings.latents = latents;
  const Dataset data = simulate(settings);
  std::vector<int> all(static_cast<std::size_t>(trials));
  std::iota(all.begin(), all.end(), 0);
  SmallProblem problem{make_trial_counts(data, all), Readout{}};
  problem.readout.C = data.truth->C;
  problem.readout.d = data.truth->d;
  return problem;
}

TEST(GlobalStatistics, PackAndUnpackRoundTripEveryField) {
  const auto [trials, readout] = small_problem(6, 20, 10, 2);
  const GlobalStatistics stats = statistics_of(trials, readout, 0, 6);
  GlobalStatistics copy = GlobalStatistics::zero(2, 10);
  copy.unpack(stats.pack());
  EXPECT_EQ(copy.pack(), stats.pack());
  EXPECT_EQ(copy.trials, 6.0);
  EXPECT_EQ(copy.transitions.n, stats.transitions.n);
  EXPECT_GT(copy.spike_count, 0.0);
}

TEST(GlobalStatistics, ClearZeroesEveryFieldAndKeepsTheLayout) {
  const auto [trials, readout] = small_problem(3, 20, 10, 2);
  GlobalStatistics stats = statistics_of(trials, readout, 0, 3);
  stats.stop_requests = 1.0;
  const std::size_t size = stats.pack().size();
  stats.clear();
  EXPECT_EQ(stats.pack(), std::vector<double>(size, 0.0));
}

TEST(GlobalStatistics, ShardsSummedEqualTheWholeBatch) {
  const auto [trials, readout] = small_problem(7, 15, 8, 3);
  const std::vector<double> whole = statistics_of(trials, readout, 0, 7).pack();
  std::vector<double> summed = statistics_of(trials, readout, 0, 3).pack();
  const std::vector<double> rest = statistics_of(trials, readout, 3, 7).pack();
  ASSERT_EQ(summed.size(), whole.size());
  for (std::size_t i = 0; i < summed.size(); ++i) {
    summed[i] += rest[i];
    // Only the summation order differs: agreement to a few ulps of the magnitude.
    EXPECT_NEAR(summed[i], whole[i], 1e-12 * (1.0 + std::abs(whole[i]))) << "entry " << i;
  }
}

}  // namespace
}  // namespace spikevi
