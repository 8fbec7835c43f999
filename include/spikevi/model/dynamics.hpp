#pragma once
// Linear-Gaussian latent dynamics z_t = A z_{t-1} + B u_t + b + N(0, Q), z_1 ~ N(mu0, Sigma0),
// and the variational posterior over A~ = [A B b], Q: matrix-normal-inverse-Wishart (DESIGN.md
// §2-3). The regressor of the transition into bin t is z~_{t-1} = (z_{t-1}, u_t, 1), of size
// P = D + U + 1; U = 0 (no inputs) gives A~ = [A b] and z~ = (z, 1). Inputs are a U x T matrix
// per trial whose column t drives the transition into bin t (column 0 is never read).
#include <Eigen/Dense>

#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/math/gaussian_moments.hpp"

namespace spikevi {

class RandomStream;

// The expectations the prior part of the ELBO needs (DESIGN.md §3), A~ = [A B b] (D x P).
struct DynamicsExpectations {
  Eigen::MatrixXd E_Qinv;        // D x D, E[Q^-1]
  Eigen::MatrixXd E_Qinv_At;     // D x P, E[Q^-1 A~]
  Eigen::MatrixXd E_At_Qinv_At;  // P x P, E[A~' Q^-1 A~]
  double E_logdet_Q = 0.0;       // E[log|Q|]

  // A, B, b, Q held at point values (exactness tests, inference with the true parameters).
  // B is D x U; empty (the default) or D x 0 means no inputs. Throws InputError on a shape
  // mismatch.
  static DynamicsExpectations point(const Eigen::MatrixXd& A, const Eigen::VectorXd& b,
                                    const Eigen::MatrixXd& Q, const Eigen::MatrixXd& B = {});
  int dim() const { return static_cast<int>(E_Qinv.rows()); }
  int inputs() const { return static_cast<int>(E_Qinv_At.cols()) - dim() - 1; }  // U
};

// Expected sufficient statistics of the transitions of one or more trials (DESIGN.md §3):
// Sxx = sum_{t>=2} E[z~_{t-1} z~_{t-1}'], Syx = sum E[z_t z~_{t-1}'], Syy = sum E[z_t z_t'], n,
// with z~_{t-1} = (z_{t-1}, u_t, 1); the inputs are known, so they add no variance.
struct TransitionStatistics {
  Eigen::MatrixXd Sxx;  // P x P
  Eigen::MatrixXd Syx;  // D x P
  Eigen::MatrixXd Syy;  // D x D
  double n = 0.0;

  static TransitionStatistics zero(int dim, int inputs = 0);
  // `inputs`: the trial's U x T inputs; nullptr or 0 rows when U = 0. Throws InputError unless
  // it has the U rows these statistics were made for and (U > 0) one column per bin of q.
  void add_trial(const GaussianMoments& q, const Eigen::MatrixXd* inputs = nullptr);
  void add(const TransitionStatistics& other, double weight = 1.0);
  int inputs() const { return static_cast<int>(Sxx.rows() - Syy.rows()) - 1; }  // U
};

// A~ | Q ~ MN(M, Q, V), Q ~ IW(Psi, nu).
struct MatrixNormalInverseWishart {
  Eigen::MatrixXd M;    // D x P, P = D + U + 1
  Eigen::MatrixXd V;    // P x P, column covariance
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
  // rho = 1, scale = 1 is the exact conjugate (VB-EM) update. Throws InputError when the
  // statistics (or, for rho != 1, the current value) have another number of inputs than the prior.
  static MatrixNormalInverseWishart blend(const MatrixNormalInverseWishart& current,
                                          const MatrixNormalInverseWishart& prior,
                                          const TransitionStatistics& stats, double scale,
                                          double rho);

  DynamicsExpectations expectations() const;
  double kl_divergence(const MatrixNormalInverseWishart& prior) const;  // KL(this || prior)
  Eigen::MatrixXd mean_A() const { return M.leftCols(M.rows()); }
  Eigen::MatrixXd mean_B() const { return M.middleCols(M.rows(), inputs()); }  // D x U
  Eigen::VectorXd mean_b() const { return M.col(M.cols() - 1); }
  Eigen::MatrixXd mean_Q() const;  // Psi / (nu - D - 1), requires nu > D + 1
  int dim() const { return static_cast<int>(M.rows()); }
  int inputs() const { return static_cast<int>(M.cols()) - dim() - 1; }  // U

  // One draw (A~, Q) from this distribution: Q = W^-1 with W ~ Wishart(Psi^-1, nu) by
  // Bartlett's decomposition (any real nu > D - 1), then A~ = M + S E R' with S S' = Q,
  // R R' = V and E a D x P matrix of standard normals, taken from `stream` in order.
  struct Draw {
    Eigen::MatrixXd At;  // D x P, [A B b]
    Eigen::MatrixXd Q;   // D x D
  };
  Draw draw(RandomStream& stream) const;

  // The default weak prior: M0 = 0 (D x P), V0 = v0 I (P x P), nu0 = D + 3,
  // Psi0 = q0 (nu0 - D - 1) I, so E[Q] = q0 I.
  static MatrixNormalInverseWishart weak_prior(int dim, double v0 = 10.0, double q0 = 0.1,
                                               int inputs = 0);
};

// E_q(theta)[log p(z | theta)] = -z'J_p z/2 + h_p'z - c for one trial of T bins (DESIGN.md §2).
struct PriorBlocks {
  BlockTridiagonal precision;  // J_p
  Eigen::MatrixXd shift;       // D x T, h_p
  double constant = 0.0;       // c
};

// `inputs`: the trial's U x T inputs (U = dynamics.inputs()); nullptr or 0 rows when U = 0.
// Throws InputError on a shape mismatch.
PriorBlocks prior_blocks(const DynamicsExpectations& dynamics, const Eigen::VectorXd& mu0,
                         const Eigen::MatrixXd& Sigma0, int bins,
                         const Eigen::MatrixXd* inputs = nullptr);

}  // namespace spikevi
