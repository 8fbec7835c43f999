#pragma once
// Latents of trials inferred with the globals held fixed (evaluation, decoding, the family
// check): a model to infer with, and the local steps to convergence from zero sites.
#include <memory>
#include <vector>

#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/inference/trial.hpp"
#include "spikevi/inference/variational_family.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/model/readout.hpp"
#include "spikevi/model/row_parameters.hpp"

namespace spikevi {

// The prior over latent paths, with the dynamics either from q(A~, Q) or at point values.
struct LatentPrior {
  DynamicsExpectations dynamics;
  Eigen::VectorXd mu0;
  Eigen::MatrixXd Sigma0;
  // The expectations under q(A~, Q) (DESIGN.md §2 "The prior part").
  static LatentPrior from(const GlobalState& globals);
  // The dynamics at their posterior means, a point-valued model (held-out log-likelihoods).
  static LatentPrior point_estimate(const GlobalState& globals);
  PriorBlocks blocks(int bins, const Eigen::MatrixXd* inputs = nullptr) const;
};

// What latents are inferred with: the prior, the spike readout rows and their model (spike
// model with its row parameters, family, expectations; Monte Carlo is replaced by the model's
// deterministic expectations, so inference draws nothing).
struct InferenceModel {
  LatentPrior prior;
  Readout readout;
  ModelSettings model;
  RowParameters row_parameters;
  MlpReadout mlp;  // --readout mlp: the hidden layer (empty for the linear readout)
  // --history: the history terms of these rows (inactive without); a trial's offset is
  // history.offset(TrialCounts::history_features), which the caller fills from all its rows.
  HistoryCoupling history;

  static InferenceModel of(const GlobalState& globals, const ModelSettings& model);
  // The same model on the rows `keep` only (e.g. the held-in neurons).
  InferenceModel rows(const std::vector<int>& keep) const;
  // The spike likelihood of these rows with the deterministic expectations.
  std::unique_ptr<ObservationModel> observation() const;
  // The MLP readout's kernels over `cubature` (a rule of model.cubature), or null when linear.
  std::unique_ptr<MlpKernels> mlp_kernels(const GaussianCubature& cubature) const;
};

// The trial's history offset B f_t (rows x T; empty without history terms): from its
// history_features, or, when it has none, from the features of its own counts (a trial holding
// all the fit's rows).
Eigen::ArrayXXd history_offset(const HistoryCoupling& history, const TrialCounts& trial);

// q(z) of each trial from its spikes alone (its counts restricted to the model's rows by the
// caller), by local steps to convergence from zero sites in the model's family. With history
// terms, each trial's history_features (HistoryBasis::features of its counts on all rows) give
// the known offsets of eta.
std::vector<GaussMarkovState> infer_latents(const InferenceModel& model,
                                            const std::vector<TrialCounts>& trials,
                                            const LocalStepSettings& settings);

}  // namespace spikevi
