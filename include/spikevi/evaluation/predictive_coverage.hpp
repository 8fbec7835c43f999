#pragma once
// Calibration of posterior-predictive count intervals (DESIGN.md §8 "Diagnostics"): for each
// scored count x of a neuron in a bin, its predictive distribution is the spike model's count
// distribution at eta ~ N(mu, s2) (q(z) pushed through the readout, the readout and row
// parameters at their point values). Counts are discrete, so a central interval cannot have
// exactly its nominal coverage; the randomised probability integral transform (Czado, Gneiting
// and Held 2009, Biometrics 65:1254) u = F(x-) + V (F(x) - F(x-)), V ~ U(0, 1), is uniform for
// a calibrated prediction, and "x inside the central level-a interval" is read as
// |u - 1/2| <= a/2. F is the empirical CDF of `draws` predictive draws per count (u is then the
// randomised rank of x among them), keyed by (seed, kCalibration, trial, neuron, bin), so the
// figures are reproducible.
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "spikevi/model/row_parameters.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {

struct PredictiveCoverageSettings {
  std::vector<double> levels = {0.5, 0.8, 0.95};
  int curve_points = 19;  // the calibration curve: nominal levels 0.05, 0.10, ..., 0.95
  int draws = 200;
  std::uint64_t seed = 1;
};

struct PredictiveCoverage {
  std::vector<double> levels;  // nominal
  std::vector<double> pooled;  // empirical, over every scored count
  Eigen::MatrixXd per_neuron;  // rows (neurons, or a modality's channels) x levels
  std::vector<double> curve_levels, curve_coverage;
  double scored = 0.0;  // number of counts (values) scored
};

// eta_mean[k], eta_variance[k] and counts[k] are rows x T_k for trial k (the rows scored, e.g.
// the held-out neurons); `row_parameters` hold those rows' values; trial_ids[k] keys trial k's
// draws. InputError for inconsistent shapes; ConfigError for a level outside (0, 1) or
// draws < 1.
PredictiveCoverage predictive_coverage(const SpikeModel& model, const RowParameters& row_parameters,
                                       const std::vector<Eigen::MatrixXd>& eta_mean,
                                       const std::vector<Eigen::MatrixXd>& eta_variance,
                                       const std::vector<Eigen::MatrixXd>& counts,
                                       const std::vector<int>& trial_ids,
                                       const PredictiveCoverageSettings& settings = {});

// The same figures for a Gaussian modality, whose predictive distribution per value is
// N(mean, variance) (evaluation/decoding.hpp): its PIT u = Phi((y - mean) / sd) is exact and
// continuous, so no draws and no randomisation are needed (settings.draws and seed are unused).
// mean[k], variance[k] and values[k] are channels x T_k for trial k; NaN values are skipped.
// InputError for inconsistent shapes or no value to score; NumericalError for a variance <= 0.
PredictiveCoverage gaussian_predictive_coverage(const std::vector<Eigen::MatrixXd>& mean,
                                                const std::vector<Eigen::MatrixXd>& variance,
                                                const std::vector<Eigen::MatrixXd>& values,
                                                const PredictiveCoverageSettings& settings = {});

}  // namespace spikevi
