// The amortised fit (encoder + decoder by stochastic gradient on the ELBO) on a simulation.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>

#include "spikevi/driver/amortised_fit.hpp"
#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/checkpoint.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"
#include "support/test_support.hpp"

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

// Keeps the state the fit reports after iteration `at` (what a checkpoint writes).
class StateAt final : public FitCallback {
 public:
  explicit StateAt(int at) : at_(at) {}
  void on_iteration(const IterationRecord&, const FitProgress& fit) override {
    if (fit.iteration() == at_) saved = fit.state();
  }
  std::optional<FitState> saved;

 private:
  int at_;
};

bool same_bits(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::bit_cast<std::uint64_t>(a.data()[i]) != std::bit_cast<std::uint64_t>(b.data()[i]))
      return false;
  return true;
}

// A fit continued from the checkpoint of its iteration 5 (written to and read back from a file)
// is bitwise the uninterrupted fit: globals, encoder, Adam's moments, traces and the final pass.
TEST(AmortisedFit, ContinuedFromACheckpointIsBitwiseTheUninterruptedFit) {
  Small p = small_problem(12);
  p.settings.minibatch = MinibatchSettings{.size = 5, .tau = 1.0, .kappa = 0.7, .seed = 3};
  SerialCommunicator comm;
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  amortised.kl_warmup = 8;
  amortised.encoder_rows = p.data.split->heldin_neurons();
  StateAt at(5);
  const std::vector<FitCallback*> callbacks{&at};
  const AmortisedOutcome whole = fit_amortised(p.trials, p.settings, amortised, comm, callbacks);
  ASSERT_TRUE(at.saved.has_value());

  CheckpointLayout layout;
  layout.population = static_cast<int>(p.trials.size());
  layout.padded_bins = p.data.bins;
  for (const TrialCounts& trial : p.trials)
    layout.bins.push_back(static_cast<int>(trial.counts.cols()));
  layout.dim = 2;
  layout.neurons = p.data.neurons;
  layout.extra_state = amortised_state_template(
      amortised, static_cast<int>(amortised.encoder_rows.size()), 2, p.settings.iterations);
  testing::TempDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, *at.saved, layout, {{"inference", "amortised"}}, comm, false);
  const std::optional<LoadedCheckpoint> loaded =
      read_checkpoint(path, layout, {{"inference", "amortised"}}, comm);
  ASSERT_TRUE(loaded.has_value());
  const AmortisedOutcome continued =
      fit_amortised(p.trials, p.settings, amortised, comm, {}, &loaded->state);

  ASSERT_EQ(continued.fit.trace.size(), whole.fit.trace.size());
  for (std::size_t i = 0; i < whole.fit.trace.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(continued.fit.trace[i].elbo),
              std::bit_cast<std::uint64_t>(whole.fit.trace[i].elbo))
        << "iteration " << i + 1;
  EXPECT_EQ(std::bit_cast<std::uint64_t>(continued.fit.elbo),
            std::bit_cast<std::uint64_t>(whole.fit.elbo));
  EXPECT_TRUE(same_bits(continued.encoder.parameters(), whole.encoder.parameters()));
  EXPECT_TRUE(
      same_bits(continued.encoder_moments.first.matrix(), whole.encoder_moments.first.matrix()));
  EXPECT_EQ(continued.encoder_moments.steps, whole.encoder_moments.steps);
  EXPECT_TRUE(same_bits(continued.fit.globals.spikes.C, whole.fit.globals.spikes.C));
  EXPECT_TRUE(same_bits(continued.fit.globals.dynamics.M, whole.fit.globals.dynamics.M));
  EXPECT_TRUE(same_bits(continued.kl_per_dimension, whole.kl_per_dimension));
  EXPECT_EQ(continued.beta, whole.beta);
  EXPECT_EQ(continued.active_units, whole.active_units);
  for (std::size_t k = 0; k < p.trials.size(); ++k)
    EXPECT_TRUE(
        same_bits(continued.fit.posteriors[k].moments.mean, whole.fit.posteriors[k].moments.mean));
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
