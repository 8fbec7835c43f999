#include "spikevi/evaluation.hpp"

#include <algorithm>

#include "spikevi/cosmoothing.hpp"
#include "spikevi/error.hpp"

namespace spikevi {
namespace {

const Split& require_split(const Dataset& data) {
  if (!data.split || data.split->test_trials.empty() || data.split->heldout_neurons.empty())
    throw InputError(data.path +
                     ": /split/test_trials and /split/heldout_neurons are needed "
                     "for co-smoothing");
  return *data.split;
}

}  // namespace

std::vector<Eigen::MatrixXd> predicted_rates(const Readout& readout,
                                             const std::vector<GaussianMoments>& latents) {
  const ReadoutKernels kernels(readout);
  std::vector<Eigen::MatrixXd> rates;
  rates.reserve(latents.size());
  Eigen::ArrayXXd mu, s2;
  for (const GaussianMoments& q : latents) {
    kernels.eta_moments(q, mu, s2);
    rates.push_back((mu + 0.5 * s2).exp().matrix());
  }
  return rates;
}

std::vector<Eigen::MatrixXd> heldout_counts(const Dataset& data) {
  const Split& split = require_split(data);
  return select_trials_and_rows(data.counts, data.first_trial, split.test_trials,
                                split.heldout_neurons);
}

CosmoothingResult cosmooth(const LatentPrior& prior, const Readout& readout, const Dataset& data,
                           const LocalStepSettings& settings) {
  const Split& split = require_split(data);
  const std::vector<int> heldin = split.heldin_neurons();
  const std::vector<TrialCounts> test = make_trial_counts(data, split.test_trials, heldin);
  const std::vector<GaussMarkovState> states =
      infer_latents(prior, readout.select_rows(heldin), test, settings);

  std::vector<GaussianMoments> latents;
  for (const GaussMarkovState& state : states) latents.push_back(state.moments);
  CosmoothingResult result;
  result.rates = predicted_rates(readout.select_rows(split.heldout_neurons), latents);
  result.bits_per_spike = bits_per_spike(result.rates, heldout_counts(data));
  return result;
}

LatentPrior truth_prior(const Truth& truth) {
  return LatentPrior{DynamicsExpectations::point(truth.A, truth.b, truth.Q), truth.mu0,
                     truth.Sigma0};
}

Readout truth_readout(const Truth& truth) {
  Readout readout;
  readout.C = truth.C;
  readout.d = truth.d;
  const Eigen::Index side = truth.C.cols() + 1;
  readout.precision = Eigen::MatrixXd::Identity(side, side).replicate(1, truth.C.rows());
  return readout;
}

}  // namespace spikevi
