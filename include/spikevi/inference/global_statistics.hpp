#pragma once
// Everything the global step needs from the trials of a (mini)batch, as one flat buffer of
// doubles: the thing ranks allreduce once per iteration (DESIGN.md §3-4).
#include <Eigen/Dense>
#include <span>
#include <vector>

#include "spikevi/model/continuous_readout.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/model/history.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

// A trial's history terms for GlobalStatistics::add_trial: its offset B f_t (N x T), added to
// eta's mean for every spike statistic, and its features f_t (F x T) for the history
// statistics; both null without history terms.
struct HistoryTerms {
  const Eigen::ArrayXXd* offset = nullptr;
  const Eigen::MatrixXd* features = nullptr;
};

struct GlobalStatistics {
  TransitionStatistics transitions;
  Eigen::VectorXd initial_mean_sum;           // sum_k E[z_k1]
  Eigen::MatrixXd initial_second_moment_sum;  // sum_k E[z_k1 z_k1']
  double trials = 0.0;                        // number of trials summed
  ReadoutStatistics spikes;
  // With row parameters (the negative binomial's shapes; else rows x 0): per row and parameter,
  // d/dtheta and d2/dtheta2 of sum E_q log p(x_n | theta).
  RowParameterStatistics row_parameters;
  // --readout mlp: the gradient of sum E_q log p(x | eta) in the MLP weights (A, W, b); the rows
  // (c_n, d_n) keep `spikes`, taken by the cubature. Zero-sized for the linear readout.
  MlpGradient mlp;
  // --history K: the gradient and curvature of the history weights b_n (history.hpp), taken at
  // eta's mean with its offset; zero-sized (F = 0) without history terms.
  HistoryStatistics history;
  std::vector<RegressionStatistics> continuous;  // one per Gaussian modality
  double elbo_sum = 0.0;                         // sum_k ELBO_k
  double spike_count = 0.0;
  // Full batch only: per row, E_q[log p(x_n | w_new, z)] under each trial's posterior from the
  // previous iteration, q_{i-1}, at the readout w_new proposed from it: with
  // spikes.log_likelihood of the previous iteration it decides whether the proposed readout
  // step raised the objective (DESIGN.md §3, "backtrack the step"). Zero otherwise.
  Eigen::VectorXd candidate_log_likelihood;
  double local_iterations = 0.0;    // sum over trials of the CVI steps taken
  double unconverged_trials = 0.0;  // trials whose local step hit its iteration limit
  double failed_trials = 0.0;       // trials whose local step threw (their statistics are absent)
  double restarted_trials = 0.0;    // trials whose warm start was invalid (began from the prior)
  double stop_requests = 0.0;       // ranks that asked to stop after this iteration

  static GlobalStatistics zero(int dim, int neurons, const ModelLayout& layout = {});
  void clear();  // every field back to zero, keeping the sizes (no allocation)
  // Adds one trial's posterior (and its counts, for the readout statistics and, with row
  // parameters, `model`'s row_parameter_derivatives).
  // `inputs`: the trial's known inputs (U x T; nullptr without inputs). With `mlp` (the MLP
  // readout's kernels, at `readout`), the spike statistics come from its cubature.
  // `history` (--history K; not with `mlp`): see HistoryTerms.
  void add_trial(const GaussianMoments& q, const Readout& readout, const ObservationModel& model,
                 const Eigen::ArrayXXd& counts, double elbo,
                 const Eigen::MatrixXd* inputs = nullptr, const MlpKernels* mlp = nullptr,
                 HistoryTerms history = {});
  // Adds one trial's values of Gaussian modality m (channels x T, NaN = missing).
  void add_continuous(std::size_t m, const Eigen::ArrayXXd& values, const GaussianMoments& q);
  std::vector<double> pack() const;
  void pack_into(std::vector<double>& buffer) const;  // as pack(), reusing the buffer
  void unpack(std::span<const double> buffer);        // the layout of pack() for the same sizes
};

}  // namespace spikevi
