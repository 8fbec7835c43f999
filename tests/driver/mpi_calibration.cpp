// run_calibration under mpirun (1, 2, 4 ranks): the rank table over the world is exactly the
// table of one process (a SerialCommunicator, computed on every rank), since each replicate's
// draws are keyed by the replicate alone.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/driver/calibration.hpp"
#include "spikevi/model/simulation.hpp"
#include "support/mpi_test.hpp"

namespace spikevi {
namespace {

// The /truth of a small simulation: 20 neurons, D = 3.
CalibrationModel small_model() {
  SimulationSettings sim;
  sim.neurons = 20;
  sim.latents = 3;
  sim.trials = 2;
  return CalibrationModel::from_truth(*simulate(sim).truth);
}

TEST(MpiCalibration, RanksDoNotDependOnTheRankCount) {
  const CalibrationModel model = small_model();
  for (FamilyKind family : {FamilyKind::kGaussMarkov, FamilyKind::kMeanField}) {
    CalibrationSettings s;
    s.replicates = 11;
    s.draws = 19;
    s.bins = 30;
    s.family = family;
    SerialCommunicator serial;
    const CalibrationResult alone = run_calibration(model, s, serial);
    int calls = 0;
    const CalibrationResult world =
        run_calibration(model, s, testing::world(), [&](int, int) { ++calls; });
    EXPECT_TRUE((alone.latent_ranks.array() == world.latent_ranks.array()).all());
    EXPECT_NEAR(alone.elbo, world.elbo, 1e-9 * std::abs(alone.elbo));  // summed in another order
    EXPECT_EQ(alone.spikes, world.spikes);
    const int here =
        (11 - testing::world().rank() + testing::world().size() - 1) / testing::world().size();
    EXPECT_EQ(calls, here);
  }
}

// With the dynamics drawn per replicate the three tables are the same on any rank count too.
TEST(MpiCalibration, DrawnDynamicsDoNotDependOnTheRankCount) {
  const CalibrationModel model = small_model();
  CalibrationSettings s;
  s.replicates = 7;
  s.draws = 19;
  s.bins = 30;
  s.dynamics_prior = model.dynamics_prior(0.01, 13.0);
  SerialCommunicator serial;
  const CalibrationResult alone = run_calibration(model, s, serial);
  const CalibrationResult world = run_calibration(model, s, testing::world());
  EXPECT_TRUE((alone.latent_ranks.array() == world.latent_ranks.array()).all());
  EXPECT_TRUE((alone.dynamics_ranks.array() == world.dynamics_ranks.array()).all());
  EXPECT_TRUE((alone.noise_ranks.array() == world.noise_ranks.array()).all());
  EXPECT_EQ(alone.unstable_dynamics, world.unstable_dynamics);
  EXPECT_EQ(alone.dynamics_ranks.cols(), 12);
  EXPECT_EQ(alone.noise_ranks.cols(), 6);
}

}  // namespace
}  // namespace spikevi
