#pragma once
// Moments of a Gaussian q(z_1:T) over one trial, as every family reports them.
#include <Eigen/Dense>

namespace spikevi {

struct GaussianMoments {
  Eigen::MatrixXd mean;            // D x T, m_t
  Eigen::MatrixXd cov;             // D x TD, S_t = Cov(z_t)
  Eigen::MatrixXd lag_cov;         // D x TD, block t = Cov(z_t, z_{t-1}); block 0 is zero
  double log_det_precision = 0.0;  // log|J|; entropy = (T D / 2) log(2 pi e) - log|J| / 2

  int dim() const { return static_cast<int>(mean.rows()); }
  int bins() const { return static_cast<int>(mean.cols()); }
  auto cov_block(int t) const { return cov.middleCols(t * dim(), dim()); }
  auto lag_block(int t) const { return lag_cov.middleCols(t * dim(), dim()); }
  double entropy() const;
};

}  // namespace spikevi
