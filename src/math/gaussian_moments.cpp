#include "spikevi/math/gaussian_moments.hpp"

#include <cmath>
#include <numbers>

namespace spikevi {

// H = (T D / 2) log(2 pi e) - log|J| / 2 (DESIGN.md §2).
double GaussianMoments::entropy() const {
  const double dims = static_cast<double>(dim()) * bins();
  return 0.5 * dims * (std::log(2.0 * std::numbers::pi) + 1.0) - 0.5 * log_det_precision;
}

}  // namespace spikevi
