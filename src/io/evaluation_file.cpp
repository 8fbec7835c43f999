#include "spikevi/io/evaluation_file.hpp"

#include <cstdint>
#include <limits>

#include "spikevi/io/hdf5_file.hpp"

namespace spikevi {
namespace {

Hdf5File::Dims per_trial_dims(const std::vector<Eigen::MatrixXd>& per_trial, int bins) {
  const std::size_t rows =
      per_trial.empty() ? 0 : static_cast<std::size_t>(per_trial.front().rows());
  return {per_trial.size(), static_cast<std::size_t>(bins), rows};
}

void write_provenance(Hdf5File& file, const std::map<std::string, std::string>& provenance) {
  for (const auto& [key, value] : provenance) file.write_string_attribute("/", key, value);
}

// The figures of one PredictiveCoverage under `group`: per_rows names the [rows, levels]
// dataset (per_neuron, per_channel), scored the attribute counting what was scored.
void write_coverage(Hdf5File& file, const std::string& group, const PredictiveCoverage& c,
                    const std::string& per_rows, const std::string& scored) {
  const auto levels = static_cast<std::size_t>(c.levels.size());
  file.write_doubles(group + "/levels", c.levels, {levels});
  file.write_doubles(group + "/pooled", c.pooled, {levels});
  // per_neuron is rows x levels, column-major: written row by row as [rows, levels].
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> per_row =
      c.per_neuron;
  file.write_doubles(group + "/" + per_rows,
                     std::vector<double>(per_row.data(), per_row.data() + per_row.size()),
                     {static_cast<std::size_t>(per_row.rows()), levels});
  file.write_doubles(group + "/curve_levels", c.curve_levels, {c.curve_levels.size()});
  file.write_doubles(group + "/curve_coverage", c.curve_coverage, {c.curve_coverage.size()});
  file.write_double_attribute(group, scored, c.scored);
}

}  // namespace

void write_evaluation(const std::string& path, const EvaluationRecord& r) {
  Hdf5File file = Hdf5File::create(path);
  const Hdf5File::Dims dims = per_trial_dims(r.rates, r.padded_bins);
  file.write_doubles("/cosmoothing/rates", padded_per_trial(r.rates, r.padded_bins), dims);
  file.write_double_attribute("/cosmoothing", "bits_per_spike", r.bits_per_spike);
  file.write_double_attribute("/cosmoothing", "truth_parameters_bits_per_spike",
                              r.truth_parameters_bits_per_spike);
  file.write_double_attribute("/cosmoothing", "true_rates_bits_per_spike",
                              r.true_rates_bits_per_spike);
  for (const EvaluationRecord::Baseline& baseline : r.baselines) {
    file.write_doubles(baseline.group + "/rates", padded_per_trial(baseline.rates, r.padded_bins),
                       dims);
    file.write_double_attribute(baseline.group, "bits_per_spike", baseline.bits_per_spike);
    file.write_double_attribute(baseline.group, "kernel_sd_bins", baseline.kernel_sd_bins);
    file.write_string_attribute(baseline.group, "method", baseline.method);
    if (baseline.group == r.stronger_baseline)
      file.write_double_attribute("/cosmoothing", "margin_over_stronger_baseline",
                                  r.bits_per_spike - baseline.bits_per_spike);
  }
  if (!r.stronger_baseline.empty())
    file.write_string_attribute("/cosmoothing", "stronger_baseline", r.stronger_baseline);
  write_coverage(file, "/coverage", r.coverage, "per_neuron", "scored_counts");
  for (const EvaluationRecord::ModalityCoverage& modality : r.continuous_coverage)
    write_coverage(file, "/coverage/continuous/" + modality.name, modality.coverage, "per_channel",
                   "scored_values");
  write_provenance(file, r.provenance);
  file.close();
}

void write_decoding(const std::string& path, const DecodingRecord& r) {
  Hdf5File file = Hdf5File::create(path);
  const Hdf5File::Dims dims = per_trial_dims(r.decoded.mean, r.padded_bins);
  file.write_doubles("/decoded/mean", padded_per_trial(r.decoded.mean, r.padded_bins), dims);
  file.write_doubles("/decoded/lower", padded_per_trial(r.decoded.lower, r.padded_bins), dims);
  file.write_doubles("/decoded/upper", padded_per_trial(r.decoded.upper, r.padded_bins), dims);
  std::vector<std::int64_t> trial_indices(r.trials.begin(), r.trials.end());
  file.write_int64("/decoded/trials", trial_indices, {r.trials.size()});
  file.write_string_attribute("/decoded", "target", r.target);
  file.write_double_attribute("/decoded", "level", r.level);
  file.write_double_attribute("/decoded", "r_squared", r.scores.r_squared);
  file.write_double_attribute("/decoded", "coverage", r.scores.coverage);
  file.write_double_attribute("/decoded", "oracle_r_squared", r.oracle_r_squared);
  file.write_double_attribute("/decoded", "ridge_r_squared", r.ridge_r_squared);
  file.write_double_attribute("/decoded", "ridge_penalty", r.ridge_penalty);
  file.write_double_attribute("/decoded", "ridge_lags", r.ridge_lags);
  file.write_string_attribute("/decoded", "readout_from", r.readout_from);
  file.write_doubles("/decoded/noise_variances",
                     {r.noise_variances.data(), static_cast<std::size_t>(r.noise_variances.size())},
                     {static_cast<std::size_t>(r.noise_variances.size())});
  write_provenance(file, r.provenance);
  file.close();
}

std::vector<double> padded_per_trial(const std::vector<Eigen::MatrixXd>& per_trial, int bins) {
  const std::size_t rows =
      per_trial.empty() ? 0 : static_cast<std::size_t>(per_trial.front().rows());
  std::vector<double> out(per_trial.size() * static_cast<std::size_t>(bins) * rows,
                          std::numeric_limits<double>::quiet_NaN());
  for (std::size_t k = 0; k < per_trial.size(); ++k)
    // A rows x T column-major matrix is a [T, rows] row-major block.
    std::copy_n(per_trial[k].data(), per_trial[k].size(),
                out.begin() + static_cast<std::ptrdiff_t>(k * bins * rows));
  return out;
}

}  // namespace spikevi
