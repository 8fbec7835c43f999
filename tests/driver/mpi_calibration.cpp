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

TEST(MpiCalibration, RanksDoNotDependOnTheRankCount) {
  SimulationSettings sim;
  sim.neurons = 20;
  sim.latents = 3;
  sim.trials = 2;
  const CalibrationModel model = CalibrationModel::from_truth(*simulate(sim).truth);
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

}  // namespace
}  // namespace spikevi
