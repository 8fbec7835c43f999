// Checkpoint files on one process: an exact round trip of every field, the previous file kept,
// a damaged newest file skipped for the previous one, other settings and non-finite states
// refused. (The collective write and restarts under mpirun: tests/cli/cli_checkpoint.sh.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "spikevi/io/checkpoint.hpp"
#include "spikevi/error.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

constexpr int kDim = 2, kNeurons = 3;

CheckpointLayout layout() { return {0, 3, 6, {6, 4, 5}, kDim, kNeurons}; }
CheckpointIdentity identity() { return {{"latents", "2"}, {"data", "3 trials"}}; }

FitState state_at(int iteration) {
  std::mt19937_64 rng(static_cast<unsigned>(iteration));
  FitState s;
  s.iteration = iteration;
  s.globals = make_prior_state(kDim, kNeurons, PriorSettings{});
  s.globals.spikes.C = testing::random_normal(kNeurons, kDim, rng);
  s.globals.spikes.d = testing::random_normal(kNeurons, 1, rng);
  s.globals.mu0 = testing::random_normal(kDim, 1, rng);
  s.globals.dynamics.nu = 7.25 + iteration;
  s.statistics = GlobalStatistics::zero(kDim, kNeurons).pack();
  s.statistics[0] = 1.0 / 3.0;
  s.statistics[1] = -2.5e-300;
  s.statistics.back() = 7.0 * iteration;
  s.pending = GlobalStepSize{0.375, 12.5};
  s.row_damping = Eigen::Vector3d(1.0, 0.25, 1.0);
  s.previous_elbo = -1234.5678901234567;
  s.unconverged_local_steps = 4;
  for (int i = 1; i <= iteration; ++i) {
    IterationRecord r;
    r.iteration = i;
    r.elbo = -1000.0 / i;
    r.relative_change = i == 1 ? std::nan("") : 1e-3 / i;
    r.rho = 0.5;
    s.trace.push_back(r);
  }
  for (int bins : layout().bins)
    s.sites.push_back(
        {testing::random_normal(kDim, kDim * bins, rng), testing::random_normal(kDim, bins, rng)});
  return s;
}

void expect_same(const FitState& a, const FitState& b) {
  EXPECT_EQ(a.iteration, b.iteration);
  EXPECT_EQ(a.globals.spikes.C, b.globals.spikes.C);
  EXPECT_EQ(a.globals.spikes.d, b.globals.spikes.d);
  EXPECT_EQ(a.globals.spikes.precision, b.globals.spikes.precision);
  EXPECT_EQ(a.globals.mu0, b.globals.mu0);
  EXPECT_EQ(a.globals.Sigma0, b.globals.Sigma0);
  EXPECT_EQ(a.globals.dynamics.M, b.globals.dynamics.M);
  EXPECT_EQ(a.globals.dynamics.V, b.globals.dynamics.V);
  EXPECT_EQ(a.globals.dynamics.Psi, b.globals.dynamics.Psi);
  EXPECT_EQ(a.globals.dynamics.nu, b.globals.dynamics.nu);
  EXPECT_EQ(a.globals.dynamics_prior.Psi, b.globals.dynamics_prior.Psi);
  EXPECT_EQ(a.globals.spikes_prior.precision, b.globals.spikes_prior.precision);
  EXPECT_EQ(a.statistics, b.statistics);
  EXPECT_EQ(a.pending.rho, b.pending.rho);
  EXPECT_EQ(a.pending.scale, b.pending.scale);
  EXPECT_EQ(a.row_damping, b.row_damping);
  EXPECT_EQ(a.previous_elbo, b.previous_elbo);
  EXPECT_EQ(a.unconverged_local_steps, b.unconverged_local_steps);
  ASSERT_EQ(a.trace.size(), b.trace.size());
  for (std::size_t i = 0; i < a.trace.size(); ++i) {
    EXPECT_EQ(a.trace[i].iteration, b.trace[i].iteration);
    EXPECT_EQ(a.trace[i].elbo, b.trace[i].elbo);
  }
  ASSERT_EQ(a.sites.size(), b.sites.size());
  for (std::size_t k = 0; k < a.sites.size(); ++k) {
    EXPECT_EQ(a.sites[k].precision, b.sites[k].precision) << "trial " << k;
    EXPECT_EQ(a.sites[k].shift, b.sites[k].shift) << "trial " << k;
  }
}

TEST(Checkpoint, RoundTripIsExactAndKeepsThePreviousFile) {
  testing::TempDir dir;
  SerialCommunicator comm;
  const std::string path = dir.file("fit.h5.checkpoint.h5");
  EXPECT_FALSE(read_checkpoint(path, layout(), identity(), comm).has_value());
  write_checkpoint(path, state_at(3), layout(), identity(), comm);
  write_checkpoint(path, state_at(5), layout(), identity(), comm);
  EXPECT_TRUE(std::filesystem::exists(previous_checkpoint_path(path)));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const auto loaded = read_checkpoint(path, layout(), identity(), comm);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->path, path);
  EXPECT_EQ(loaded->ranks, 1);
  expect_same(loaded->state, state_at(5));
}

TEST(Checkpoint, DamagedNewestFileFallsBackToThePreviousOne) {
  testing::TempDir dir;
  SerialCommunicator comm;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, state_at(3), layout(), identity(), comm);
  write_checkpoint(path, state_at(5), layout(), identity(), comm);
  {  // zero 64 bytes in the middle of the newest file
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 2));
    const std::string zeros(64, '\0');
    file.write(zeros.data(), 64);
  }
  const auto loaded = read_checkpoint(path, layout(), identity(), comm);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->path, previous_checkpoint_path(path));
  expect_same(loaded->state, state_at(3));

  // The next write must not rotate the damaged file over the good previous one.
  write_checkpoint(path, state_at(6), layout(), identity(), comm, false);
  EXPECT_TRUE(std::filesystem::exists(path + ".old"));
  std::filesystem::remove(path);
  const auto previous = read_checkpoint(path, layout(), identity(), comm);
  ASSERT_TRUE(previous.has_value());
  expect_same(previous->state, state_at(3));
}

TEST(Checkpoint, AnotherConfigurationIsRefusedNamingTheSetting) {
  testing::TempDir dir;
  SerialCommunicator comm;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, state_at(2), layout(), identity(), comm);
  CheckpointIdentity other = identity();
  other["latents"] = "3";
  try {
    read_checkpoint(path, layout(), other, comm);
    FAIL() << "accepted a checkpoint of another configuration";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("latents = 2, this fit has latents = 3"),
              std::string::npos)
        << error.what();
  }
}

TEST(Checkpoint, NonFiniteStateIsNeverWritten) {
  testing::TempDir dir;
  SerialCommunicator comm;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, state_at(2), layout(), identity(), comm);
  FitState broken = state_at(4);
  broken.sites[1].shift(0, 2) = std::nan("");
  EXPECT_THROW(write_checkpoint(path, broken, layout(), identity(), comm), NumericalError);
  const auto loaded = read_checkpoint(path, layout(), identity(), comm);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->state.iteration, 2);
}

}  // namespace
}  // namespace spikevi
