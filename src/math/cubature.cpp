#include "spikevi/math/cubature.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/quadrature.hpp"
#include "spikevi/math/random_stream.hpp"

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

Eigen::MatrixXd haar_orthogonal(int dim, RandomStream& stream) {
  Eigen::MatrixXd gaussian(dim, dim);
  for (Eigen::Index j = 0; j < gaussian.size(); ++j) gaussian.data()[j] = stream.next_normal();
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian);
  Eigen::MatrixXd orthogonal = qr.householderQ();
  for (int i = 0; i < dim; ++i)
    if (qr.matrixQR()(i, i) < 0.0) orthogonal.col(i) *= -1.0;
  return orthogonal;
}

namespace {

// How many rotations of `values_per_rotation` doubles the table holds.
long rotation_count(int rotations, long values_per_rotation) {
  if (rotations < 0)
    throw ConfigError("--cubature-rotations must be >= 0 (got " + std::to_string(rotations) + ")");
  return std::min<long>(rotations,
                        std::max(1L, GaussianCubature::kMaxRotatedValues / values_per_rotation));
}

RandomStream rotation_stream(int dim, long rotation, std::uint64_t rule) {
  return RandomStream({0, RandomPurpose::kCubature}, {static_cast<std::uint64_t>(dim),
                                                      static_cast<std::uint64_t>(rotation), rule});
}

}  // namespace

GaussianCubature GaussianCubature::randomised_spherical_radial(int dim, int rotations) {
  if (dim < 1) throw ConfigError("cubature: the dimension must be >= 1");
  const double d = static_cast<double>(dim);
  const double lowest = std::min(1.0, std::max(0.0, 4.0 / d - 1.0));
  const double highest = std::min(1.0, 4.0 / d);
  // The unrotated nodes at the mean spread a^2 = 2/D (capped at 1), for nodes().
  const auto shells = [&](double spread, const Eigen::MatrixXd& inner,
                          const Eigen::MatrixXd& outer) {
    Eigen::MatrixXd nodes(dim, 4 * dim);
    const double r_inner = std::sqrt(d * (1.0 - spread)), r_outer = std::sqrt(d * (1.0 + spread));
    for (int i = 0; i < dim; ++i) {
      nodes.col(4 * i) = r_inner * inner.col(i);
      nodes.col(4 * i + 1) = -r_inner * inner.col(i);
      nodes.col(4 * i + 2) = r_outer * outer.col(i);
      nodes.col(4 * i + 3) = -r_outer * outer.col(i);
    }
    return nodes;
  };
  const Eigen::MatrixXd identity = Eigen::MatrixXd::Identity(dim, dim);
  GaussianCubature out(shells(std::sqrt(std::min(1.0, 2.0 / d)), identity, identity),
                       Eigen::VectorXd::Constant(4 * dim, 0.25 / d));
  const long count = rotation_count(rotations, 4L * dim * dim);
  if (rotations == 0) return out;
  out.turned_nodes_.reserve(static_cast<std::size_t>(count));
  for (long r = 0; r < count; ++r) {
    RandomStream stream = rotation_stream(dim, r, 1);
    const Eigen::MatrixXd inner = haar_orthogonal(dim, stream);
    const Eigen::MatrixXd outer = haar_orthogonal(dim, stream);
    const double spread = std::sqrt(lowest + (highest - lowest) * stream.next_uniform());
    out.turned_nodes_.push_back(shells(spread, inner, outer));
  }
  return out;
}

GaussianCubature GaussianCubature::rotated(int rotations) const {
  GaussianCubature out(nodes_, weights_);
  const long count = rotation_count(rotations, static_cast<long>(nodes_.size()));
  if (rotations == 0) return out;
  out.turned_nodes_.reserve(static_cast<std::size_t>(count));
  for (long r = 0; r < count; ++r) {
    RandomStream stream = rotation_stream(dim(), r, 0);
    out.turned_nodes_.push_back(haar_orthogonal(dim(), stream) * nodes_);
  }
  return out;
}

}  // namespace spikevi
