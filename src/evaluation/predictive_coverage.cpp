#include "spikevi/evaluation/predictive_coverage.hpp"

#include <cmath>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

void check_input(const std::vector<Eigen::MatrixXd>& eta_mean,
                 const std::vector<Eigen::MatrixXd>& eta_variance,
                 const std::vector<Eigen::MatrixXd>& counts, const std::vector<int>& trial_ids,
                 const PredictiveCoverageSettings& settings) {
  if (settings.draws < 1) throw ConfigError("predictive coverage: draws must be >= 1");
  for (double level : settings.levels)
    if (!(level > 0.0 && level < 1.0))
      throw ConfigError("predictive coverage: levels must lie in (0, 1), got " +
                        std::to_string(level));
  if (eta_mean.size() != counts.size() || eta_variance.size() != counts.size() ||
      trial_ids.size() != counts.size() || counts.empty())
    throw InputError("predictive coverage: the trials of the predictions and counts differ");
  for (std::size_t k = 0; k < counts.size(); ++k)
    if (eta_mean[k].rows() != counts[k].rows() || eta_mean[k].cols() != counts[k].cols() ||
        eta_variance[k].rows() != counts[k].rows() || eta_variance[k].cols() != counts[k].cols() ||
        counts[k].rows() != counts[0].rows())
      throw InputError("predictive coverage: trial " + std::to_string(k) +
                       " has predictions and counts of different shapes");
}

// The randomised PIT of count x among `draws` predictive draws at eta ~ N(mu, s2): its
// randomised rank (below + V (equal + 1)) / (draws + 1), exactly uniform when x and the draws
// are exchangeable (a calibrated prediction), whatever the number of draws. `eta` is scratch
// of `draws` entries, so that the link is applied once per count, not once per draw.
double randomised_pit(const SpikeModel& model, const std::vector<double>& row_values, double x,
                      double mu, double s2, Eigen::ArrayXXd& eta, RandomStream& stream) {
  const double sd = std::sqrt(std::max(s2, 0.0));
  for (Eigen::Index s = 0; s < eta.rows(); ++s) eta(s, 0) = mu + sd * stream.next_normal();
  const Eigen::ArrayXXd means = model.mean_of(eta);
  int below = 0, equal = 0;
  for (Eigen::Index s = 0; s < eta.rows(); ++s) {
    const double draw = model.draw(means(s, 0), row_values, stream);
    below += draw < x;
    equal += draw == x;
  }
  return (below + stream.next_uniform() * (equal + 1)) / static_cast<double>(eta.rows() + 1);
}

// Counts PIT values |u - 1/2| per row into the intervals of every level and of the curve.
class CoverageTally {
 public:
  CoverageTally(Eigen::Index rows, const PredictiveCoverageSettings& settings)
      : inside_(Eigen::MatrixXd::Zero(rows, static_cast<Eigen::Index>(settings.levels.size()))),
        scored_(Eigen::VectorXd::Zero(rows)) {
    result_.levels = settings.levels;
    for (int i = 1; i <= settings.curve_points; ++i)
      result_.curve_levels.push_back(static_cast<double>(i) / (settings.curve_points + 1));
    curve_inside_.assign(result_.curve_levels.size(), 0.0);
  }

  // u: the PIT of one value of row `row`; inside the central level-a interval iff
  // |u - 1/2| <= a/2.
  void add(Eigen::Index row, double u) {
    const double distance = std::abs(u - 0.5);
    scored_(row) += 1.0;
    for (Eigen::Index l = 0; l < inside_.cols(); ++l)
      inside_(row, l) += distance <= 0.5 * result_.levels[static_cast<std::size_t>(l)];
    for (std::size_t c = 0; c < curve_inside_.size(); ++c)
      curve_inside_[c] += distance <= 0.5 * result_.curve_levels[c];
  }

