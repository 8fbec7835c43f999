// The amortised fit (encoder + decoder by stochastic gradient on the ELBO) on a simulation.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>

#include "spikevi/driver/amortised_fit.hpp"
#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/error.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/inference/variational_family.hpp"
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

AmortisedSettings annealed_encoder() {
  AmortisedSettings amortised;
  amortised.hidden = 8;
  amortised.window = 3;
  amortised.adam.learning_rate = 0.02;
  amortised.kl_warmup = 10;
  amortised.kl_beta0 = 0.1;
  return amortised;
}

TEST(AmortisedFit, TrainingRaisesTheElboAndRecordsTheSchedule) {
  const Small p = small_problem(60);
  SerialCommunicator comm;
  const AmortisedSettings amortised = annealed_encoder();
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
// is bitwise the uninterrupted fit: globals (history weights included), encoder, Adam's moments,
// traces and the final pass.
void expect_continued_is_bitwise(const Small& p, const AmortisedSettings& amortised) {
  SerialCommunicator comm;
  StateAt at(5);
  const std::vector<FitCallback*> callbacks{&at};
  const AmortisedOutcome whole = fit_amortised(p.trials, p.settings, amortised, comm, callbacks);
  ASSERT_EQ(whole.fit.termination, Termination::kIterationLimit) << whole.fit.message;
  ASSERT_TRUE(at.saved.has_value());

  CheckpointLayout layout;
  layout.population = static_cast<int>(p.trials.size());
  layout.padded_bins = p.data.bins;
  for (const TrialCounts& trial : p.trials)
    layout.bins.push_back(static_cast<int>(trial.counts.cols()));
  layout.dim = 2;
  layout.neurons = p.data.neurons;
  if (p.settings.history.active()) layout.model.history = HistoryBasis::shaped(p.settings.history);
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
  EXPECT_TRUE(same_bits(continued.fit.globals.history.B, whole.fit.globals.history.B));
  EXPECT_TRUE(
      same_bits(continued.fit.globals.history.precision, whole.fit.globals.history.precision));
  EXPECT_TRUE(same_bits(continued.kl_per_dimension, whole.kl_per_dimension));
  EXPECT_EQ(continued.beta, whole.beta);
  EXPECT_EQ(continued.kl_per_bin, whole.kl_per_bin);
  EXPECT_EQ(continued.active_units, whole.active_units);
  for (std::size_t k = 0; k < p.trials.size(); ++k)
    EXPECT_TRUE(
        same_bits(continued.fit.posteriors[k].moments.mean, whole.fit.posteriors[k].moments.mean));
}

AmortisedSettings small_encoder(const Small& p) {
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  amortised.kl_warmup = 8;
  amortised.encoder_rows = p.data.split->heldin_neurons();
  return amortised;
}

TEST(AmortisedFit, ContinuedFromACheckpointIsBitwiseTheUninterruptedFit) {
  Small p = small_problem(12);
  p.settings.minibatch = MinibatchSettings{.size = 5, .tau = 1.0, .kappa = 0.7, .seed = 3};
  expect_continued_is_bitwise(p, small_encoder(p));
}

// The history terms' basis is recomputed from the data on resume and their weights b_n and
// precisions come from the checkpoint; --free-bits decides each iteration from its own pass.
TEST(AmortisedFit, WithHistoryTermsAndFreeBitsContinuedIsBitwiseTheUninterruptedFit) {
  Small p = small_problem(12);
  p.settings.minibatch = MinibatchSettings{.size = 5, .tau = 1.0, .kappa = 0.7, .seed = 3};
  p.settings.history.lags = 2;
  p.settings.history.rows = p.data.split->heldin_neurons();
  AmortisedSettings amortised = small_encoder(p);
  amortised.free_bits = 0.05;
  expect_continued_is_bitwise(p, amortised);
}

// History terms that read silent rows (constant counts: their deviations from the mean, hence
// the features f_t, are exactly 0) have zero gradient and curvature, so b_n stays exactly 0
// and every offset B f_t is 0: the fit is bit for bit the fit without them, except that the
// ELBO holds the weights' prior log N(0; 0, I/lambda) = (F/2) log(lambda / 2 pi) per row.
TEST(AmortisedFit, HistoryTermsOnSilentRowsAreExactlyTheFitWithout) {
  Small p = small_problem(15);
  for (TrialCounts& trial : p.trials) trial.counts.topRows(2).setConstant(1.0);
  SerialCommunicator comm;
  AmortisedSettings amortised;
  amortised.hidden = 6;
  amortised.window = 3;
  amortised.kl_warmup = 5;
  amortised.initial_iterations = 2;
  const AmortisedOutcome without = fit_amortised(p.trials, p.settings, amortised, comm);
  FitSettings history = p.settings;
  history.history =
      HistorySettings{.lags = 3, .components = 2, .prior_precision = 4.0, .rows = {0, 1}};
  const AmortisedOutcome with = fit_amortised(p.trials, history, amortised, comm);
  ASSERT_EQ(with.fit.termination, Termination::kIterationLimit) << with.fit.message;
  ASSERT_EQ(with.fit.globals.history.features(), 6);
  EXPECT_EQ(with.fit.globals.history.B, Eigen::MatrixXd::Zero(p.data.neurons, 6));
  EXPECT_TRUE(same_bits(with.encoder.parameters(), without.encoder.parameters()));
  EXPECT_TRUE(same_bits(with.fit.globals.spikes.C, without.fit.globals.spikes.C));
  EXPECT_TRUE(same_bits(with.fit.globals.spikes.d, without.fit.globals.spikes.d));
  EXPECT_TRUE(same_bits(with.fit.globals.dynamics.M, without.fit.globals.dynamics.M));
  EXPECT_TRUE(same_bits(with.kl_per_dimension, without.kl_per_dimension));
  for (std::size_t k = 0; k < p.trials.size(); ++k)
    EXPECT_TRUE(
        same_bits(with.fit.posteriors[k].moments.mean, without.fit.posteriors[k].moments.mean));
  const double prior = p.data.neurons * 6 / 2.0 * std::log(4.0 / (2.0 * std::numbers::pi));
  // The ELBOs are O(1e4) nats, and the prior is added once: a few ulps of either.
  EXPECT_NEAR(with.fit.elbo - without.fit.elbo, prior, 1e-9 * std::abs(without.fit.elbo));
  for (std::size_t i = 0; i < with.fit.trace.size(); ++i)
    EXPECT_NEAR(with.fit.trace[i].elbo - without.fit.trace[i].elbo, prior,
                1e-9 * std::abs(without.fit.trace[i].elbo));
}

// With history terms on informative rows the weights move off 0, and the encoder's q of each
// trial is scored with its offset B f_t: its ELBO at the final state is the one evaluated
// independently from the fitted globals with eta = C z + d + B f_t, and not the one without.
TEST(AmortisedFit, HistoryTermsEnterTheEncodersObjective) {
  Small p = small_problem(20);
  p.settings.history.lags = 2;
  p.settings.history.rows = p.data.split->heldin_neurons();
  SerialCommunicator comm;
  AmortisedSettings amortised = small_encoder(p);
  const AmortisedOutcome out = fit_amortised(p.trials, p.settings, amortised, comm);
  ASSERT_EQ(out.fit.termination, Termination::kIterationLimit) << out.fit.message;
  const GlobalState& g = out.fit.globals;
  ASSERT_TRUE(g.history.active());
  EXPECT_GT(g.history.B.cwiseAbs().maxCoeff(), 1e-3);
  const auto model = p.settings.model.spike_observation(g.spike_parameters);
  const ReadoutKernels kernels(g.spikes);
  const LatentPrior prior = LatentPrior::from(g);
  auto family = make_family_evaluator(FamilyKind::kGaussMarkov);
  DeterministicEstimator estimator;
  double with_offset = 0.0, without_offset = 0.0, fitted = 0.0;
  for (std::size_t k = 0; k < p.trials.size(); ++k) {
    const TrialCounts& trial = p.trials[k];
    const PriorBlocks blocks = prior.blocks(static_cast<int>(trial.counts.cols()));
    const Eigen::ArrayXXd offset = g.history.offset(g.history.basis.features(trial.counts));
    const double base = model->log_base_measure(trial.counts);
    GaussMarkovState state;
    const std::vector<ModalityView> views{
        ModalityView{model.get(), &kernels, &trial.counts, base, nullptr, &offset}};
    family->evaluate(blocks, views, out.fit.posteriors[k].sites, estimator, state);
    with_offset += state.elbo;
    const std::vector<ModalityView> plain{ModalityView{model.get(), &kernels, &trial.counts, base}};
    family->evaluate(blocks, plain, out.fit.posteriors[k].sites, estimator, state);
    without_offset += state.elbo;
    fitted += out.fit.posteriors[k].elbo;
  }
  EXPECT_NEAR(fitted, with_offset, 1e-10 * std::abs(fitted));
  EXPECT_GT(std::abs(with_offset - without_offset), 1.0);
  EXPECT_NEAR(out.fit.elbo, fitted + g.global_terms(), 1e-10 * std::abs(fitted));
}

// --free-bits lambda: the KL's weight is 0 exactly in the iterations whose batch KL per bin is
// below D lambda, else the schedule's beta; below every iteration's KL it is the plain fit.
TEST(AmortisedFit, FreeBitsSwitchTheKlWeightAtTheirThreshold) {
  const Small p = small_problem(30);
  SerialCommunicator comm;
  const AmortisedSettings amortised = annealed_encoder();
  const AmortisedOutcome plain = fit_amortised(p.trials, p.settings, amortised, comm);
  ASSERT_EQ(plain.kl_per_bin.size(), 30u);
  std::vector<double> kl = plain.kl_per_bin;
  const double smallest = *std::min_element(kl.begin(), kl.end());
  std::nth_element(kl.begin(), kl.begin() + 15, kl.end());
  ASSERT_GT(smallest, 0.0);

  AmortisedSettings below = amortised;
  below.free_bits = 0.5 * smallest / 2;  // D lambda below every iteration's KL per bin
  const AmortisedOutcome same = fit_amortised(p.trials, p.settings, below, comm);
  EXPECT_EQ(same.beta, plain.beta);
  EXPECT_EQ(same.kl_per_bin, plain.kl_per_bin);
  for (std::size_t i = 0; i < plain.fit.trace.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(same.fit.trace[i].elbo),
              std::bit_cast<std::uint64_t>(plain.fit.trace[i].elbo));
  EXPECT_TRUE(same_bits(same.encoder.parameters(), plain.encoder.parameters()));

  AmortisedSettings median = amortised;
  median.free_bits = kl[15] / 2;  // D lambda at the plain fit's median KL per bin
  const AmortisedOutcome out = fit_amortised(p.trials, p.settings, median, comm);
  ASSERT_EQ(out.fit.termination, Termination::kIterationLimit) << out.fit.message;
  int weightless = 0;
  for (int i = 0; i < 30; ++i) {
    const auto at = static_cast<std::size_t>(i);
    const bool below_threshold = out.kl_per_bin[at] < 2 * median.free_bits;
    EXPECT_EQ(out.beta[at], below_threshold ? 0.0 : amortised.beta(i + 1)) << "iteration " << i + 1;
    weightless += below_threshold ? 1 : 0;
  }
  EXPECT_GT(weightless, 0);
  EXPECT_LT(weightless, 30);
  // "elbo" stays the beta = 1 ELBO of the encoder's q: the final pass's sum.
  double elbo = out.fit.globals.global_terms();
  for (const GaussMarkovState& state : out.fit.posteriors) elbo += state.elbo;
  EXPECT_NEAR(out.fit.elbo, elbo, 1e-12 * std::abs(elbo));
}

TEST(AmortisedFit, RefusesWhatItDoesNotImplement) {
  const Small p = small_problem(2);
  SerialCommunicator comm;
  AmortisedSettings free_bits;
  free_bits.free_bits = -0.5;
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
