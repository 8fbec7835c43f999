#pragma once
// Starting point of a fit: PCA of smoothed log counts gives initial latent means, then one
// global step from q(z) = N(PCA latents, v I) (a Poisson GLM for the readouts).
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/inference/trial.hpp"

namespace spikevi {

struct InitialisationSettings {
  double smoothing_sd_bins = 2.0;  // Gaussian kernel of the PCA initialisation
  double latent_variance = 0.1;    // q(z) = N(PCA latents, latent_variance I) at the start
  int readout_newton_steps = 20;   // Poisson GLM on the PCA latents
  // The GLM uses at most this many trials, evenly spaced over all K (its statistics scaled by
  // K/count): a start needs no more, and the cost stays bounded on large data sets.
  int readout_trials = 64;
};

// Initial q(z) per local trial: the top `dim` principal components of log(x + 0.5), smoothed
// in time, pooled over all trials of all ranks, each scaled to unit variance; covariance
// `latent_variance` I, zero lag covariance. Identical on any number of ranks.
std::vector<GaussianMoments> pca_latents(const std::vector<TrialCounts>& trials, int dim,
                                         const InitialisationSettings& settings,
                                         Communicator& comm);

}  // namespace spikevi
