#pragma once
// The MLP readout (--readout mlp, docs/model-and-inference.md "The MLP readout"): the log-rate
//   eta_nt = c_n' z_t + d_n + a_n' tanh(W z_t + b)
// i.e. eta = c~_n' phi(z_t) with phi(z) = (z, 1, tanh(W z + b)) a one-hidden-layer network of
// H units shared by all neurons (the fLDS embedding of Gao et al. 2016, with a linear skip so
// that a_n = 0 is the linear readout). (c_n, d_n) are the ordinary Readout rows; (A, W, b) are
// global point parameters with the weak Gaussian prior N(0, 1/precision I).
//
// Expectations under the Gauss-Markov q(z_t) = N(m_t, S_t) are taken by a deterministic
// cubature (cubature.hpp) at the nodes z_tj = m_t + chol(S_t) xi_tj (xi_tj = the rule's nodes
// of bin t), evaluated for all bins and nodes at once (dense GEMMs over the T J node columns,
// per-thread scratch that only grows).
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "spikevi/math/cubature.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

struct MlpReadout {
  Eigen::MatrixXd A;  // N x H, row n = a_n
  Eigen::MatrixXd W;  // H x D
  Eigen::VectorXd b;  // H

  int hidden() const { return static_cast<int>(W.rows()); }
  bool active() const { return W.rows() > 0; }
  // A = 0 (the linear readout), W_ij ~ N(0, 1/D) and b_i ~ N(0, 1/4) from the stream keyed by
  // (seed, kInitialisation), so that the hidden units differ.
  static MlpReadout initial(int neurons, int dim, int hidden, std::uint64_t seed);
  // sum of log N(theta; 0, 1/precision) over every entry of A, W, b.
  double log_prior(double precision) const;
  MlpReadout select_rows(const std::vector<int>& keep) const;
};

// The Euclidean gradient of sum E_q log p(x | eta) with respect to (A, W, b).
struct MlpGradient {
  Eigen::MatrixXd A, W;
  Eigen::VectorXd b;
  static MlpGradient zero(int neurons, int dim, int hidden);
};

// The readout kernels of an MLP readout for the local step and the global statistics.
class MlpKernels {
 public:
  MlpKernels(const Readout& linear, const MlpReadout& mlp, const GaussianCubature& rule);
  MlpKernels(Readout&&, const MlpReadout&, const GaussianCubature&) = delete;
  const Readout& linear() const { return *linear_; }
  const MlpReadout& mlp() const { return *mlp_; }
  const GaussianCubature& rule() const { return *rule_; }

  // sum over entries of E_q[log p(x | eta)] (base measure excluded, eta-free terms included)
  // by the cubature, and, when site_precision is not null, adds the CVI site targets
  // (DESIGN.md §1-2) to site_precision (D x TD) and site_shift (D x T):
  //   g_t = dE/dm_t = sum_j w_j grad f(z_tj)  (the exact derivative of the cubature estimate E),
  //   P_t = -2 dE/dS_t = -2 L^-T Psi(L' G) L^-1,  G = sum_j w_j grad f(z_tj) xi_tj' (the exact
  //         derivative through the Cholesky factor, dL = L Phi(L^-1 dS L^-T), Phi = lower
  //         triangle with half the diagonal, Psi(M) = (Phi(M) + Phi(M)')/2; it estimates
  //         -E[Hess f] as Stein's lemma does), projected onto the PSD cone (negative eigenvalues
  //         set to zero: a no-op wherever the log-likelihood is concave in z_t),
  //   site_precision_t += P_t,   site_shift_t += g_t + P_t m_t.
  // So the local step's fixed point is a stationary point of the cubature ELBO wherever the
  // projection is inactive.
  double expected_log_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                 const GaussianMoments& q, Eigen::MatrixXd* site_precision,
                                 Eigen::MatrixXd* site_shift) const;
  // The global statistics of one trial: the rows' (c_n, d_n) gradient and -Hessian (exact
  // under the cubature: f is linear in (c_n, d_n)) and per-row E_q log p into `rows`, and the
  // gradient of (A, W, b) into `gradient`.
  void add_statistics(const ObservationModel& model, const Eigen::ArrayXXd& x,
                      const GaussianMoments& q, ReadoutStatistics& rows,
                      MlpGradient& gradient) const;
  // Per row, E_q[log p(x_n | eta)] of one trial (base measure excluded).
  Eigen::VectorXd row_log_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                     const GaussianMoments& q) const;
  // The mean and variance of eta under q by the cubature, N x T each.
  void eta_moments(const GaussianMoments& q, Eigen::ArrayXXd& mean,
                   Eigen::ArrayXXd& variance) const;
  // log p(x | z) - log h(x) of one latent path z (D x T), eta-free terms included.
  double path_log_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x,
                             const Eigen::MatrixXd& z) const;
  // E[x | eta] per entry averaged over q (predictions): N x T.
  Eigen::ArrayXXd predicted_mean(const ObservationModel& model, const GaussianMoments& q) const;

 private:
  const Readout* linear_;
  const MlpReadout* mlp_;
  const GaussianCubature* rule_;
};

}  // namespace spikevi
