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

}  // namespace

PredictiveCoverage predictive_coverage(const SpikeModel& model, const RowParameters& row_parameters,
                                       const std::vector<Eigen::MatrixXd>& eta_mean,
                                       const std::vector<Eigen::MatrixXd>& eta_variance,
                                       const std::vector<Eigen::MatrixXd>& counts,
                                       const std::vector<int>& trial_ids,
                                       const PredictiveCoverageSettings& settings) {
  check_input(eta_mean, eta_variance, counts, trial_ids, settings);
  PredictiveCoverage result;
  result.levels = settings.levels;
  for (int i = 1; i <= settings.curve_points; ++i)
    result.curve_levels.push_back(static_cast<double>(i) / (settings.curve_points + 1));
  const Eigen::Index rows = counts[0].rows();
  const auto level_count = static_cast<Eigen::Index>(settings.levels.size());
  Eigen::MatrixXd inside = Eigen::MatrixXd::Zero(rows, level_count);
  Eigen::VectorXd scored = Eigen::VectorXd::Zero(rows);
  std::vector<double> curve_inside(result.curve_levels.size(), 0.0);
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
        const double distance = std::abs(randomised_pit(model, row_values, x, eta_mean[k](n, t),
                                                        eta_variance[k](n, t), eta, stream) -
                                         0.5);
        scored(n) += 1.0;
        for (Eigen::Index l = 0; l < level_count; ++l)
          inside(n, l) += distance <= 0.5 * settings.levels[static_cast<std::size_t>(l)];
        for (std::size_t c = 0; c < curve_inside.size(); ++c)
          curve_inside[c] += distance <= 0.5 * result.curve_levels[c];
      }
    }
  }
  result.scored = scored.sum();
  if (!(result.scored > 0)) throw InputError("predictive coverage: no count to score");
  result.per_neuron = inside.array().colwise() / scored.array().max(1.0);
  for (Eigen::Index l = 0; l < level_count; ++l)
    result.pooled.push_back(inside.col(l).sum() / result.scored);
  for (double c : curve_inside) result.curve_coverage.push_back(c / result.scored);
  return result;
}

}  // namespace spikevi
