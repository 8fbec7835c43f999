#pragma once
// The latent space is identified only up to an affine map z' = M z + v (DESIGN.md §3).
// Results are reported in one canonical gauge: C' has orthonormal columns ordered by singular
// value, the largest-magnitude entry of each column positive, and the latent mean over the
// training bins zero. Every global and latent moment is transformed consistently.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/global_state.hpp"

namespace spikevi {

struct AffineGauge {
  Eigen::MatrixXd M;  // D x D, invertible
  Eigen::VectorXd v;  // D

  // The canonical gauge of these globals, with the latent mean taken over `latents`.
  static AffineGauge canonical(const Readout& readout, const std::vector<GaussianMoments>& latents);

  // C' = C M^-1, d' = d - C' v, P' = T P T' with T = [[M, v], [0, 1]] (readout precisions);
  // MNIW: M_A~' = M M_A~ T^-1 + v e_last', V' = T^-T V T^-1, Psi' = M Psi M';
  // mu0' = M mu0 + v, Sigma0' = M Sigma0 M'. The dynamics and readout priors are transformed
  // the same way, so the KL term and evidence_laplace are unchanged; the ELBO, a density in
  // the point-valued w, shifts by N log|det M| (it is reported in the fitting gauge).
  GlobalState apply(const GlobalState& globals) const;
  Readout apply(const Readout& readout) const;
  // m' = M m + v, S' = M S M', lag blocks M S_t,t-1 M'; log|J| shifts by 2 T log|det M|.
  GaussianMoments apply(const GaussianMoments& moments) const;
};

}  // namespace spikevi
