#pragma once
// Coupling / history terms from the held-in population (Pillow et al. 2008, GLM style;
// docs/model-and-inference.md "History terms"): every spike row n gets the known offset
//   eta_nt = c_n' z_t + d_n + b_n' f_t,   f_t = (a_{t-1}, ..., a_{t-K}),  a_s = W (x_s - m),
// where x_s holds the HELD-IN neurons' counts at bin s (a_s = 0 before the trial starts), m their
// mean count per bin over the training trials and W (P x H) a fixed low-rank projection: the top
// P principal directions of the standardised held-in counts, each scaled to unit variance. The
// weights b_n (F = K P of them) have the prior N(0, 1/lambda I) and are learnt beside (c_n, d_n)
// by a variational-online-Newton step (DESIGN.md §3). Held-out neurons' own spikes never enter f,
// so co-smoothing stays defined.
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

struct HistorySettings {
  int lags = 0;                  // K (--history); 0: no history terms
  int components = 0;            // P (--history-components); 0: min(4, held-in rows)
  double prior_precision = 1.0;  // lambda (--history-prior)
  std::vector<int> rows;         // the held-in rows the features read; empty: every row
  bool active() const { return lags > 0; }
  // P with the default resolved, for `rows` (filled in by the caller).
  int resolved_components() const;
};

// The fixed feature map of a fit.
struct HistoryBasis {
  int lags = 0;                // K
  std::vector<int> rows;       // H held-in rows (indices into all spike rows), ascending
  Eigen::VectorXd mean;        // H: m, mean count per bin over the training trials
  Eigen::MatrixXd projection;  // P x H: W, row p = u_p' diag(1/sd) / sqrt(eigenvalue_p)

  // A basis of the shape `settings` gives for `rows` held-in rows, values zero: what a checkpoint
  // reader sizes the history weights by.
  static HistoryBasis shaped(const HistorySettings& settings);
  bool active() const { return lags > 0; }
  int components() const { return static_cast<int>(projection.rows()); }
  int features() const { return lags * components(); }
  // F x T features of one trial from all its spike rows' counts (N x T): column t stacks
  // a_{t-1}, ..., a_{t-K} (P each), zero where t - k < 0.
  Eigen::MatrixXd features(const Eigen::ArrayXXd& counts) const;
};

// Sums over the training bins of the held-in counts (all ranks summed by the caller).
struct CountMoments {
  Eigen::VectorXd sum;     // H: sum_t x_t
  Eigen::MatrixXd second;  // H x H: sum_t x_t x_t'
  double bins = 0.0;
};
// The counts' moments of one trial (N x T) on `rows`.
CountMoments count_moments(const Eigen::ArrayXXd& counts, const std::vector<int>& rows);

// The basis of `settings` from the training moments: W from the eigenvectors of the correlation
// matrix with the P largest eigenvalues (sign: each vector's largest-magnitude entry positive);
// rows with no spikes get sd 1. Deterministic in the moments. ConfigError if P < 1 or P > H.
HistoryBasis make_history_basis(const HistorySettings& settings, const CountMoments& moments);

// The basis, the weights B (N x F) and their per-row Gaussian precisions.
struct HistoryCoupling {
  HistoryBasis basis;
  Eigen::MatrixXd B;          // N x F, row n = b_n' (N x 0 without history)
  Eigen::MatrixXd precision;  // F x NF: block n = the precision of b_n
  double prior_precision = 1.0;

  bool active() const { return B.cols() > 0; }
  int features() const { return static_cast<int>(B.cols()); }
  // B at its prior mean (zero), precisions lambda I.
  static HistoryCoupling at_prior(const HistoryBasis& basis, int rows, double prior_precision);
  HistoryCoupling select_rows(const std::vector<int>& keep) const;
  // N x T offset B f_t of a trial with features F x T.
  Eigen::ArrayXXd offset(const Eigen::MatrixXd& features) const;
  Eigen::VectorXd row_log_prior() const;  // per row, log N(b_n; 0, 1/lambda I)
  // sum over rows of (F/2) log 2pi - log|P_n|/2 (the Laplace correction of global_state.hpp).
  double laplace_correction() const;
  void copy_row(const HistoryCoupling& from, Eigen::Index n);
};

// Per row, sums over bins (and trials) of the gradient sum_t E_q[f'(eta_nt)] f_t and the
// curvature sum_t E_q[-f''(eta_nt)] f_t f_t' of E_q log p(x_n | eta) in b_n.
struct HistoryStatistics {
  Eigen::MatrixXd gradient;   // F x N
  Eigen::MatrixXd curvature;  // F x NF, block n positive semi-definite
  static HistoryStatistics zero(int rows, int features);
  // One trial: `g` = d ell / d mu and `G` = d ell / d s2 (ObservationModel::
  // expected_log_likelihood at mu including the offset), so E f'' = 2 G (Price).
  void add_trial(const Eigen::MatrixXd& features, const Eigen::ArrayXXd& g,
                 const Eigen::ArrayXXd& G);
};

// The variational-online-Newton step of each row with its own rho_n:
//   P_n <- (1-rho_n) P_n + rho_n (lambda I + scale H_n),  b_n <- b_n + rho_n P_n^-1 (scale g_n -
//   lambda b_n).
void history_natural_gradient_step(HistoryCoupling& coupling, const HistoryStatistics& stats,
                                   double scale, const Eigen::VectorXd& row_rho);

}  // namespace spikevi
