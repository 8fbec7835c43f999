#include "spikevi/inference/latent_inference.hpp"

#include <algorithm>

#include "spikevi/parallel/threads.hpp"

namespace spikevi {

LatentPrior LatentPrior::from(const GlobalState& globals) {
  return LatentPrior{globals.dynamics.expectations(), globals.mu0, globals.Sigma0};
}

LatentPrior LatentPrior::point_estimate(const GlobalState& globals) {
  const MatrixNormalInverseWishart& q = globals.dynamics;
  return LatentPrior{DynamicsExpectations::point(q.mean_A(), q.mean_b(), q.mean_Q(), q.mean_B()),
                     globals.mu0, globals.Sigma0};
}

PriorBlocks LatentPrior::blocks(int bins, const Eigen::MatrixXd* inputs) const {
  return prior_blocks(dynamics, mu0, Sigma0, bins, inputs);
}

Eigen::ArrayXXd history_offset(const HistoryCoupling& history, const TrialCounts& trial) {
  if (!history.active()) return {};
  if (trial.history_features.rows() > 0) return history.offset(trial.history_features);
  return history.offset(history.basis.features(trial.counts));
}

InferenceModel InferenceModel::of(const GlobalState& globals, const ModelSettings& model) {
  return InferenceModel{LatentPrior::from(globals), globals.spikes, model.deterministic(),
                        globals.spike_parameters,   globals.mlp,    globals.history};
}

InferenceModel InferenceModel::rows(const std::vector<int>& keep) const {
  return InferenceModel{prior,
                        readout.select_rows(keep),
                        model,
                        row_parameters.select_rows(keep),
                        mlp.active() ? mlp.select_rows(keep) : mlp,
                        history.active() ? history.select_rows(keep) : history};
}

std::unique_ptr<MlpKernels> InferenceModel::mlp_kernels(const GaussianCubature& cubature) const {
  if (!mlp.active()) return nullptr;
  return std::make_unique<MlpKernels>(readout, mlp, cubature);
}

std::unique_ptr<ObservationModel> InferenceModel::observation() const {
  return model.deterministic().spike_observation(row_parameters);
}

std::vector<GaussMarkovState> infer_latents(const InferenceModel& inference,
                                            const std::vector<TrialCounts>& trials,
                                            const LocalStepSettings& settings) {
  const ReadoutKernels kernels(inference.readout);
  const GaussianCubature cubature = inference.model.cubature(inference.readout.dim());
  const std::unique_ptr<MlpKernels> mlp = inference.mlp_kernels(cubature);
  const std::unique_ptr<ObservationModel> model = inference.observation();
  const int threads =
      std::clamp(resolve_thread_count(settings.threads), 1, std::max<int>(trials.size(), 1));
  std::vector<std::unique_ptr<FamilyEvaluator>> evaluators;
  std::vector<DeterministicEstimator> estimators(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i)
    evaluators.push_back(make_family_evaluator(inference.model.family));
  std::vector<GaussMarkovState> states(trials.size());
  const int dim = static_cast<int>(inference.prior.mu0.size());
  // Each trial writes only its own state (threads.hpp).
  for_each_index(trials.size(), threads, [&](std::size_t k, int thread) {
    const int bins = static_cast<int>(trials[k].counts.cols());
    const PriorBlocks prior = inference.prior.blocks(bins, trials[k].inputs_or_null());
    const Eigen::ArrayXXd offset = history_offset(inference.history, trials[k]);
    const std::vector<ModalityView> modalities{ModalityView{
        model.get(), &kernels, &trials[k].counts, model->log_base_measure(trials[k].counts),
        mlp.get(), inference.history.active() ? &offset : nullptr}};
    const LocalProblem problem{prior, modalities, *evaluators[static_cast<std::size_t>(thread)],
                               estimators[static_cast<std::size_t>(thread)]};
    problem.evaluate(Sites::zero(dim, bins), states[k]);
    cvi_local_step(problem, states[k], settings);
  });
  return states;
}

}  // namespace spikevi
