#pragma once
// One trial as the solver sees it: its spike counts, Gaussian modalities and known inputs.
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

struct TrialCounts {
  int index = 0;                  // trial index in the file
  int position = 0;               // position in the list of all fitted trials (all ranks)
  Eigen::ArrayXXd counts;         // neurons x T_k
  double log_base_measure = 0.0;  // sum -log x! (the driver recomputes it for its model)
  // Gaussian modalities, in the order of FitSettings::continuous_names: channels x T_k, NaN =
  // missing.
  std::vector<Eigen::ArrayXXd> continuous;
  Eigen::MatrixXd inputs;  // known inputs /inputs, U x T_k (0 rows without)
  // --history K: the trial's history features (HistoryBasis::features), F x T_k (0 rows without).
  Eigen::MatrixXd history_features;
  // What prior_blocks and the transition statistics take: nullptr without inputs.
  const Eigen::MatrixXd* inputs_or_null() const { return inputs.rows() > 0 ? &inputs : nullptr; }
};

}  // namespace spikevi
