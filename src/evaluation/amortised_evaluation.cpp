#include "spikevi/evaluation/amortised_evaluation.hpp"

#include <algorithm>
#include <utility>

#include "spikevi/error.hpp"
#include "spikevi/inference/amortised_inference.hpp"
#include "spikevi/inference/estimator.hpp"

namespace spikevi {

std::vector<GaussMarkovState> encode_latents(const InferenceModel& model,
                                             const EncoderRecord& encoder,
                                             const std::vector<TrialCounts>& all_neuron_trials,
                                             const std::vector<int>& likelihood_rows, int refine,
                                             const LocalStepSettings& settings) {
  const InferenceModel rows = model.rows(likelihood_rows);
  const ReadoutKernels kernels(rows.readout);
  const std::unique_ptr<ObservationModel> observation = rows.observation();
  const std::unique_ptr<FamilyEvaluator> family = make_family_evaluator(FamilyKind::kGaussMarkov);
  DeterministicEstimator estimator;
  LocalStepSettings refinement = settings;
  refinement.max_iterations = refine;
  std::vector<GaussMarkovState> states(all_neuron_trials.size());
  for (std::size_t k = 0; k < all_neuron_trials.size(); ++k) {
    const TrialCounts& trial = all_neuron_trials[k];
    Eigen::ArrayXXd counts(static_cast<Eigen::Index>(likelihood_rows.size()), trial.counts.cols());
    for (std::size_t r = 0; r < likelihood_rows.size(); ++r)
      counts.row(static_cast<Eigen::Index>(r)) = trial.counts.row(likelihood_rows[r]);
    const PriorBlocks prior =
        rows.prior.blocks(static_cast<int>(counts.cols()), trial.inputs_or_null());
    Sites sites = encoder.encode(trial.counts);
    if (refine == 0) {
      // The encoder's q alone: its moments, without the likelihood (no ELBO or targets).
      posterior_moments(prior, sites, states[k].moments);
      states[k].sites = std::move(sites);
      continue;
    }
    const Eigen::ArrayXXd offset = history_offset(rows.history, trial);  // empty without
    const std::vector<ModalityView> modalities{
        ModalityView{observation.get(), &kernels, &counts, observation->log_base_measure(counts),
                     nullptr, rows.history.active() ? &offset : nullptr}};
    const LocalProblem problem{prior, modalities, *family, estimator};
    problem.evaluate(sites, states[k]);
    cvi_local_step(problem, states[k], refinement);
  }
  return states;
}

CosmoothingResult cosmooth_amortised(const InferenceModel& model, const EncoderRecord& encoder,
                                     const Dataset& data, int refine,
                                     const LocalStepSettings& settings) {
  if (!data.split) throw InputError("co-smoothing needs /split");
  const Split& split = *data.split;
  for (int n : encoder.input_neurons)
    if (std::binary_search(split.heldout_neurons.begin(), split.heldout_neurons.end(), n))
      throw InputError("the fit's encoder reads neuron " + std::to_string(n) +
                       ", a held-out neuron of this split: it was trained on another split");
  std::vector<TrialCounts> test = make_trial_counts(data, split.test_trials);
  const std::vector<Eigen::MatrixXd> features = test_history_features(model.history, data);
  for (std::size_t k = 0; k < features.size(); ++k) test[k].history_features = features[k];
  const std::vector<GaussMarkovState> states =
      encode_latents(model, encoder, test, split.heldin_neurons(), refine, settings);
  std::vector<GaussianMoments> latents;
  for (const GaussMarkovState& state : states) latents.push_back(state.moments);
  const InferenceModel heldout = model.rows(split.heldout_neurons);
  const std::unique_ptr<ObservationModel> observation = heldout.observation();
  const ReadoutKernels kernels(heldout.readout);
  CosmoothingResult result;
  Eigen::ArrayXXd mean, variance, rates;
  for (std::size_t k = 0; k < latents.size(); ++k) {
    kernels.eta_moments(latents[k], mean, variance);
    if (heldout.history.active()) mean += heldout.history.offset(features[k]);
    observation->predicted_mean(mean, variance, rates);
    result.rates.push_back(rates.matrix());
    result.eta_mean.push_back(mean.matrix());
    result.eta_variance.push_back(variance.matrix());
  }
  result.bits_per_spike = bits_per_spike(result.rates, heldout_counts(data));
  return result;
}

}  // namespace spikevi
