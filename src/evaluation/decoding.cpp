#include "spikevi/evaluation/decoding.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {

ModalityPredictive modality_predictive(const ContinuousReadout& modality,
                                       const std::vector<GaussianMoments>& latents) {
  const Eigen::MatrixXd& W = modality.readout.C;
  ModalityPredictive predictive;
  for (const GaussianMoments& q : latents) {
    Eigen::MatrixXd variance(W.rows(), q.bins());
    for (int t = 0; t < q.bins(); ++t)
      // w_j' S_t w_j for every channel: the row sums of (W S_t) .* W
      variance.col(t) = (W * q.cov_block(t)).cwiseProduct(W).rowwise().sum() + modality.variances;
    predictive.mean.push_back((W * q.mean).colwise() + modality.readout.d);
    predictive.variance.push_back(std::move(variance));
  }
  return predictive;
}

ContinuousReadout refit_modality_readout(const std::string& name,
                                         const std::vector<Eigen::MatrixXd>& values,
                                         const std::vector<GaussianMoments>& latents,
                                         const ReadoutPrior& prior, const NoisePrior& noise_prior) {
  if (values.size() != latents.size() || values.empty())
    throw InputError("decoding: " + std::to_string(values.size()) + " trials of /continuous/" +
                     name + " for " + std::to_string(latents.size()) + " inferred trials");
  const int channels = static_cast<int>(values.front().rows());
  ContinuousReadout modality = make_continuous_readout(name, channels, prior);
  for (std::size_t k = 0; k < values.size(); ++k)
    modality.statistics.add_trial_means(values[k].array(), latents[k].mean);
  solve_continuous_readout(modality, prior, noise_prior);
  // R_j from the residuals less the latents' own share of the predictive variance.
  const ModalityPredictive at_zero_noise = [&] {
    ContinuousReadout noiseless = modality;
    noiseless.variances.setZero();
    return modality_predictive(noiseless, latents);
  }();
  Eigen::ArrayXd excess = Eigen::ArrayXd::Zero(channels), squares = excess, count = excess;
  for (std::size_t k = 0; k < values.size(); ++k)
    for (Eigen::Index t = 0; t < values[k].cols(); ++t)
      for (Eigen::Index j = 0; j < channels; ++j) {
        const double y = values[k](j, t);
        if (std::isnan(y)) continue;
        const double residual2 = std::pow(y - at_zero_noise.mean[k](j, t), 2);
        squares(j) += residual2;
        excess(j) += residual2 - at_zero_noise.variance[k](j, t);
        count(j) += 1.0;
      }
  for (Eigen::Index j = 0; j < channels; ++j)
    if (count(j) > 0.0) modality.variances(j) = std::max(excess(j), 1e-3 * squares(j)) / count(j);
  return modality;
}

DecodedModality predict_modality(const ContinuousReadout& modality,
                                 const std::vector<GaussianMoments>& latents, double level) {
  if (!(level > 0.0 && level < 1.0))
    throw ConfigError("--level must be in (0, 1) (got " + std::to_string(level) + ")");
  const double z = boost::math::quantile(boost::math::normal(), 0.5 + 0.5 * level);
  ModalityPredictive predictive = modality_predictive(modality, latents);
  DecodedModality decoded;
  for (std::size_t k = 0; k < latents.size(); ++k) {
    const Eigen::MatrixXd spread = predictive.variance[k].cwiseSqrt() * z;
    decoded.lower.push_back(predictive.mean[k] - spread);
    decoded.upper.push_back(predictive.mean[k] + spread);
    decoded.mean.push_back(std::move(predictive.mean[k]));
  }
  return decoded;
}

namespace {

void check_shapes(const std::vector<Eigen::MatrixXd>& predictions,
                  const std::vector<Eigen::MatrixXd>& values) {
  if (predictions.size() != values.size())
    throw InputError("decoding: " + std::to_string(predictions.size()) + " predicted trials for " +
                     std::to_string(values.size()) + " observed");
  for (std::size_t k = 0; k < values.size(); ++k)
    if (predictions[k].rows() != values[k].rows() || predictions[k].cols() != values[k].cols())
      throw InputError("decoding: trial " + std::to_string(k) + " has predictions of shape " +
                       std::to_string(predictions[k].rows()) + " x " +
                       std::to_string(predictions[k].cols()) + " for values of shape " +
                       std::to_string(values[k].rows()) + " x " + std::to_string(values[k].cols()));
}

}  // namespace

double r_squared(const std::vector<Eigen::MatrixXd>& predictions,
                 const std::vector<Eigen::MatrixXd>& values) {
  check_shapes(predictions, values);
  const Eigen::Index channels = values.empty() ? 0 : values.front().rows();
  Eigen::ArrayXd sum = Eigen::ArrayXd::Zero(channels), count = sum;
  for (const Eigen::MatrixXd& y : values)
    for (Eigen::Index t = 0; t < y.cols(); ++t)
      for (Eigen::Index j = 0; j < channels; ++j)
        if (!std::isnan(y(j, t))) {
          sum(j) += y(j, t);
          count(j) += 1.0;
        }
  if (count.sum() == 0.0) throw InputError("decoding: no observed values to score");
  const Eigen::ArrayXd channel_mean = sum / count.max(1.0);
  double residual = 0.0, total = 0.0;
  for (std::size_t k = 0; k < values.size(); ++k)
    for (Eigen::Index t = 0; t < values[k].cols(); ++t)
      for (Eigen::Index j = 0; j < channels; ++j) {
        const double y = values[k](j, t);
        if (std::isnan(y)) continue;
        residual += std::pow(y - predictions[k](j, t), 2);
        total += std::pow(y - channel_mean(j), 2);
      }
  return 1.0 - residual / total;
}

DecodingScores score_decoding(const DecodedModality& decoded,
                              const std::vector<Eigen::MatrixXd>& values) {
  DecodingScores scores;
  scores.r_squared = r_squared(decoded.mean, values);
  double inside = 0.0;
  for (std::size_t k = 0; k < values.size(); ++k)
    for (Eigen::Index i = 0; i < values[k].size(); ++i) {
      const double y = values[k].data()[i];
      if (std::isnan(y)) continue;
      scores.observed += 1.0;
      if (y >= decoded.lower[k].data()[i] && y <= decoded.upper[k].data()[i]) inside += 1.0;
    }
  scores.coverage = inside / scores.observed;
  return scores;
}

}  // namespace spikevi
