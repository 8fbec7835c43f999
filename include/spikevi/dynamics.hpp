#pragma once
// Linear-Gaussian latent dynamics z_t = A z_{t-1} + b + N(0, Q), z_1 ~ N(mu0, Sigma0), and the
// variational posterior over A~ = [A b], Q: matrix-normal-inverse-Wishart (DESIGN.md §2-3).
#include <Eigen/Dense>

#include "spikevi/block_tridiagonal.hpp"
#include "spikevi/gaussian_moments.hpp"

namespace spikevi {

// The expectations the prior part of the ELBO needs (DESIGN.md §3), A~ = [A b] (D x (D+1)).
struct DynamicsExpectations {
  Eigen::MatrixXd E_Qinv;        // D x D, E[Q^-1]
  Eigen::MatrixXd E_Qinv_At;     // D x (D+1), E[Q^-1 A~]
  Eigen::MatrixXd E_At_Qinv_At;  // (D+1) x (D+1), E[A~' Q^-1 A~]
  double E_logdet_Q = 0.0;       // E[log|Q|]

  // A, b, Q held at point values (exactness tests, inference with the true parameters).
  static DynamicsExpectations point(const Eigen::MatrixXd& A, const Eigen::VectorXd& b,
                                    const Eigen::MatrixXd& Q);
  int dim() const { return static_cast<int>(E_Qinv.rows()); }
};

// Expected sufficient statistics of the transitions of one or more trials (DESIGN.md §3):
// Sxx = sum_{t>=2} E[z~_{t-1} z~_{t-1}'], Syx = sum E[z_t z~_{t-1}'], Syy = sum E[z_t z_t'], n.
struct TransitionStatistics {
  Eigen::MatrixXd Sxx;  // (D+1) x (D+1)
  Eigen::MatrixXd Syx;  // D x (D+1)
  Eigen::MatrixXd Syy;  // D x D
  double n = 0.0;

  static TransitionStatistics zero(int dim);
  void add_trial(const GaussianMoments& q);
  void add(const TransitionStatistics& other, double weight = 1.0);
};

// A~ | Q ~ MN(M, Q, V), Q ~ IW(Psi, nu).
struct MatrixNormalInverseWishart {
  Eigen::MatrixXd M;    // D x (D+1)
  Eigen::MatrixXd V;    // (D+1) x (D+1), column covariance
  Eigen::MatrixXd Psi;  // D x D, inverse-Wishart scale
  double nu = 0.0;      // degrees of freedom, > D - 1

  // Natural parameters eta = (V^-1, M V^-1, Psi + M V^-1 M', nu).
  struct Natural {
    Eigen::MatrixXd eta1, eta2, eta3;
    double nu = 0.0;
  };
  Natural natural() const;
  static MatrixNormalInverseWishart from_natural(const Natural& eta);
  // Natural-gradient step (DESIGN.md §3): eta <- (1-rho) eta + rho (eta_prior + scale * stats).
  // rho = 1, scale = 1 is the exact conjugate (VB-EM) update.
  static MatrixNormalInverseWishart blend(const MatrixNormalInverseWishart& current,
                                          const MatrixNormalInverseWishart& prior,
                                          const TransitionStatistics& stats, double scale,
                                          double rho);

  DynamicsExpectations expectations() const;
  double kl_divergence(const MatrixNormalInverseWishart& prior) const;  // KL(this || prior)
  Eigen::MatrixXd mean_A() const { return M.leftCols(M.rows()); }
  Eigen::VectorXd mean_b() const { return M.col(M.cols() - 1); }
  Eigen::MatrixXd mean_Q() const;  // Psi / (nu - D - 1), requires nu > D + 1
  int dim() const { return static_cast<int>(M.rows()); }

  // The default weak prior: M0 = 0, V0 = v0 I, nu0 = D + 3, Psi0 = q0 (nu0 - D - 1) I, so
  // E[Q] = q0 I.
  static MatrixNormalInverseWishart weak_prior(int dim, double v0 = 10.0, double q0 = 0.1);
};

// E_q(theta)[log p(z | theta)] = -z'J_p z/2 + h_p'z - c for one trial of T bins (DESIGN.md §2).
struct PriorBlocks {
  BlockTridiagonal precision;  // J_p
  Eigen::MatrixXd shift;       // D x T, h_p
  double constant = 0.0;       // c
};

PriorBlocks prior_blocks(const DynamicsExpectations& dynamics, const Eigen::VectorXd& mu0,
                         const Eigen::MatrixXd& Sigma0, int bins);

}  // namespace spikevi
