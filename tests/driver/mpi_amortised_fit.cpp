// fit_amortised under mpirun (1, 2, 4 ranks): the ranks' shares through the world communicator
// give bitwise the serial fit of all trials (one reproducible allreduce per iteration of the
// statistics, the encoder gradient and the diagnostics; the same Adam and global steps).
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>

#include "spikevi/driver/amortised_fit.hpp"
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

void expect_rank_count_independent(const FitSettings& settings,
                                   const AmortisedSettings& amortised) {
  SimulationSettings s;
  s.trials = 13;
  s.bins = 30;
  s.neurons = 16;
  s.latents = 2;
  s.min_length_fraction = 0.6;
  const Dataset data = simulate(s);
  const std::vector<int>& trials = data.split->train_trials;
  Communicator& world = testing::world();
  SerialCommunicator serial;
  const AmortisedOutcome alone =
      fit_amortised(make_trial_counts(data, trials), settings, amortised, serial);
  const Share share = rank_share(trials.size(), world.rank(), world.size());
  const std::vector<int> mine(trials.begin() + static_cast<std::ptrdiff_t>(share.begin),
                              trials.begin() + static_cast<std::ptrdiff_t>(share.end));
  const AmortisedOutcome sharded = fit_amortised(
      make_trial_counts(data, mine, {}, static_cast<int>(share.begin)), settings, amortised, world);
  ASSERT_EQ(sharded.fit.trace.size(), alone.fit.trace.size());
  for (std::size_t i = 0; i < alone.fit.trace.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(sharded.fit.trace[i].elbo),
              std::bit_cast<std::uint64_t>(alone.fit.trace[i].elbo))
        << "iteration " << i + 1;
  EXPECT_EQ(std::bit_cast<std::uint64_t>(sharded.fit.elbo),
            std::bit_cast<std::uint64_t>(alone.fit.elbo));
  EXPECT_TRUE(same_bits(sharded.encoder.parameters(), alone.encoder.parameters()));
  EXPECT_TRUE(same_bits(sharded.kl_per_dimension, alone.kl_per_dimension));
  EXPECT_EQ(sharded.active_units, alone.active_units);
  EXPECT_TRUE(same_bits(sharded.fit.globals.spikes.C, alone.fit.globals.spikes.C));
  EXPECT_TRUE(same_bits(sharded.fit.globals.dynamics.M, alone.fit.globals.dynamics.M));
  EXPECT_TRUE(same_bits(sharded.fit.globals.history.B, alone.fit.globals.history.B));
  EXPECT_EQ(sharded.beta, alone.beta);
  for (std::size_t k = 0; k < share.size(); ++k)
    EXPECT_TRUE(same_bits(sharded.fit.posteriors[k].moments.mean,
                          alone.fit.posteriors[share.begin + k].moments.mean));
}

TEST(AmortisedFitOverRanks, FullBatchIsBitwiseTheSerialFit) {
  FitSettings settings;
  settings.latents = 2;
  settings.iterations = 6;
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  amortised.kl_warmup = 3;
  expect_rank_count_independent(settings, amortised);
}

TEST(AmortisedFitOverRanks, MinibatchIsBitwiseTheSerialFit) {
  FitSettings settings;
  settings.latents = 2;
  settings.iterations = 6;
  settings.minibatch = MinibatchSettings{.size = 4, .tau = 1.0, .kappa = 0.7, .seed = 5};
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  expect_rank_count_independent(settings, amortised);
}

// The history basis from moments summed over ranks exactly, and the free-bits switch decided
// from the reduced KL: the same on every rank and rank count.
TEST(AmortisedFitOverRanks, WithHistoryTermsAndFreeBitsIsBitwiseTheSerialFit) {
  FitSettings settings;
  settings.latents = 2;
  settings.iterations = 6;
  settings.history.lags = 2;
  settings.minibatch = MinibatchSettings{.size = 4, .tau = 1.0, .kappa = 0.7, .seed = 5};
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  amortised.free_bits = 0.05;
  expect_rank_count_independent(settings, amortised);
}

}  // namespace
}  // namespace spikevi
