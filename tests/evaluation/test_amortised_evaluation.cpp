// Co-smoothing and latents of an amortised fit with history terms (amortised_evaluation.hpp):
// the held-out rows' eta is the latents' plus each test trial's offset B f_t, and the held-in
// likelihood that --refine steps on holds the held-in rows' offsets.
#include <gtest/gtest.h>

#include <random>

#include "spikevi/evaluation/amortised_evaluation.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/variational_family.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {
namespace {

struct Fixture {
  Dataset data;
  InferenceModel model;
  EncoderRecord encoder;
  HistoryCoupling history;
};

// The simulation's true model, a random encoder reading the held-in neurons, and history
// terms with random weights B on a basis from the training trials' held-in counts.
Fixture fixture() {
  SimulationSettings s;
  s.trials = 12;
  s.bins = 30;
  s.neurons = 14;
  s.latents = 2;
  Fixture f;
  f.data = simulate(s);
  f.model = truth_model(*f.data.truth, builtin_spike_models());
  const std::vector<int> heldin = f.data.split->heldin_neurons();
  f.encoder.encoder = SiteEncoder(
      EncoderShape{
          .inputs = static_cast<int>(heldin.size()), .hidden = 4, .window = 3, .latents = 2},
      5);
  f.encoder.input_neurons = heldin;
  f.encoder.gauge = AffineGauge{Eigen::MatrixXd::Identity(2, 2), Eigen::VectorXd::Zero(2)};
  const HistorySettings settings{
      .lags = 2, .components = 2, .prior_precision = 1.0, .rows = heldin};
  CountMoments moments{Eigen::VectorXd::Zero(static_cast<Eigen::Index>(heldin.size())),
                       Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(heldin.size()),
                                             static_cast<Eigen::Index>(heldin.size())),
                       0.0};
  for (const TrialCounts& trial : make_trial_counts(f.data, f.data.split->train_trials)) {
    const CountMoments one = count_moments(trial.counts, heldin);
    moments.sum += one.sum;
    moments.second += one.second;
    moments.bins += one.bins;
  }
  f.history = HistoryCoupling::at_prior(make_history_basis(settings, moments), s.neurons, 1.0);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 0.3);
  for (Eigen::Index i = 0; i < f.history.B.size(); ++i) f.history.B.data()[i] = normal(rng);
  return f;
}

TEST(AmortisedEvaluation, HeldOutEtaHoldsTheTestTrialsHistoryOffsets) {
  Fixture f = fixture();
  const LocalStepSettings settings;
  const CosmoothingResult without = cosmooth_amortised(f.model, f.encoder, f.data, 0, settings);
  f.model.history = f.history;
  const CosmoothingResult with = cosmooth_amortised(f.model, f.encoder, f.data, 0, settings);
  const std::vector<TrialCounts> test = make_trial_counts(f.data, f.data.split->test_trials);
  const HistoryCoupling heldout = f.history.select_rows(f.data.split->heldout_neurons);
  ASSERT_EQ(with.eta_mean.size(), test.size());
  for (std::size_t k = 0; k < test.size(); ++k) {
    // Without refinement the latents are the encoder's, the same with or without history.
    EXPECT_EQ(with.eta_variance[k], without.eta_variance[k]);
    const Eigen::MatrixXd offset = (heldout.B * f.history.basis.features(test[k].counts)).eval();
    ASSERT_GT(offset.cwiseAbs().maxCoeff(), 0.1);
    EXPECT_LT((with.eta_mean[k] - without.eta_mean[k] - offset).cwiseAbs().maxCoeff(), 1e-12)
        << "test trial " << k;
  }
  EXPECT_NE(with.bits_per_spike, without.bits_per_spike);
}

// encode_latents' refinement (--refine 1: one CVI step from the encoder's sites) works on the
// held-in rows with eta = C z + d + B f_t: its ELBO is that of the same step taken with those
// offsets directly, not without. (--refine 0 computes q's moments only, no ELBO.)
TEST(AmortisedEvaluation, EncodedLatentsAreScoredWithTheHeldInOffsets) {
  Fixture f = fixture();
  f.model.history = f.history;
  const std::vector<int> heldin = f.data.split->heldin_neurons();
  const std::vector<TrialCounts> test = make_trial_counts(f.data, f.data.split->test_trials);
  const std::vector<GaussMarkovState> states =
      encode_latents(f.model, f.encoder, test, heldin, 1, LocalStepSettings{});
  const InferenceModel rows = f.model.rows(heldin);
  const ReadoutKernels kernels(rows.readout);
  const std::unique_ptr<ObservationModel> observation = rows.observation();
  const std::unique_ptr<FamilyEvaluator> family = make_family_evaluator(FamilyKind::kGaussMarkov);
  DeterministicEstimator estimator;
  for (std::size_t k = 0; k < test.size(); ++k) {
    const Eigen::ArrayXXd counts =
        make_trial_counts(f.data, {f.data.split->test_trials[k]}, heldin).front().counts;
    const Eigen::ArrayXXd offset = rows.history.offset(f.history.basis.features(test[k].counts));
    const PriorBlocks prior = rows.prior.blocks(static_cast<int>(counts.cols()));
    const double base = observation->log_base_measure(counts);
    LocalStepSettings one_step;
    one_step.max_iterations = 1;
    const auto refined = [&](const ModalityView& view) {
      GaussMarkovState state;
      const std::vector<ModalityView> views{view};
      const LocalProblem problem{prior, views, *family, estimator};
      problem.evaluate(f.encoder.encode(test[k].counts), state);
      cvi_local_step(problem, state, one_step);
      return state;
    };
    const GaussMarkovState with =
        refined(ModalityView{observation.get(), &kernels, &counts, base, nullptr, &offset});
    const GaussMarkovState without =
        refined(ModalityView{observation.get(), &kernels, &counts, base});
    EXPECT_NEAR(states[k].elbo, with.elbo, 1e-10 * std::abs(with.elbo)) << "test trial " << k;
    EXPECT_GT(std::abs(with.elbo - without.elbo), 1e-3) << "test trial " << k;
  }
}

}  // namespace
}  // namespace spikevi
