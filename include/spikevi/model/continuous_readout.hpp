#pragma once
// A Gaussian modality (behaviour, calcium; DESIGN.md §1): y_tj ~ N(w_j . z_t + e_j, R_j),
// NaN = missing, its readout updated in closed form from blended regression statistics
// (DESIGN.md §3: "the same blend of statistics").
#include <Eigen/Dense>
#include <string>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

// Per channel j, sums over its observed bins (and trials), z~ = (z, 1):
//   second_moment block j = sum E[z~ z~'],  cross.col(j) = sum y_tj E[z~],
//   sum_squares(j) = sum y_tj^2,             observed(j) = number of observed bins.
struct RegressionStatistics {
  Eigen::MatrixXd second_moment;  // (D+1) x channels (D+1)
  Eigen::MatrixXd cross;          // (D+1) x channels
  Eigen::VectorXd sum_squares;    // channels
  Eigen::VectorXd observed;       // channels

  static RegressionStatistics zero(int channels, int dim);
  int channels() const { return static_cast<int>(cross.cols()); }
  // y is channels x T (NaN = missing), q over the same T bins.
  void add_trial(const Eigen::ArrayXXd& y, const GaussianMoments& q);
  // The same with the regressors E[z~] only (no posterior covariance): statistics of the
  // regression of y on the posterior means, as a predictor of y from them is fitted.
  void add_trial_means(const Eigen::ArrayXXd& y, const Eigen::MatrixXd& mean);
  // this <- (1 - rho) this + rho scale batch (the SVI blend; rho = scale = 1: batch itself).
  void blend(const RegressionStatistics& batch, double scale, double rho);

 private:
  // covariance(t): the D x D block added to E[z z'] at bin t (nothing when null).
  void add(const Eigen::ArrayXXd& y, const Eigen::MatrixXd& mean, const GaussianMoments* q);
};

// Weak priors: rows (w_j, e_j) ~ the readout prior, R_j ~ inverse-gamma(shape, scale).
struct NoisePrior {
  double shape = 1.0;
  double scale = 0.01;
  double log_density(const Eigen::VectorXd& variances) const;
};

struct ContinuousReadout {
  std::string name;                 // /continuous/NAME
  Readout readout;                  // W = readout.C, e = readout.d, Laplace precisions
  Eigen::VectorXd variances;        // R_j
  RegressionStatistics statistics;  // the blended statistics the readout was solved from

  int channels() const { return readout.rows(); }
};

// A readout of `channels` rows at the prior mean, unit variances, zero statistics.
ContinuousReadout make_continuous_readout(const std::string& name, int channels,
                                          const ReadoutPrior& prior);

// The maximum a posteriori (w_j, e_j, R_j) of each channel given `statistics` (a few
// alternations of the weighted least-squares solve for w and the closed form for R):
//   w = (S_zz / R + P0)^-1 (S_yz / R + P0 m0),
//   R = (scale + RSS(w) / 2) / (shape + 1 + n / 2),  RSS = S_yy - 2 w'S_yz + w'S_zz w,
// and the Laplace precision S_zz / R + P0 of w. A channel without observations stays at its
// prior (w = m0, R = the prior mode).
void solve_continuous_readout(ContinuousReadout& modality, const ReadoutPrior& prior,
                              const NoisePrior& noise_prior);

}  // namespace spikevi
