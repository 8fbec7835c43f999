#pragma once
// The files of `spikevi evaluate` and `spikevi decode` (docs/output-files.md#evaluation-file,
// #decode-file), beside the fit file's layout (fit_file.hpp). Per-trial arrays are written
// [test_trials, bins, rows] row-major, in /split order, NaN in the padding bins.
#include <Eigen/Dense>
#include <map>
#include <string>
#include <vector>

#include "spikevi/evaluation/decoding.hpp"
#include "spikevi/evaluation/predictive_coverage.hpp"

namespace spikevi {

// evaluate: co-smoothing of the fit and of the baseline on the test trials.
struct EvaluationRecord {
  int padded_bins = 0;
  std::vector<Eigen::MatrixXd> rates;  // per test trial: held-out neurons x T_k
  double bits_per_spike = 0.0;
  double truth_parameters_bits_per_spike = 0.0;  // NaN without /truth
  double true_rates_bits_per_spike = 0.0;        // NaN without /truth/rates
  // The smoothing baselines: /baseline (GLM on the smoothed counts) and /baseline_log (on their
  // log, the Neural Latents Benchmark's), each with rates, score, kernel and method.
  struct Baseline {
    std::string group;  // "/baseline" or "/baseline_log"
    std::string method;
    std::vector<Eigen::MatrixXd> rates;  // per test trial: held-out neurons x T_k
    double bits_per_spike = 0.0;
    double kernel_sd_bins = 0.0;
  };
  std::vector<Baseline> baselines;
  std::string stronger_baseline;  // the group of the higher-scoring one
  PredictiveCoverage coverage;    // of the held-out neurons' test counts
  // Of each Gaussian modality's test values, predicted from the test trials' spikes alone.
  struct ModalityCoverage {
    std::string name;  // NAME of /continuous/NAME
    PredictiveCoverage coverage;
  };
  std::vector<ModalityCoverage> continuous_coverage;
  std::map<std::string, std::string> provenance;
};
void write_evaluation(const std::string& path, const EvaluationRecord& record);

// decode: the posterior-predictive of a Gaussian modality on the test trials.
struct DecodingRecord {
  std::string target;       // the modality NAME of /continuous/NAME
  double level = 0.95;      // coverage of the central interval
  std::vector<int> trials;  // the test trials, file indices
  int padded_bins = 0;
  DecodedModality decoded;  // per trial: channels x T_k
  DecodingScores scores;
  double oracle_r_squared = 0.0;  // NaN without /truth
  // The lagged ridge baseline (evaluation/lagged_ridge.hpp) on the same test values.
  double ridge_r_squared = 0.0;
  double ridge_penalty = 0.0;
  int ridge_lags = 0;
  // Which readout of the target predicted it (decode --readout-from) and that readout's
  // noise variances R_j.
  std::string readout_from;
  Eigen::VectorXd noise_variances;
  std::map<std::string, std::string> provenance;
};
void write_decoding(const std::string& path, const DecodingRecord& record);

// Per-trial rows x T_k matrices as one [trials, bins, rows] row-major array, NaN-padded to
// `bins`.
std::vector<double> padded_per_trial(const std::vector<Eigen::MatrixXd>& per_trial, int bins);

}  // namespace spikevi
