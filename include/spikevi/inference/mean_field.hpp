#pragma once
// The mean-field family of one trial (DESIGN.md §2): q = prod_t prod_i N(m_ti, s2_ti).
// Parameterised by the same sites as the Gauss-Markov family (variational_family.hpp): with
// J = J_prior + blockdiag(L_t), h = h_prior + l_t, q has s2_ti = 1 / J_(ti,ti) and m = J^-1 h.
// For fixed sites that is the exact coordinate-ascent (Gauss-Seidel) limit of the mean-field
// update of DESIGN.md §2 on the Gaussian J, h; at sites = CVI targets it satisfies that
// update's fixed-point equations (1/s2_ti = J_p,(ti,ti) - 2 sum_n G_n c_ni^2, and
// J_p m = h_p + C'g), so the local step and every driver path are shared with Gauss-Markov.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/inference/variational_family.hpp"

namespace spikevi {

// Evaluates the mean-field q for `sites` under `prior`: one block-Cholesky solve for the means,
// the diagonal of J for the variances; S_t diagonal, lag-one covariances zero,
// log_det_precision = sum log J_(ti,ti). Its samples are z = m + sqrt(s2) eps.
class MeanFieldEvaluator final : public FamilyEvaluator {
 public:
  FamilyKind kind() const override { return FamilyKind::kMeanField; }
  void evaluate(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                const Sites& sites, Estimator& estimator, GaussMarkovState& out) override;
  void site_gradient(const GaussMarkovState& state, Sites& gradient) override;
  // sqrt(s2) eps element-wise.
  Eigen::MatrixXd sample_offsets(const Eigen::MatrixXd& eps) const override;

 private:
  Eigen::MatrixXd variances_;  // D x T
};

// ELBO_k = E_q[ell] + E_q[log p(z)] + H[q] for a q with block-diagonal covariance (S_t, no
// lag-one terms): E_q log p(z) = -(m'J_p m + sum_t tr(J_p,tt S_t))/2 + h_p'm - c.
double block_diagonal_elbo(const PriorBlocks& prior, const GaussianMoments& q,
                           double expected_log_lik);

}  // namespace spikevi
