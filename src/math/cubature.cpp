#include "spikevi/math/cubature.hpp"

#include <cmath>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/quadrature.hpp"

namespace spikevi {

GaussianCubature GaussianCubature::spherical_radial(int dim) {
  if (dim < 1) throw ConfigError("cubature: the dimension must be >= 1");
  Eigen::MatrixXd nodes = Eigen::MatrixXd::Zero(dim, 2 * dim);
  const double radius = std::sqrt(static_cast<double>(dim));
  for (int i = 0; i < dim; ++i) {
    nodes(i, 2 * i) = radius;
    nodes(i, 2 * i + 1) = -radius;
  }
  return GaussianCubature(std::move(nodes), Eigen::VectorXd::Constant(2 * dim, 0.5 / dim));
}

GaussianCubature GaussianCubature::gauss_hermite_product(int dim, int points_per_dim) {
  if (dim < 1) throw ConfigError("cubature: the dimension must be >= 1");
  const GaussHermiteRule rule(points_per_dim);
  const double total = std::pow(static_cast<double>(points_per_dim), dim);
  if (total > 100000.0)
    throw ConfigError("cubature: " + std::to_string(points_per_dim) + "^" + std::to_string(dim) +
                      " Gauss-Hermite nodes are too many; use fewer points or the "
                      "spherical-radial rule");
  const auto count = static_cast<Eigen::Index>(total);
  Eigen::MatrixXd nodes(dim, count);
  Eigen::VectorXd weights(count);
  // Node j's coordinate i is the (j / n^i mod n)-th one-dimensional node (for N(0,1): sqrt(2) t).
  for (Eigen::Index j = 0; j < count; ++j) {
    Eigen::Index rest = j;
    double weight = 1.0;
    for (int i = 0; i < dim; ++i) {
      const Eigen::Index k = rest % points_per_dim;
      rest /= points_per_dim;
      nodes(i, j) = std::sqrt(2.0) * rule.nodes()(k);
      weight *= rule.gaussian_weights()(k);
    }
    weights(j) = weight;
  }
  return GaussianCubature(std::move(nodes), std::move(weights));
}

}  // namespace spikevi
