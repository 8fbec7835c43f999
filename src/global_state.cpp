#include "spikevi/global_state.hpp"

#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {

double GlobalState::global_terms() const {
  return spikes_prior.log_density(spikes) - dynamics.kl_divergence(dynamics_prior);
}

double GlobalState::laplace_correction() const {
  const int block = dim() + 1;
  const double half_log_2pi = 0.5 * std::log(2.0 * std::numbers::pi);
  double total = 0.0;
  for (int n = 0; n < spikes.rows(); ++n) {
    const Eigen::MatrixXd P =
        spikes.precision.middleCols(static_cast<Eigen::Index>(n) * block, block);
    const Eigen::LLT<Eigen::MatrixXd> llt(P);
    if (llt.info() != Eigen::Success)
      throw NumericalError("evidence_laplace: the precision of readout row " + std::to_string(n) +
                           " is not positive definite");
    const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    total += block * half_log_2pi - 0.5 * log_det;
  }
  return total;
}

GlobalState make_prior_state(int dim, int neurons, const PriorSettings& settings) {
  GlobalState state;
  state.dynamics_prior = MatrixNormalInverseWishart::weak_prior(
      dim, settings.dynamics_column_variance, settings.process_noise);
  state.dynamics = state.dynamics_prior;
  state.mu0 = Eigen::VectorXd::Zero(dim);
  state.Sigma0 = Eigen::MatrixXd::Identity(dim, dim);
  state.spikes_prior =
      ReadoutPrior::weak(dim, settings.readout_weight_precision, settings.readout_offset_precision);
  state.spikes.C = Eigen::MatrixXd::Zero(neurons, dim);
  state.spikes.d = Eigen::VectorXd::Zero(neurons);
  state.spikes.precision = state.spikes_prior.precision.replicate(1, neurons);
  return state;
}

}  // namespace spikevi
