#pragma once
// The simple baseline a decoder is judged against: ridge regression of a Gaussian modality
// on the raw spike counts of the current bin and the `lags` bins before it (a linear filter;
// e.g. Glaser et al. 2020, "Machine learning for neural decoding", Wiener filter), with the
// ridge strength chosen by cross-validation over the training trials. Per-trial matrices are
// neurons x T_k (counts) and channels x T_k (values, NaN = missing) throughout.
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

struct LaggedRidgeSettings {
  int lags = 2;  // bins before the current one; bins before a trial's start count as 0
  // Penalty (ridge/2) n |w|^2 on the weights of the standardised features, n the fitted
  // bins; the intercepts are free. Chosen by `folds`-fold cross-validation over the training
  // trials (trial i in fold i mod folds; pooled validation R^2) from the candidates; a list
  // with fewer than two entries (or fewer than two trials) means `ridge`.
  double ridge = 1e-2;
  std::vector<double> ridge_candidates = {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0};
  int folds = 5;
};

struct LaggedRidge {
  int lags = 2;
  Eigen::MatrixXd weights;           // channels x neurons (lags + 1), on the raw counts
  Eigen::VectorXd intercept;         // channels
  double ridge = 0.0;                // the strength used
  std::vector<double> cv_r_squared;  // per candidate (empty without cross-validation)
  // Predictions, channels x T_k per trial, from counts neurons x T_k.
  std::vector<Eigen::MatrixXd> predict(const std::vector<Eigen::MatrixXd>& counts) const;
};

// Fits on the training trials' counts and values (a channel's missing values are left out of
// its fit). InputError for inconsistent shapes, no trials or a channel with no observed
// value; ConfigError for lags < 0, a ridge < 0 or folds < 2.
LaggedRidge fit_lagged_ridge(const std::vector<Eigen::MatrixXd>& counts,
                             const std::vector<Eigen::MatrixXd>& values,
                             const LaggedRidgeSettings& settings = {});

}  // namespace spikevi
