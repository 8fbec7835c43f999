// fit --accelerate squarem (squarem.hpp) on the default simulation (60 neurons, D = 4, 32
// training trials of 100 bins): the objective never drops (an extrapolation is kept only where
// it rises, and the plain iterations are VB-EM's), the fit converges to plain VB-EM's fixed
// point (ELBO 1e-6 relative, co-smoothing 0.003 bits/spike, the targets of issue 17) in fewer
// iterations, with and without partial local steps, a rejected extrapolation leaves exactly
// the plain iteration, and a fit continued from the state after any iteration of a cycle is
// bitwise the uninterrupted one.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::default_cosmoothing;

std::vector<TrialCounts> training_counts() { return testing::default_training_counts(); }

FitSettings settings(Acceleration accelerate, int steps = 0) {
  FitSettings s;
  s.latents = 4;
  s.iterations = 400;
  s.tolerance = 1e-8;
  s.local.steps = steps;
  s.accelerate = accelerate;
  return s;
}

double cobps(const FitOutcome& fit) { return default_cosmoothing(fit.globals); }

int kept_extrapolations(const FitOutcome& fit) {
  int kept = 0;
  for (const IterationRecord& r : fit.trace) kept += r.squarem_alpha < -1.0 && !r.squarem_rejected;
  return kept;
}

// The plain fits, tight enough that their own distance to the fixed point is far below the
// tolerances compared.
const FitOutcome& plain_fit(int steps) {
  static std::optional<FitOutcome> fits[2];
  std::optional<FitOutcome>& fit = fits[steps > 0 ? 1 : 0];
  if (!fit) {
    SerialCommunicator comm;
    fit = fit_variational(training_counts(), settings(Acceleration::kNone, steps), comm);
  }
  return *fit;
}

void expect_monotone(const FitOutcome& fit) {
  for (std::size_t i = 1; i < fit.trace.size(); ++i)
    // The plain iterations' slack: the local steps' tolerance, 1e-6 nats per trial.
    EXPECT_GE(fit.trace[i].elbo, fit.trace[i - 1].elbo - 1e-6 * 32) << "iteration " << i + 1;
}

void expect_same_fixed_point_sooner(int steps) {
  SerialCommunicator comm;
  const FitOutcome& plain = plain_fit(steps);
  const FitOutcome fast =
      fit_variational(training_counts(), settings(Acceleration::kSquarem, steps), comm);
  ASSERT_EQ(plain.termination, Termination::kConverged);
  ASSERT_EQ(fast.termination, Termination::kConverged);
  expect_monotone(fast);
  EXPECT_GT(kept_extrapolations(fast), 0);
  EXPECT_NEAR(fast.elbo, plain.elbo, 1e-6 * std::abs(plain.elbo));
  EXPECT_NEAR(cobps(fast), cobps(plain), 0.003);
  EXPECT_LT(fast.trace.size(), plain.trace.size());
}

TEST(SquaremFit, ReachesPlainVbEmsFixedPointInFewerIterations) {
  expect_same_fixed_point_sooner(0);
}

TEST(SquaremFit, ReachesItWithPartialLocalStepsToo) { expect_same_fixed_point_sooner(1); }

TEST(SquaremFit, IsRefusedWhereItDoesNotApply) {
  SerialCommunicator comm;
  FitSettings s = settings(Acceleration::kSquarem);
  s.minibatch.size = 8;
  EXPECT_THROW(fit_variational(training_counts(), s, comm), ConfigError);
  s = settings(Acceleration::kSquarem);
  s.model.optimizer = OptimizerKind::kAdam;
  EXPECT_THROW(fit_variational(training_counts(), s, comm), ConfigError);
}

// Keeps the state after every iteration.
class StateKeeper final : public FitCallback {
 public:
  void on_iteration(const IterationRecord&, const FitProgress& fit) override {
    states.push_back(fit.state());
  }
  std::vector<FitState> states;
};

TEST(SquaremFit, ContinuedFromAnyIterationIsBitwiseTheUninterruptedFit) {
  SerialCommunicator comm;
  FitSettings s = settings(Acceleration::kSquarem);
  s.iterations = 14;
  s.tolerance = 0.0;
  StateKeeper keeper;
  const FitOutcome straight = fit_variational(training_counts(), s, comm, {&keeper});
  ASSERT_GT(kept_extrapolations(straight), 0);
  for (int stop : {6, 7, 8}) {  // the three places in a cycle (extrapolations at 3, 6, 9, 12)
    const FitOutcome continued = fit_variational(
        training_counts(), s, comm, {}, &keeper.states[static_cast<std::size_t>(stop - 1)]);
    ASSERT_EQ(continued.trace.size(), straight.trace.size()) << "stopped after " << stop;
    for (std::size_t i = 0; i < straight.trace.size(); ++i)
      EXPECT_EQ(continued.trace[i].elbo, straight.trace[i].elbo)
          << "stopped after " << stop << ", iteration " << i + 1;
    EXPECT_EQ(continued.globals.spikes.C, straight.globals.spikes.C) << stop;
    EXPECT_EQ(continued.globals.dynamics.M, straight.globals.dynamics.M) << stop;
    EXPECT_EQ(continued.globals.Sigma0, straight.globals.Sigma0) << stop;
    EXPECT_EQ(continued.posteriors.back().moments.mean, straight.posteriors.back().moments.mean);
  }
}

// Near the fixed point, where the ELBO's changes approach the local steps' tolerance, some
// extrapolations do not raise it: the iteration then is exactly the plain iteration from the
// same state, and the trace stays monotone.
TEST(SquaremFit, ARejectedExtrapolationIsThePlainIteration) {
  SerialCommunicator comm;
  FitSettings s = settings(Acceleration::kSquarem);
  s.iterations = 150;
  s.tolerance = 0.0;
  StateKeeper keeper;
  const FitOutcome straight = fit_variational(training_counts(), s, comm, {&keeper});
  expect_monotone(straight);
  std::size_t rejected = 0;
  while (rejected < straight.trace.size() && !straight.trace[rejected].squarem_rejected) ++rejected;
  ASSERT_LT(rejected, straight.trace.size()) << "no extrapolation was rejected";
  FitSettings plain = settings(Acceleration::kNone);
  plain.iterations = static_cast<int>(rejected) + 1;
  plain.tolerance = 0.0;
  const FitOutcome once =
      fit_variational(training_counts(), plain, comm, {}, &keeper.states[rejected - 1]);
  ASSERT_EQ(once.trace.size(), rejected + 1);
  EXPECT_EQ(once.trace[rejected].elbo, straight.trace[rejected].elbo)
      << "iteration " << rejected + 1;
  EXPECT_GT(straight.trace[rejected].local_iterations, once.trace[rejected].local_iterations);
}

}  // namespace
}  // namespace spikevi
