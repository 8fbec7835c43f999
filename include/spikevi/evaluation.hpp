#pragma once
// Co-smoothing evaluation (DATA_FORMAT.md "Co-smoothing score", DESIGN.md §7): infer the
// test trials' latents from the held-in neurons with the globals fixed, predict the held-out
// neurons' expected counts r = exp(c m + d + c'S c / 2), score in bits per spike.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/dataset.hpp"
#include "spikevi/gauss_markov.hpp"
#include "spikevi/variational_fit.hpp"

namespace spikevi {

struct CosmoothingResult {
  std::vector<Eigen::MatrixXd> rates;  // per test trial: heldout x T_k expected counts
  double bits_per_spike = 0.0;
};

// Expected counts E_q[exp(eta)] of every row of `readout` under each trial's q(z).
std::vector<Eigen::MatrixXd> predicted_rates(const Readout& readout,
                                             const std::vector<GaussianMoments>& latents);

// The co-smoothing of a model given by (prior, readout over all neurons) on the data set's
// split; requires /split with test trials and held-out neurons.
CosmoothingResult cosmooth(const LatentPrior& prior, const Readout& readout, const Dataset& data,
                           const LocalStepSettings& settings);

// Held-out counts of the test trials, heldout x T_k each (what the scores compare against).
std::vector<Eigen::MatrixXd> heldout_counts(const Dataset& data);

// The true parameters of a simulated data set as a model (dynamics at point values).
LatentPrior truth_prior(const Truth& truth);
Readout truth_readout(const Truth& truth);

}  // namespace spikevi
