#pragma once
// Amortised inference of one trial (DESIGN.md §6 "Amortised inference", "KL annealing"): the
// encoder's sites give q(z_k), the same Gauss-Markov chain as the iterative local step
// (J = J_prior + blockdiag(L), h = h_prior + l), and the annealed ELBO
//     ELBO_beta = E_q[log p(x | z)] - beta KL(q(z) || p(z))
//               = beta ELBO_k + (1 - beta) E_q[ell]
// is differentiated with respect to the sites exactly (FamilyEvaluator::site_gradient with the
// likelihood's CVI targets divided by beta: the optimum of ELBO_beta is q ∝ p(z) exp(ell /
// beta), so the gradient of ELBO_beta is beta times that of the ELBO with ell / beta), then
// through the encoder by backpropagation. beta scales the whole latent KL (the prior term
// E_q log p(z | theta) and the entropy of q), nothing else.
// Also the collapse diagnostics (DESIGN.md §8): per-dimension KL of the marginals and the
// posterior-mean moments that count active units (Burda et al. 2016).
#include <Eigen/Dense>

#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/site_encoder.hpp"

namespace spikevi {

// q of the trial at the encoder's sites for `encoder_input` (the neurons the encoder reads,
// N x T), evaluated in `state` (state.elbo is the beta = 1 ELBO_k), and the gradient of
// ELBO_beta with respect to the encoder's weights added to `gradient`; when
// `likelihood_gradient` is not null, also that of ELBO_0 = E_q[ell] added to it (what --free-bits
// follows in an iteration whose KL is below its threshold). Returns ELBO_beta.
// Throws NumericalError if J is not SPD (it is whenever J_prior is: the sites are PSD).
double amortised_trial(const LocalProblem& problem, const SiteEncoder& encoder,
                       const Eigen::ArrayXXd& encoder_input, double beta, GaussMarkovState& state,
                       Eigen::VectorXd& gradient, EncoderPass& pass,
                       Eigen::VectorXd* likelihood_gradient = nullptr);

// q's moments (mean, marginal and lag-one covariances, log|J|) at `sites` under `prior`, without
// the likelihood: what inferring a new trial with a trained encoder needs. NumericalError if J
// is not SPD.
void posterior_moments(const PriorBlocks& prior, const Sites& sites, GaussianMoments& q);

// The sites' gradient of ELBO_beta at `state` (evaluated last by problem.family), beta in
// [0, 1]. site_gradient is linear in (targets - sites), so that of ELBO_beta, beta times the
// ELBO's gradient with the targets divided by beta, is site_gradient at (targets - beta sites):
// at beta = 0, d E_q[ell] / d sites, site_gradient with the sites' own term left out.
void annealed_site_gradient(const LocalProblem& problem, const GaussMarkovState& state, double beta,
                            Sites& gradient);

// Per-trial sums for the collapse diagnostics, D each (plus the bin count): summed over trials
// and ranks, then divided by the bins.
struct CollapseSums {
  Eigen::VectorXd kl;            // sum_t KL(q(z_td) || p(z_td)) per dimension d
  Eigen::VectorXd mean;          // sum_t m_td
  Eigen::VectorXd mean_squared;  // sum_t m_td^2
  double bins = 0.0;
  static CollapseSums zero(int dim);
  void add(const CollapseSums& other);
  // Packed as [kl, mean, mean_squared, bins] (3D + 1 doubles) and back.
  void pack_into(double* out) const;
  static CollapseSums unpack(const double* in, int dim);
  // E_k,t KL_d, the averages over all summed bins.
  Eigen::VectorXd kl_per_dimension() const;
  // Var_k,t(m_td) per dimension, and the number of dimensions above `threshold` (0.01).
  Eigen::VectorXd mean_variance() const;
  int active_units(double threshold = 0.01) const;
};

// The marginals of q (moments) against those of the prior N(J_prior^-1 h_prior, J_prior^-1)
// of the same trial (at the current globals): one more block-Cholesky pass.
//   KL(N(m, s2) || N(mu, p2)) = (log(p2 / s2) + (s2 + (m - mu)^2) / p2 - 1) / 2
CollapseSums collapse_sums(const PriorBlocks& prior, const GaussianMoments& q);

}  // namespace spikevi
