#include "spikevi/model/continuous_readout.hpp"

#include <cmath>

#include "spikevi/error.hpp"

namespace spikevi {

RegressionStatistics RegressionStatistics::zero(int channels, int dim) {
  const int p = dim + 1;
  return RegressionStatistics{Eigen::MatrixXd::Zero(p, static_cast<Eigen::Index>(p) * channels),
                              Eigen::MatrixXd::Zero(p, channels), Eigen::VectorXd::Zero(channels),
                              Eigen::VectorXd::Zero(channels)};
}

void RegressionStatistics::add_trial(const Eigen::ArrayXXd& y, const GaussianMoments& q) {
  add(y, q.mean, &q);
}

void RegressionStatistics::add_trial_means(const Eigen::ArrayXXd& y, const Eigen::MatrixXd& mean) {
  add(y, mean, nullptr);
}

void RegressionStatistics::add(const Eigen::ArrayXXd& y, const Eigen::MatrixXd& mean,
                               const GaussianMoments* q) {
  const int dim = static_cast<int>(mean.rows()), p = dim + 1;
  if (y.rows() != channels() || y.cols() != mean.cols())
    throw InputError("continuous modality: " + std::to_string(y.rows()) + " x " +
                     std::to_string(y.cols()) + " values for " + std::to_string(channels()) +
                     " channels and " + std::to_string(mean.cols()) + " bins");
  Eigen::VectorXd mean_tilde(p);
  Eigen::MatrixXd second_tilde(p, p);
  for (Eigen::Index t = 0; t < y.cols(); ++t) {
    mean_tilde << mean.col(t), 1.0;
    second_tilde = mean_tilde * mean_tilde.transpose();
    if (q) second_tilde.topLeftCorner(dim, dim) += q->cov_block(static_cast<int>(t));
    for (Eigen::Index j = 0; j < y.rows(); ++j) {
      const double value = y(j, t);
      if (std::isnan(value)) continue;
      second_moment.middleCols(j * p, p) += second_tilde;
      cross.col(j) += value * mean_tilde;
      sum_squares(j) += value * value;
      observed(j) += 1.0;
    }
  }
}

void RegressionStatistics::blend(const RegressionStatistics& batch, double scale, double rho) {
  const double keep = 1.0 - rho, take = rho * scale;
  second_moment = keep * second_moment + take * batch.second_moment;
  cross = keep * cross + take * batch.cross;
  sum_squares = keep * sum_squares + take * batch.sum_squares;
  observed = keep * observed + take * batch.observed;
}

double NoisePrior::log_density(const Eigen::VectorXd& variances) const {
  // inverse-gamma: a log b - lgamma(a) - (a + 1) log R - b / R
  const double normaliser = shape * std::log(scale) - std::lgamma(shape);
  return (normaliser - (shape + 1.0) * variances.array().log() - scale / variances.array()).sum();
}

ContinuousReadout make_continuous_readout(const std::string& name, int channels,
                                          const ReadoutPrior& prior) {
  const int dim = static_cast<int>(prior.mean.size()) - 1;
  ContinuousReadout modality;
  modality.name = name;
  modality.readout.C = prior.mean.head(dim).transpose().replicate(channels, 1);
  modality.readout.d = Eigen::VectorXd::Constant(channels, prior.mean(dim));
  modality.readout.precision = prior.precision.replicate(1, channels);
  modality.variances = Eigen::VectorXd::Ones(channels);
  modality.statistics = RegressionStatistics::zero(channels, dim);
  return modality;
}

void solve_continuous_readout(ContinuousReadout& modality, const ReadoutPrior& prior,
                              const NoisePrior& noise_prior) {
  const RegressionStatistics& s = modality.statistics;
  const int p = static_cast<int>(prior.mean.size()), dim = p - 1;
  const Eigen::VectorXd prior_shift = prior.precision * prior.mean;
  for (int j = 0; j < modality.channels(); ++j) {
    const auto S_zz = s.second_moment.middleCols(static_cast<Eigen::Index>(j) * p, p);
    const auto S_yz = s.cross.col(j);
    double variance = modality.variances(j);
    Eigen::VectorXd w = prior.mean;
    Eigen::MatrixXd precision = prior.precision;
    for (int alternation = 0; alternation < 5; ++alternation) {
      precision = S_zz / variance + prior.precision;
      w = precision.llt().solve(S_yz / variance + prior_shift);
      const double rss = std::max(0.0, s.sum_squares(j) - 2.0 * w.dot(S_yz) + w.dot(S_zz * w));
      variance = (noise_prior.scale + 0.5 * rss) / (noise_prior.shape + 1.0 + 0.5 * s.observed(j));
    }
    precision = S_zz / variance + prior.precision;
    if (!w.allFinite() || !std::isfinite(variance) || variance <= 0.0)
      throw NumericalError("continuous modality '" + modality.name + "', channel " +
                           std::to_string(j) + ": the readout update is not finite");
    modality.readout.C.row(j) = w.head(dim).transpose();
    modality.readout.d(j) = w(dim);
    modality.readout.precision.middleCols(static_cast<Eigen::Index>(j) * p, p) = precision;
    modality.variances(j) = variance;
  }
}

}  // namespace spikevi
