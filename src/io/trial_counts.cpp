#include "spikevi/io/trial_counts.hpp"

#include "spikevi/error.hpp"
#include "spikevi/model/observation_model.hpp"

namespace spikevi {

std::vector<TrialCounts> make_trial_counts(const Dataset& data,
                                           const std::vector<int>& trial_indices,
                                           const std::vector<int>& rows, int first_position,
                                           const std::vector<std::string>& continuous) {
  for (const std::string& name : continuous)
    if (!data.continuous.count(name))
      throw InputError(data.path + ": /continuous/" + name + " does not exist");
  const PoissonObservation model;
  std::vector<TrialCounts> trials;
  trials.reserve(trial_indices.size());
  for (int index : trial_indices) {
    const Eigen::MatrixXd& all_rows = data.trial_counts(index);
    TrialCounts trial;
    trial.index = index;
    trial.position = first_position + static_cast<int>(trials.size());
    if (rows.empty()) {
      trial.counts = all_rows.array();
    } else {
      trial.counts.resize(static_cast<Eigen::Index>(rows.size()), all_rows.cols());
      for (std::size_t r = 0; r < rows.size(); ++r)
        trial.counts.row(static_cast<Eigen::Index>(r)) = all_rows.row(rows[r]).array();
    }
    trial.log_base_measure = model.log_base_measure(trial.counts);
    for (const std::string& name : continuous)
      trial.continuous.push_back(data.continuous.at(name).at(index - data.first_trial).array());
    if (!data.inputs.empty()) trial.inputs = data.inputs.at(index - data.first_trial);
    trials.push_back(std::move(trial));
  }
  return trials;
}

}  // namespace spikevi
