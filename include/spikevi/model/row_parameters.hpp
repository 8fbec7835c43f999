#pragma once
// Per-neuron parameters that a spike model carries beyond its readout row w_n = (c_n, d_n), such
// as the negative binomial's shapes r_n (DESIGN.md §1, §3): point values with a Gaussian prior on
// an unconstrained coordinate u (log theta, or logit theta for a probability), updated by a damped
// Newton step on u, and reported with the Laplace precision of u. The model names them
// (SpikeModel::row_parameters); everything else — the update, the prior and Laplace terms of the
// objective, the checkpoint and fit-file datasets, the simulation option — is generic.
#include <Eigen/Dense>
#include <string>
#include <vector>

namespace spikevi {

enum class RowTransform { kLog, kLogit };

struct RowParameterSpec {
  // The parameter's name: /globals/NAME and /globals/NAME_log_precision (NAME_logit_precision)
  // in a fit file, /truth/NAME in simulated data, `spikevi simulate --NAME`.
  std::string name;
  std::string description;  // one line for --help, e.g. "negative-binomial shape r of every neuron"
  std::string label;        // for summaries of a fit, e.g. "negative-binomial shapes r_n"
  RowTransform transform = RowTransform::kLog;
  // Prior u ~ N(u(prior_median), prior_sd^2): a weak pull that keeps theta finite where the
  // likelihood is flat in it.
  double prior_median = 10.0;
  double prior_sd = 3.0;
  double lower = 1e-3, upper = 1e6;  // theta is clamped to [lower, upper] after each step
  double simulation_default = 1.0;   // the value `simulate` gives every neuron by default
};

// theta -> u and back; d u / d theta and d2 u / d theta2 as functions of theta.
double to_unconstrained(RowTransform transform, double theta);
double from_unconstrained(RowTransform transform, double u);
std::string transform_name(RowTransform transform);  // "log" or "logit"

// One parameter of every row.
struct RowParameter {
  RowParameterSpec spec;
  Eigen::VectorXd values;     // theta_n
  Eigen::VectorXd precision;  // Laplace precision of u_n: -d2/du2 of the objective at the last step
};

// All of a model's row parameters (empty for Poisson and Bernoulli).
struct RowParameters {
  std::vector<RowParameter> parameters;

  bool empty() const { return parameters.empty(); }
  std::size_t count() const { return parameters.size(); }
  // At the prior median, with the prior precision, for `rows` rows.
  static RowParameters at_prior(const std::vector<RowParameterSpec>& specs, int rows);
  // The values alone, one vector per parameter (what SpikeModel::observation takes).
  std::vector<Eigen::VectorXd> values() const;
  // Rows `keep` only, precisions included.
  RowParameters select_rows(const std::vector<int>& keep) const;
  // sum over parameters and rows of log N(u_n; u(median), sd^2).
  double log_prior() const;
  // sum over parameters and rows of (1/2) log 2pi - (1/2) log precision_n (evidence_laplace).
  double laplace_correction() const;
  // The name of the first parameter with a non-finite value ("" if none).
  std::string non_finite() const;
  // Row n of every parameter (value and precision) from `other`, which has the same layout.
  void copy_row(const RowParameters& other, Eigen::Index n);
};

// Per row and parameter, sums over bins (and trials) of d/dtheta and d2/dtheta2 of E_q log p(x_n):
// the statistics of the row-parameter step, rows x parameters each.
struct RowParameterStatistics {
  Eigen::MatrixXd gradient;
  Eigen::MatrixXd curvature;
};

// One damped Newton step on u = transform(theta) per row and parameter (DESIGN.md §3), with the
// objective scale * sum E log p(x_n | theta) + log p0(u):
//   g_u = scale * dtheta/du * g - (u - u0) / sd^2,
//   c_u = scale * ((dtheta/du)^2 c + d2theta/du2 g) - 1 / sd^2,
// move = -g_u / c_u where c_u < 0, else one unit uphill; |move| <= 1 (one e-fold for log);
// u += rho * row_damping(n) * move, clamped to [u(lower), u(upper)]; precision = max(-c_u, 1/sd^2).
// `moves`, when given (rows x parameters), replaces the Newton moves (Adam's steps), taken
// without the |move| <= 1 limit.
void newton_row_parameter_step(RowParameters& parameters, const RowParameterStatistics& stats,
                               double scale, double rho, const Eigen::VectorXd& row_damping,
                               const Eigen::MatrixXd* moves = nullptr);

// The Euclidean gradient g_u of the objective above with respect to every u, rows x parameters.
Eigen::MatrixXd row_parameter_gradient(const RowParameters& parameters,
                                       const RowParameterStatistics& stats, double scale);

}  // namespace spikevi
