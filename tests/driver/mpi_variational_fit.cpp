// fit_variational under mpirun (1, 2, 4 ranks): each rank fits its contiguous share of the
// trials through the world communicator, and the result must be bitwise the fit of all trials
// on one process (a SerialCommunicator, computed on every rank): the same ELBO trace, globals
// and latents whatever the rank count (DESIGN.md §4), full batch and minibatch, Poisson and a
// negative binomial with Monte Carlo expectations, Adam and a Gaussian modality, and SQUAREM.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/parallel/sharding.hpp"
#include "support/mpi_test.hpp"

namespace spikevi {
namespace {

bool same_bits(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::bit_cast<std::uint64_t>(a.data()[i]) != std::bit_cast<std::uint64_t>(b.data()[i]))
      return false;
  return true;
}

struct Problem {
  Dataset data;
  std::vector<int> trials;  // the fitted trials, ascending
  FitSettings settings;
};

// A serial fit of every trial, and this rank's share of the same fit over the world.
void expect_rank_count_independent(const Problem& p) {
  Communicator& world = testing::world();
  SerialCommunicator serial;
  const std::vector<TrialCounts> all =
      make_trial_counts(p.data, p.trials, {}, 0, p.settings.continuous_names);
  const FitOutcome alone = fit_variational(all, p.settings, serial);

  const Share share = rank_share(p.trials.size(), world.rank(), world.size());
  const std::vector<int> mine(p.trials.begin() + static_cast<std::ptrdiff_t>(share.begin),
                              p.trials.begin() + static_cast<std::ptrdiff_t>(share.end));
  const std::vector<TrialCounts> local = make_trial_counts(
      p.data, mine, {}, static_cast<int>(share.begin), p.settings.continuous_names);
  const FitOutcome sharded = fit_variational(local, p.settings, world);

  ASSERT_EQ(sharded.trace.size(), alone.trace.size());
  for (std::size_t i = 0; i < alone.trace.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(sharded.trace[i].elbo),
              std::bit_cast<std::uint64_t>(alone.trace[i].elbo))
        << "iteration " << i + 1;
  EXPECT_EQ(std::bit_cast<std::uint64_t>(sharded.elbo), std::bit_cast<std::uint64_t>(alone.elbo));
  const GlobalState& a = sharded.globals;
  const GlobalState& b = alone.globals;
  EXPECT_TRUE(same_bits(a.spikes.C, b.spikes.C));
  EXPECT_TRUE(same_bits(a.spikes.d, b.spikes.d));
  EXPECT_TRUE(same_bits(a.spikes.precision, b.spikes.precision));
  EXPECT_TRUE(same_bits(a.dynamics.M, b.dynamics.M));
  EXPECT_TRUE(same_bits(a.dynamics.V, b.dynamics.V));
  EXPECT_TRUE(same_bits(a.dynamics.Psi, b.dynamics.Psi));
  EXPECT_TRUE(same_bits(a.mu0, b.mu0));
  EXPECT_TRUE(same_bits(a.Sigma0, b.Sigma0));
  ASSERT_EQ(a.spike_parameters.count(), b.spike_parameters.count());
  for (std::size_t q = 0; q < a.spike_parameters.count(); ++q)
    EXPECT_TRUE(same_bits(a.spike_parameters.parameters[q].values,
                          b.spike_parameters.parameters[q].values));
  ASSERT_EQ(a.continuous.size(), b.continuous.size());
  for (std::size_t m = 0; m < a.continuous.size(); ++m) {
    EXPECT_TRUE(same_bits(a.continuous[m].readout.C, b.continuous[m].readout.C));
    EXPECT_TRUE(same_bits(a.continuous[m].variances, b.continuous[m].variances));
  }
  ASSERT_EQ(sharded.posteriors.size(), share.size());
  for (std::size_t k = 0; k < share.size(); ++k) {
    const GaussianMoments& mine_q = sharded.posteriors[k].moments;
    const GaussianMoments& alone_q = alone.posteriors[share.begin + k].moments;
    EXPECT_TRUE(same_bits(mine_q.mean, alone_q.mean)) << "trial " << k;
    EXPECT_TRUE(same_bits(mine_q.cov, alone_q.cov)) << "trial " << k;
  }
}

Problem simulated(const SimulationSettings& simulation, int latents, int iterations) {
  Problem p;
  p.data = simulate(simulation);
  p.trials = p.data.split->train_trials;
  p.settings.latents = latents;
  p.settings.iterations = iterations;
  p.settings.tolerance = 0.0;
  return p;
}

TEST(VariationalFitOverRanks, FullBatchPoissonIsBitwiseTheSerialFit) {
  SimulationSettings s;
  s.trials = 13;  // 10 training trials: shares of 10, 5, 3 or 2
  s.bins = 40;
  s.neurons = 20;
  expect_rank_count_independent(simulated(s, 3, 6));
}

TEST(VariationalFitOverRanks, MinibatchIsBitwiseTheSerialFit) {
  SimulationSettings s;
  s.trials = 15;
  s.bins = 30;
  s.neurons = 16;
  s.min_length_fraction = 0.5;  // ragged trials
  Problem p = simulated(s, 2, 8);
  p.settings.minibatch = MinibatchSettings{.size = 4, .tau = 1.0, .kappa = 0.7, .seed = 5};
  expect_rank_count_independent(p);
}

TEST(VariationalFitOverRanks, NegativeBinomialByMonteCarloWithBehaviourIsBitwiseTheSerialFit) {
  SimulationSettings s;
  s.trials = 12;
  s.bins = 30;
  s.neurons = 14;
  s.observation = "negative_binomial";
  s.behavior_channels = 2;
  s.behavior_missing = 0.1;
  Problem p = simulated(s, 2, 4);
  p.settings.model =
      ModelSettings::for_model(builtin_spike_models().get("negbin"), FamilyKind::kMeanField);
  p.settings.model.expectations = ExpectationMethod::kMonteCarlo;
  p.settings.model.samples = 3;
  p.settings.continuous_names = {kBehaviorModality};
  expect_rank_count_independent(p);
}

TEST(VariationalFitOverRanks, AdamIsBitwiseTheSerialFit) {
  SimulationSettings s;
  s.trials = 12;
  s.bins = 30;
  s.neurons = 14;
  Problem p = simulated(s, 2, 4);
  p.settings.model.optimizer = OptimizerKind::kAdam;
  expect_rank_count_independent(p);
}

// SQUAREM's extrapolations (negative-binomial shapes and a behaviour modality extrapolated too)
// and its accept/reject decisions are the same on every rank count.
TEST(VariationalFitOverRanks, SquaremIsBitwiseTheSerialFit) {
  SimulationSettings s;
  s.trials = 13;
  s.bins = 40;
  s.neurons = 20;
  s.observation = "negative_binomial";
  s.behavior_channels = 2;
  Problem p = simulated(s, 3, 12);
  p.settings.model =
      ModelSettings::for_model(builtin_spike_models().get("negbin"), FamilyKind::kGaussMarkov);
  p.settings.continuous_names = {kBehaviorModality};
  p.settings.accelerate = Acceleration::kSquarem;
  expect_rank_count_independent(p);
}

}  // namespace
}  // namespace spikevi
