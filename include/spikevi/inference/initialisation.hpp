#pragma once
// Starting point of a fit: PCA of smoothed log counts gives initial latent means, then one
// global step from q(z) = N(PCA latents, v I) (a Poisson GLM for the readouts).
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/driver/variational_fit.hpp"

namespace spikevi {

// Initial q(z) per local trial: the top `dim` principal components of log(x + 0.5), smoothed
// in time, pooled over all trials of all ranks, each scaled to unit variance; covariance
// `latent_variance` I, zero lag covariance. Identical on any number of ranks.
std::vector<GaussianMoments> pca_latents(const std::vector<TrialCounts>& trials, int dim,
                                         const InitialisationSettings& settings,
                                         Communicator& comm);

}  // namespace spikevi
