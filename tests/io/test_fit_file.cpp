// The results file: what `spikevi evaluate` reads back must score exactly as the in-memory
// fit does (the canonical gauge and the HDF5 round trip change nothing observable).
#include <gtest/gtest.h>

#include "spikevi/io/trial_counts.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/model/gauge.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/model/simulation.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

struct SmallFit {
  Dataset data;
  FitOutcome outcome;
  FitRecord record;
};

SmallFit small_fit() {
  SimulationSettings settings;
  settings.trials = 12;
  settings.bins = 40;
  settings.neurons = 24;
  settings.latents = 3;
  SmallFit fit{simulate(settings), {}, {}};
  FitSettings fit_settings;
  fit_settings.latents = 3;
  fit_settings.iterations = 5;
  SerialCommunicator comm;
  fit.outcome = fit_variational(make_trial_counts(fit.data, fit.data.split->train_trials),
                                fit_settings, comm);
  std::vector<GaussianMoments> latents;
  for (const GaussMarkovState& s : fit.outcome.posteriors) latents.push_back(s.moments);
  const AffineGauge gauge = AffineGauge::canonical(fit.outcome.globals.spikes, latents);
  fit.record.globals = gauge.apply(fit.outcome.globals);
  fit.record.trace = fit.outcome.trace;
  fit.record.trials = fit.data.split->train_trials;
  for (const GaussianMoments& q : latents) fit.record.latents.push_back(gauge.apply(q));
  fit.record.padded_bins = fit.data.bins;
  return fit;
}

TEST(FitFile, GlobalsReadBackScoreAsTheInMemoryFit) {
  const SmallFit fit = small_fit();
  testing::TempDir dir;
  write_fit(dir.file("fit.h5"), fit.record);
  const GlobalState read = read_fit_globals(dir.file("fit.h5"));
  const LocalStepSettings local{.tolerance = 1e-10, .max_iterations = 300};
  const double in_memory =
      cosmooth(InferenceModel::of(fit.outcome.globals, ModelSettings{}), fit.data, local)
          .bits_per_spike;
  const double from_file =
      cosmooth(InferenceModel::of(read, ModelSettings{}), fit.data, local).bits_per_spike;
  // Same model in another gauge: both local steps converge to the same optimum (1e-10 nats),
  // so the scores agree far below any difference that matters (bits/spike ~ 0.1-0.3).
  EXPECT_NEAR(from_file, in_memory, 1e-7);
  EXPECT_LT(testing::max_abs_diff(read.spikes.precision, fit.record.globals.spikes.precision),
            1e-12);
  EXPECT_DOUBLE_EQ(read.dynamics.nu, fit.record.globals.dynamics.nu);
}

TEST(FitFile, RefusesAFitWhoseArraysDisagreeWithItsReadout) {
  const SmallFit fit = small_fit();
  testing::TempDir dir;
  write_fit(dir.file("fit.h5"), fit.record);
  {
    Hdf5File file = Hdf5File::open_read_write(dir.file("fit.h5"));
    file.remove("/globals/d");
    file.write_doubles("/globals/d", std::vector<double>(5, 0.0), {5});
  }
  try {
    read_fit_globals(dir.file("fit.h5"));
    FAIL() << "a short /globals/d was accepted";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("/globals/d"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace spikevi
