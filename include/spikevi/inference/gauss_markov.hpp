#pragma once
// The structured Gauss-Markov variational family of one trial (DESIGN.md §2):
// q(z) ∝ exp(-z'Jz/2 + h'z), J = J_prior + blockdiag(L_t), h = h_prior + l_t.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/inference/variational_family.hpp"

namespace spikevi {

// Evaluates q for `sites` under `prior`: one block-Cholesky/selected-inversion pass, the
// likelihood terms and the site-form ELBO. Its samples are z = m + L^-T eps (J = L L').
class GaussMarkovEvaluator final : public FamilyEvaluator {
 public:
  FamilyKind kind() const override { return FamilyKind::kGaussMarkov; }
  void evaluate(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                const Sites& sites, Estimator& estimator, GaussMarkovState& out) override;
  // dS_t by a central difference of the selected inverse of J +- eps (L~ - L): two more
  // factorisations, relative error ~1e-9 (enough for Adam's step; tested against a finite
  // difference of the ELBO).
  void site_gradient(const GaussMarkovState& state, Sites& gradient) override;
  // L^-T eps for J = L L' (block back-substitution).
  Eigen::MatrixXd sample_offsets(const Eigen::MatrixXd& eps) const override;

 private:
  BlockTridiagonal perturbed_;
  BlockCholesky perturbed_factor_;
  Eigen::MatrixXd cov_plus_, cov_minus_, lag_scratch_;
};

// ELBO_k = sum_t (E[ell_t] - l_t'm_t + tr(L_t (S_t + m_t m_t'))/2) + h'm/2 - log|J|/2
//          + (T D/2) log 2pi - c          (DESIGN.md §2, exact in the site parameterisation)
double site_form_elbo(const PriorBlocks& prior, const Sites& sites, const GaussianMoments& q,
                      double expected_log_lik);

}  // namespace spikevi