  PredictiveCoverage finish(const std::string& what) {
    result_.scored = scored_.sum();
    if (!(result_.scored > 0)) throw InputError("predictive coverage: no " + what + " to score");
    result_.per_neuron = inside_.array().colwise() / scored_.array().max(1.0);
    for (Eigen::Index l = 0; l < inside_.cols(); ++l)
      result_.pooled.push_back(inside_.col(l).sum() / result_.scored);
    for (double c : curve_inside_) result_.curve_coverage.push_back(c / result_.scored);
    return result_;
  }

 private:
  PredictiveCoverage result_;
  Eigen::MatrixXd inside_;
  Eigen::VectorXd scored_;
  std::vector<double> curve_inside_;
};

void check_levels(const PredictiveCoverageSettings& settings) {
  for (double level : settings.levels)
    if (!(level > 0.0 && level < 1.0))
      throw ConfigError("predictive coverage: levels must lie in (0, 1), got " +
                        std::to_string(level));
}

}  // namespace

PredictiveCoverage predictive_coverage(const SpikeModel& model, const RowParameters& row_parameters,
                                       const std::vector<Eigen::MatrixXd>& eta_mean,
                                       const std::vector<Eigen::MatrixXd>& eta_variance,
                                       const std::vector<Eigen::MatrixXd>& counts,
                                       const std::vector<int>& trial_ids,
                                       const PredictiveCoverageSettings& settings) {
  check_input(eta_mean, eta_variance, counts, trial_ids, settings);
  const Eigen::Index rows = counts[0].rows();
  CoverageTally tally(rows, settings);
  std::vector<double> row_values(row_parameters.count());
  Eigen::ArrayXXd eta(settings.draws, 1);
  for (std::size_t k = 0; k < counts.size(); ++k) {
    for (Eigen::Index n = 0; n < rows; ++n) {
      for (std::size_t p = 0; p < row_parameters.count(); ++p)
        row_values[p] = row_parameters.parameters[p].values(n);
      for (Eigen::Index t = 0; t < counts[k].cols(); ++t) {
        const double x = counts[k](n, t);
        if (std::isnan(x)) continue;
        RandomStream stream({settings.seed, RandomPurpose::kCalibration},
                            {.iteration = static_cast<std::uint64_t>(n),
                             .trial = static_cast<std::uint64_t>(trial_ids[k]),
                             .inner = static_cast<std::uint64_t>(t)});
        tally.add(n, randomised_pit(model, row_values, x, eta_mean[k](n, t), eta_variance[k](n, t),
                                    eta, stream));
      }
    }
  }
  return tally.finish("count");
}

PredictiveCoverage gaussian_predictive_coverage(const std::vector<Eigen::MatrixXd>& mean,
                                                const std::vector<Eigen::MatrixXd>& variance,
                                                const std::vector<Eigen::MatrixXd>& values,
                                                const PredictiveCoverageSettings& settings) {
  check_levels(settings);
  if (mean.size() != values.size() || variance.size() != values.size() || values.empty())
    throw InputError("predictive coverage: the trials of the predictions and values differ");
  const Eigen::Index rows = values[0].rows();
  CoverageTally tally(rows, settings);
  for (std::size_t k = 0; k < values.size(); ++k) {
    if (mean[k].rows() != rows || mean[k].cols() != values[k].cols() ||
        variance[k].rows() != rows || variance[k].cols() != values[k].cols() ||
        values[k].rows() != rows)
      throw InputError("predictive coverage: trial " + std::to_string(k) +
                       " has predictions and values of different shapes");
    for (Eigen::Index j = 0; j < rows; ++j)
      for (Eigen::Index t = 0; t < values[k].cols(); ++t) {
        const double y = values[k](j, t);
        if (std::isnan(y)) continue;
        const double s2 = variance[k](j, t);
        if (!(s2 > 0.0) || !std::isfinite(s2))
          throw NumericalError("predictive coverage: predictive variance " + std::to_string(s2) +
                               " of channel " + std::to_string(j) + " in trial " +
                               std::to_string(k));
        // The exact PIT of a continuous prediction: Phi((y - mean) / sd).
        tally.add(j, 0.5 * std::erfc(-(y - mean[k](j, t)) / std::sqrt(2.0 * s2)));
      }
  }
  return tally.finish("value");
}

}  // namespace spikevi
