#pragma once
// The shared (global) variational parameters and their priors (DESIGN.md §3).
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "spikevi/model/continuous_readout.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/history.hpp"
#include "spikevi/model/mlp_readout.hpp"
#include "spikevi/model/readout.hpp"
#include "spikevi/model/row_parameters.hpp"

namespace spikevi {

// Hyper-parameters of the weak priors (defaults as in the prototype's report).
struct PriorSettings {
  double readout_weight_precision = 1.0;   // pc: c_n ~ N(0, 1/pc I)
  double readout_offset_precision = 0.01;  // pd: d_n ~ N(0, 1/pd)
  double dynamics_column_variance = 10.0;  // v0: A~ | Q ~ MN(0, Q, v0 I)
  double process_noise = 0.1;              // q0: E[Q] = q0 I under the prior, nu0 = D + 3
  NoisePrior noise;                        // Gaussian modalities: R_j ~ inverse-gamma(1, 0.01)
  // The spike model's row parameters (e.g. the negative binomial's shapes) take their priors
  // from the model (SpikeModel::row_parameters).
};

struct GlobalState {
  MatrixNormalInverseWishart dynamics;
  MatrixNormalInverseWishart dynamics_prior;
  Eigen::VectorXd mu0;     // D, point value
  Eigen::MatrixXd Sigma0;  // D x D, point value
  Readout spikes;          // point values with natural-gradient precisions
  ReadoutPrior spikes_prior;
  // The spike model's per-neuron parameters beyond the readout rows (row_parameters.hpp), e.g.
  // the negative binomial's shapes; empty for Poisson and Bernoulli.
  RowParameters spike_parameters;
  // --readout mlp: the hidden layer (A, W, b) of the spike readout, point values with the prior
  // N(0, 1/mlp_prior_precision) per entry; empty (H = 0) for the linear readout.
  MlpReadout mlp;
  double mlp_prior_precision = 1.0;
  // --history K: the history terms' basis and weights b_n (history.hpp); inactive (N x 0) else.
  HistoryCoupling history;
  std::vector<ContinuousReadout> continuous;  // Gaussian modalities, in the fit's order
  ReadoutPrior continuous_prior;              // of every continuous row (w_j, e_j)
  NoisePrior noise_prior;

  int dim() const { return static_cast<int>(mu0.size()); }
  // The global terms of the objective (DESIGN.md §3): sum log p0 of every point value (spike
  // and continuous readout rows, row parameters, noise variances) - KL(q(A~,Q) || p(A~,Q)).
  double global_terms() const;
  // The Laplace correction sum over point-valued blocks (readout rows, continuous rows and
  // noise variances, row parameters) of (dim/2) log 2pi - log|P|/2, added to the ELBO to give
  // `evidence_laplace`.
  double laplace_correction() const;
};

// What a model holds beyond the Poisson spike readout.
struct ModelLayout {
  std::vector<RowParameterSpec> row_parameters;  // the spike model's (SpikeModel::row_parameters)
  std::vector<std::string> continuous_names;     // Gaussian modalities
  std::vector<int> continuous_channels;          // their channel counts
  int inputs = 0;                                // U: known inputs of the dynamics
  bool adam = false;           // --optimizer adam: the optimiser keeps Adam moments (optimizer.hpp)
  int hidden = 0;              // --readout mlp: H hidden units (0: the linear readout)
  std::uint64_t mlp_seed = 1;  // their random start (MlpReadout::initial)
  double mlp_prior_precision = 1.0;  // their prior
  // --history K: the basis of the history terms (features() = 0 without) and lambda.
  HistoryBasis history;
  double history_prior_precision = 1.0;
};

// Priors for a model of `dim` latents and `neurons` spike rows (row parameters start at their
// prior median, continuous readouts at their prior).
GlobalState make_prior_state(int dim, int neurons, const PriorSettings& settings,
                             const ModelLayout& layout = {});

}  // namespace spikevi
