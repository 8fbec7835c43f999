#pragma once
// The linear readout eta_nt = c_n . z_t + d_n of one modality, its dense kernels (DESIGN.md §9)
// and its Gaussian natural-gradient (variational online Newton) update (DESIGN.md §3).
#include <Eigen/Dense>
#include <functional>
#include <vector>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/observation_model.hpp"

namespace spikevi {

// Point values w_n = (c_n, d_n) and the precision P_n kept by the natural-gradient step,
// reported as the Laplace covariance P_n^-1.
struct Readout {
  Eigen::MatrixXd C;          // N x D, row n = c_n
  Eigen::VectorXd d;          // N
  Eigen::MatrixXd precision;  // (D+1) x N(D+1): block n = P_n over (c_n, d_n)

  int rows() const { return static_cast<int>(C.rows()); }
  int dim() const { return static_cast<int>(C.cols()); }
  // Rows `keep` only (e.g. the held-in neurons), precision included.
  Readout select_rows(const std::vector<int>& keep) const;
};

// Gaussian prior p0(w_n) = N(m0, P0^-1), the same for every row: P0 = diag(pc..pc, pd).
struct ReadoutPrior {
  Eigen::VectorXd mean;       // D+1
  Eigen::MatrixXd precision;  // (D+1) x (D+1)
  static ReadoutPrior weak(int dim, double pc = 1.0, double pd = 0.01);
  // sum over rows of log p0(w_n)
  double log_density(const Readout& readout) const;
};

// Precomputed products of C for the sweep: the row-wise Khatri-Rao product K(C), N x D^2,
// row n = vec(c_n c_n')'. Rebuild whenever C changes.
class ReadoutKernels {
 public:
  explicit ReadoutKernels(const Readout& readout);
  explicit ReadoutKernels(Readout&&) = delete;  // keeps a pointer: no temporaries
  ReadoutKernels(const ReadoutKernels&) = delete;
  ReadoutKernels& operator=(const ReadoutKernels&) = delete;
  const Readout& readout() const { return *readout_; }
  // mu = C M + d 1', s2_nt = c_n' S_t c_n, both N x T (DESIGN.md §9).
  void eta_moments(const GaussianMoments& q, Eigen::ArrayXXd& mu, Eigen::ArrayXXd& s2) const;
  // Adds the site targets of this modality (DESIGN.md §1-2):
  //   site_precision_t += -2 sum_n G_nt c_n c_n'      (D x TD, = K(C)' (-2 G))
  //   site_shift_t     += C' g_t - 2 (sum_n G_nt c_n c_n') m_t   (D x T)
  void add_site_targets(const Eigen::ArrayXXd& g, const Eigen::ArrayXXd& G,
                        const Eigen::MatrixXd& mean, Eigen::MatrixXd& site_precision,
                        Eigen::MatrixXd& site_shift) const;

 private:
  const Readout* readout_;
  Eigen::MatrixXd khatri_rao_;  // N x D^2
};

// Per-row sums over bins (and trials) of E_q[grad_w log p(x_n | w, z)] and
// E_q[-Hess_w log p(x_n | w, z)] at the current w, for w = (c, d), z~ = (z, 1).
struct ReadoutStatistics {
  Eigen::MatrixXd gradient;        // (D+1) x N
  Eigen::MatrixXd hessian;         // (D+1) x N(D+1), block n = -E Hess (positive semi-definite)
  Eigen::VectorXd log_likelihood;  // N: E_q[log p(x_n | w, z)], base measure excluded

  static ReadoutStatistics zero(int rows, int dim);
  // Adds one trial: x is N x T (NaN = missing where the model allows it).
  void add_trial(const Readout& readout, const ObservationModel& model, const Eigen::ArrayXXd& x,
                 const GaussianMoments& q);
  // The same with the trial's eta moments (ReadoutKernels::eta_moments) already taken, for a
  // caller that needs them too.
  void add_trial(const Readout& readout, const ObservationModel& model, const Eigen::ArrayXXd& x,
                 const GaussianMoments& q, const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2);
};

// Per-row sum over the data of E_q[log p(x_n | w, z)] (base measure excluded) at a candidate
// readout; the caller sums it over trials (and ranks). Only the rows listed in `rows`
// (ascending) are read by the step, so an objective may leave the others at any value and
// skip their work (the backtracking rounds after the first evaluate only the rows not yet
// accepted).
using ReadoutObjective =
    std::function<Eigen::VectorXd(const Readout& candidate, const std::vector<int>& rows)>;

// Per-row E_q[log p(x_n | w, z)] (base measure excluded) of one trial: the readout objective.
// `offset` (rows x T, --history): a known term added to eta's mean.
Eigen::VectorXd row_log_likelihood(const ReadoutKernels& kernels, const ObservationModel& model,
                                   const Eigen::ArrayXXd& x, const GaussianMoments& q,
                                   const Eigen::ArrayXXd* offset = nullptr);

// Per row, log p0(w_n).
Eigen::VectorXd row_log_prior(const ReadoutPrior& prior, const Readout& readout);

// One variational-online-Newton step per row (DESIGN.md §3):
//   P_n <- (1-rho) P_n + rho (P0 + scale H_n),  w_n <- w_n + rho P_n^-1 (scale g_n - P0 (w_n -
//   m0)).
// With `objective` set (full batch), rho is halved per row until that row's term of
// objective(w) + log p0(w) does not decrease (at most max_halvings times; then the row stays).
Readout readout_natural_gradient_step(const Readout& current, const ReadoutPrior& prior,
                                      const ReadoutStatistics& stats, double scale, double rho,
                                      const ReadoutObjective& objective = {},
                                      int max_halvings = 30);

// The same step without backtracking, with its own rho for each row (0 < rho_n <= 1).
Readout readout_natural_gradient_step(const Readout& current, const ReadoutPrior& prior,
                                      const ReadoutStatistics& stats, double scale,
                                      const Eigen::VectorXd& row_rho);

}  // namespace spikevi
