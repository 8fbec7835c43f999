#include "spikevi/evaluation/lagged_ridge.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/decoding.hpp"

namespace spikevi {
namespace {

// One row per bin: the counts of bins t, t-1, ..., t-lags side by side (zeros before t = 0).
Eigen::MatrixXd lagged_features(const Eigen::MatrixXd& counts, int lags) {
  const Eigen::Index neurons = counts.rows(), bins = counts.cols();
  Eigen::MatrixXd features = Eigen::MatrixXd::Zero(bins, neurons * (lags + 1));
  for (int lag = 0; lag <= lags; ++lag)
    for (Eigen::Index t = lag; t < bins; ++t)
      features.block(t, lag * neurons, 1, neurons) = counts.col(t - lag).transpose();
  return features;
}

struct Stacked {
  Eigen::MatrixXd features;  // bins x F
  Eigen::MatrixXd values;    // bins x channels
};

Stacked stack(const std::vector<Eigen::MatrixXd>& counts,
              const std::vector<Eigen::MatrixXd>& values, const std::vector<std::size_t>& trials,
              int lags) {
  Eigen::Index rows = 0;
  for (std::size_t k : trials) rows += counts[k].cols();
  Stacked s{Eigen::MatrixXd(rows, counts.front().rows() * (lags + 1)),
            Eigen::MatrixXd(rows, values.front().rows())};
  Eigen::Index at = 0;
  for (std::size_t k : trials) {
    const Eigen::Index bins = counts[k].cols();
    s.features.middleRows(at, bins) = lagged_features(counts[k], lags);
    s.values.middleRows(at, bins) = values[k].transpose();
    at += bins;
  }
  return s;
}

// Ridge on standardised features per channel, over that channel's observed rows; the result
// expressed on the raw features.
LaggedRidge solve(const Stacked& data, int lags, double ridge) {
  const Eigen::Index features = data.features.cols(), channels = data.values.cols();
  LaggedRidge fit;
  fit.lags = lags;
  fit.ridge = ridge;
  fit.weights.resize(channels, features);
  fit.intercept.resize(channels);
  for (Eigen::Index j = 0; j < channels; ++j) {
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < data.values.rows(); ++i)
      if (!std::isnan(data.values(i, j))) rows.push_back(i);
    if (rows.empty())
      throw InputError("lagged ridge: channel " + std::to_string(j) +
                       " has no observed value in the training trials");
    const Eigen::MatrixXd x = data.features(rows, Eigen::all);
    const Eigen::VectorXd y = data.values(rows, j);
    const double n = static_cast<double>(rows.size());
    const Eigen::RowVectorXd mean = x.colwise().mean();
    Eigen::RowVectorXd scale = ((x.rowwise() - mean).colwise().squaredNorm() / n).cwiseSqrt();
    for (Eigen::Index f = 0; f < features; ++f)
      if (!(scale(f) > 0)) scale(f) = 1.0;  // a constant feature: its weight stays 0
    const Eigen::MatrixXd z = (x.rowwise() - mean).array().rowwise() / scale.array();
    const double y_mean = y.mean();
    Eigen::MatrixXd gram = z.transpose() * z;
    gram.diagonal().array() += ridge * n;
    const Eigen::VectorXd w = gram.ldlt().solve(z.transpose() * (y.array() - y_mean).matrix());
    fit.weights.row(j) = (w.array() / scale.transpose().array()).transpose();
    fit.intercept(j) = y_mean - fit.weights.row(j).dot(mean);
  }
  return fit;
}

double validation_r_squared(const std::vector<Eigen::MatrixXd>& counts,
                            const std::vector<Eigen::MatrixXd>& values, int folds, int lags,
                            double ridge) {
  std::vector<Eigen::MatrixXd> predictions(counts.size()), observed(counts.size());
  for (int f = 0; f < folds; ++f) {
    std::vector<std::size_t> fitted, held;
    for (std::size_t k = 0; k < counts.size(); ++k)
      (static_cast<int>(k % static_cast<std::size_t>(folds)) == f ? held : fitted).push_back(k);
    const LaggedRidge fit = solve(stack(counts, values, fitted, lags), lags, ridge);
    for (std::size_t k : held) predictions[k] = fit.predict({counts[k]}).front();
  }
  return r_squared(predictions, values);
}

void check_input(const std::vector<Eigen::MatrixXd>& counts,
                 const std::vector<Eigen::MatrixXd>& values, const LaggedRidgeSettings& s) {
  if (s.lags < 0) throw ConfigError("lagged ridge: lags must be >= 0");
  if (s.folds < 2) throw ConfigError("lagged ridge: folds must be >= 2");
  if (s.ridge < 0) throw ConfigError("lagged ridge: ridge must be >= 0");
  for (double r : s.ridge_candidates)
    if (!(r >= 0)) throw ConfigError("lagged ridge: ridge candidates must be >= 0");
  if (counts.empty() || counts.size() != values.size())
    throw InputError("lagged ridge: " + std::to_string(counts.size()) + " count trials and " +
                     std::to_string(values.size()) + " value trials (need the same, >= 1)");
  for (std::size_t k = 0; k < counts.size(); ++k)
    if (counts[k].cols() != values[k].cols() || counts[k].rows() != counts.front().rows() ||
        values[k].rows() != values.front().rows())
      throw InputError("lagged ridge: trial " + std::to_string(k) +
                       " has counts and values of inconsistent shapes");
}

}  // namespace

std::vector<Eigen::MatrixXd> LaggedRidge::predict(
    const std::vector<Eigen::MatrixXd>& counts) const {
  std::vector<Eigen::MatrixXd> out;
  out.reserve(counts.size());
  for (const Eigen::MatrixXd& trial : counts)
    out.push_back(
        ((lagged_features(trial, lags) * weights.transpose()).rowwise() + intercept.transpose())
            .transpose());
  return out;
}

LaggedRidge fit_lagged_ridge(const std::vector<Eigen::MatrixXd>& counts,
                             const std::vector<Eigen::MatrixXd>& values,
                             const LaggedRidgeSettings& settings) {
  check_input(counts, values, settings);
  const int folds = std::min<int>(settings.folds, static_cast<int>(counts.size()));
  double ridge = settings.ridge;
  std::vector<double> scores;
  if (settings.ridge_candidates.size() >= 2 && folds >= 2) {
    double best = -std::numeric_limits<double>::infinity();
    for (double candidate : settings.ridge_candidates) {
      scores.push_back(validation_r_squared(counts, values, folds, settings.lags, candidate));
      if (scores.back() > best) best = scores.back(), ridge = candidate;
    }
  }
  std::vector<std::size_t> all(counts.size());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
  LaggedRidge fit = solve(stack(counts, values, all, settings.lags), settings.lags, ridge);
  fit.cv_r_squared = scores;
  return fit;
}

}  // namespace spikevi
