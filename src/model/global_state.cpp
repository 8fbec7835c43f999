#include "spikevi/model/global_state.hpp"

#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::numbers::pi);

// sum over the D+1 blocks of `precision` of (block/2) log 2pi - log|P_n|/2.
double readout_laplace(const Readout& readout, const std::string& what) {
  const int block = readout.dim() + 1;
  double total = 0.0;
  for (int n = 0; n < readout.rows(); ++n) {
    const Eigen::MatrixXd P =
        readout.precision.middleCols(static_cast<Eigen::Index>(n) * block, block);
    const Eigen::LLT<Eigen::MatrixXd> llt(P);
    if (llt.info() != Eigen::Success)
      throw NumericalError("evidence_laplace: the precision of " + what + " row " +
                           std::to_string(n) + " is not positive definite");
    const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    total += block * kHalfLog2Pi - 0.5 * log_det;
  }
  return total;
}

}  // namespace

double GlobalState::global_terms() const {
  double terms = spikes_prior.log_density(spikes) + spike_parameters.log_prior() -
                 dynamics.kl_divergence(dynamics_prior);
  if (mlp.active()) terms += mlp.log_prior(mlp_prior_precision);
  if (history.active()) terms += history.row_log_prior().sum();
  for (const ContinuousReadout& modality : continuous)
    terms += continuous_prior.log_density(modality.readout) +
             noise_prior.log_density(modality.variances);
  return terms;
}

double GlobalState::laplace_correction() const {
  double total = readout_laplace(spikes, "readout");
  for (const ContinuousReadout& modality : continuous) {
    total += readout_laplace(modality.readout, "continuous modality '" + modality.name + "'");
    // R_j at its MAP: the curvature of -(n/2 + a + 1) log R - (RSS/2 + b)/R there is
    // -(n/2 + a + 1)/R^2 (continuous_readout.hpp), a one-dimensional block per channel.
    const Eigen::ArrayXd precision =
        (0.5 * modality.statistics.observed.array() + noise_prior.shape + 1.0) /
        modality.variances.array().square();
    total += (kHalfLog2Pi - 0.5 * precision.log()).sum();
  }
  total += spike_parameters.laplace_correction();
  if (history.active()) total += history.laplace_correction();
  return total;
}

GlobalState make_prior_state(int dim, int neurons, const PriorSettings& settings,
                             const ModelLayout& layout) {
  GlobalState state;
  state.dynamics_prior = MatrixNormalInverseWishart::weak_prior(
      dim, settings.dynamics_column_variance, settings.process_noise, layout.inputs);
  state.dynamics = state.dynamics_prior;
  state.mu0 = Eigen::VectorXd::Zero(dim);
  state.Sigma0 = Eigen::MatrixXd::Identity(dim, dim);
  state.spikes_prior =
      ReadoutPrior::weak(dim, settings.readout_weight_precision, settings.readout_offset_precision);
  state.spikes.C = Eigen::MatrixXd::Zero(neurons, dim);
  state.spikes.d = Eigen::VectorXd::Zero(neurons);
  state.spikes.precision = state.spikes_prior.precision.replicate(1, neurons);
  state.spike_parameters = RowParameters::at_prior(layout.row_parameters, neurons);
  if (layout.hidden > 0)
    state.mlp = MlpReadout::initial(neurons, dim, layout.hidden, layout.mlp_seed);
  state.mlp_prior_precision = layout.mlp_prior_precision;
  if (layout.history.active())
    state.history =
        HistoryCoupling::at_prior(layout.history, neurons, layout.history_prior_precision);
  state.continuous_prior = state.spikes_prior;
  state.noise_prior = settings.noise;
  for (std::size_t m = 0; m < layout.continuous_names.size(); ++m)
    state.continuous.push_back(make_continuous_readout(
        layout.continuous_names[m], layout.continuous_channels.at(m), state.continuous_prior));
  return state;
}

}  // namespace spikevi
