#pragma once
// The local variational families of one trial (DESIGN.md §2) behind one interface. Both are
// parameterised by the same Gaussian sites per bin (L_t, l_t), blended by the same
// natural-gradient (conjugate-computation VI) local step; they differ in the q they make of the
// sites. With J = J_prior + blockdiag(L_t) and h = h_prior + l_t:
//   Gauss-Markov: q = N(J^-1 h, J^-1), block-tridiagonal precision (gauss_markov.hpp);
//   mean-field:   q = prod_ti N(m_ti, 1 / J_(ti,ti)) with m = J^-1 h (mean_field.hpp).
// So warm starts, checkpoints and the driver are the same for both.
#include <Eigen/Dense>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/dynamics.hpp"

namespace spikevi {

// q(z) of one trial at given sites, with its ELBO and the site targets of the next step.
struct GaussMarkovState {
  Sites sites;
  GaussianMoments moments;
  Sites targets;                  // CVI targets at `moments` (rho = 1 step)
  double expected_log_lik = 0.0;  // sum_t E_q[ell_t] (a Monte Carlo estimate under MC)
  double elbo = 0.0;              // ELBO_k of the family (DESIGN.md §2)
};

// The mathematics of one family: q from the sites, its ELBO, the site gradient, and draws from
// q for an estimator (LatentSampler; the estimator owns the random numbers).
class FamilyEvaluator : public LatentSampler {
 public:
  virtual FamilyKind kind() const = 0;
  // q, its expected log-likelihood (taken by `estimator`), site targets and ELBO at `sites`
  // under `prior`. Throws NumericalError if J is not SPD.
  virtual void evaluate(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                        const Sites& sites, Estimator& estimator, GaussMarkovState& out) = 0;
  // The Euclidean gradient of state.elbo with respect to its sites (the ascent direction
  // --optimizer adam follows). Uses the factor of the last evaluation: call it right after
  // evaluate(..., state). With r = (l~ - l) - (L~ - L) m (the CVI residuals) and a = J^-1 r:
  //   d/dl_t = a_t,   d/dL_t = -(a_t m_t' + m_t a_t')/2 + dS_t/2,
  // dS_t = (J^-1 (L~ - L) J^-1)_tt for Gauss-Markov, diag(s2_t^2 (L~ - L)_t,ii) for mean-field.
  virtual void site_gradient(const GaussMarkovState& state, Sites& gradient) = 0;

 protected:
  // J = J_prior + blockdiag(sites.precision) into precision_ and its factor cholesky_,
  // h = h_prior + sites.shift into shift_ (both families start here). Throws NumericalError if
  // J is not SPD.
  void factor(const PriorBlocks& prior, const Sites& sites);
  // The part of site_gradient both families share: d/dl = a and -(a_t m_t' + m_t a_t')/2
  // (the caller adds dS_t / 2), with the factor of the last evaluation.
  void mean_part_of_site_gradient(const GaussMarkovState& state, Sites& gradient) const;

  BlockTridiagonal precision_;
  BlockCholesky cholesky_;
  Eigen::MatrixXd shift_;
};

std::unique_ptr<FamilyEvaluator> make_family_evaluator(FamilyKind family);

}  // namespace spikevi
