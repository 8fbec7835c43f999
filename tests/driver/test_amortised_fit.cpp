// The amortised fit (encoder + decoder by stochastic gradient on the ELBO) on a simulation.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/driver/amortised_fit.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"

namespace spikevi {
namespace {

struct Small {
  Dataset data;
  std::vector<TrialCounts> trials;
  FitSettings settings;
};

Small small_problem(int iterations) {
  SimulationSettings s;
  s.trials = 16;
  s.bins = 40;
  s.neurons = 20;
  s.latents = 2;
  Small p;
  p.data = simulate(s);
  p.trials = make_trial_counts(p.data, p.data.split->train_trials);
  p.settings.latents = 2;
  p.settings.iterations = iterations;
  p.settings.tolerance = 0.0;
  return p;
}

TEST(AmortisedFit, TrainingRaisesTheElboAndRecordsTheSchedule) {
  const Small p = small_problem(60);
  SerialCommunicator comm;
  AmortisedSettings amortised;
  amortised.hidden = 8;
  amortised.window = 3;
  amortised.adam.learning_rate = 0.02;
  amortised.kl_warmup = 10;
  amortised.kl_beta0 = 0.1;
  const AmortisedOutcome out = fit_amortised(p.trials, p.settings, amortised, comm);
  ASSERT_EQ(out.fit.termination, Termination::kIterationLimit) << out.fit.message;
  ASSERT_EQ(out.fit.trace.size(), 60u);
  ASSERT_EQ(out.beta.size(), 60u);
  EXPECT_DOUBLE_EQ(out.beta[0], 0.1);
  EXPECT_DOUBLE_EQ(out.beta[5], 0.1 + 0.9 * 5 / 10.0);
  EXPECT_DOUBLE_EQ(out.beta[10], 1.0);
  EXPECT_EQ(out.kl_per_dimension.rows(), 60);
  EXPECT_EQ(out.kl_per_dimension.cols(), 2);
  // The random encoder's sites are far from the posterior; training closes much of the gap.
  const double first = out.fit.trace.front().elbo, last = out.fit.trace.back().elbo;
  EXPECT_GT(last, first + 0.05 * std::abs(first)) << first << " -> " << last;
  EXPECT_TRUE(std::isfinite(out.fit.elbo));
  EXPECT_EQ(out.fit.posteriors.size(), p.trials.size());
  EXPECT_EQ(out.final_kl_per_dimension.size(), 2);
  EXPECT_GE(out.final_active_units, 0);
}

TEST(AmortisedFit, RefusesWhatItDoesNotImplement) {
  const Small p = small_problem(2);
  SerialCommunicator comm;
  AmortisedSettings free_bits;
  free_bits.free_bits = 0.5;
  EXPECT_THROW(fit_amortised(p.trials, p.settings, free_bits, comm), ConfigError);
  AmortisedSettings zero_beta;
  zero_beta.kl_beta0 = 0.0;
  EXPECT_THROW(fit_amortised(p.trials, p.settings, zero_beta, comm), ConfigError);
  FitSettings mean_field = p.settings;
  mean_field.model.family = FamilyKind::kMeanField;
  EXPECT_THROW(fit_amortised(p.trials, mean_field, AmortisedSettings{}, comm), ConfigError);
}

TEST(AmortisedFit, TheEncoderReadsOnlyItsRows) {
  const Eigen::ArrayXXd counts = Eigen::ArrayXXd::Random(5, 4);
  const Eigen::ArrayXXd input = encoder_input(counts, {1, 3});
  ASSERT_EQ(input.rows(), 2);
  EXPECT_EQ(input.row(0).matrix(), counts.row(1).matrix());
  EXPECT_EQ(input.row(1).matrix(), counts.row(3).matrix());
  EXPECT_EQ(encoder_input(counts, {}).matrix(), counts.matrix());
}

}  // namespace
}  // namespace spikevi
