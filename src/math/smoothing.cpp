#include "spikevi/math/smoothing.hpp"

#include <algorithm>
#include <cmath>

namespace spikevi {

Eigen::MatrixXd gaussian_smooth_rows(const Eigen::MatrixXd& series, double sd_bins) {
  if (sd_bins <= 0.0) return series;
  const Eigen::Index bins = series.cols();
  const int half_width = static_cast<int>(std::ceil(4.0 * sd_bins));
  Eigen::VectorXd kernel(2 * half_width + 1);
  for (int offset = -half_width; offset <= half_width; ++offset)
    kernel(offset + half_width) = std::exp(-0.5 * offset * offset / (sd_bins * sd_bins));

  Eigen::MatrixXd smoothed(series.rows(), bins);
  for (Eigen::Index t = 0; t < bins; ++t) {
    const Eigen::Index first = std::max<Eigen::Index>(0, t - half_width);
    const Eigen::Index last = std::min<Eigen::Index>(bins - 1, t + half_width);
    const auto weights = kernel.segment(first - t + half_width, last - first + 1);
    smoothed.col(t) = series.middleCols(first, last - first + 1) * weights / weights.sum();
  }
  return smoothed;
}

}  // namespace spikevi
