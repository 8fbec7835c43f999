// Gauss–Hermite rule by Golub & Welsch (1969) with Newton polishing (see quadrature.hpp).
#include "spikevi/math/quadrature.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

namespace spikevi {
namespace {

// Orthonormal Hermite polynomials for the weight e^{-t^2}: with b_k = sqrt(k / 2) (the Jacobi
// matrix's off-diagonal), t P_k = b_{k+1} P_{k+1} + b_k P_{k-1}, P_0 = pi^{-1/4}.
struct HermiteAt {
  double value;        // P_n(t)
  double derivative;   // P_n'(t)
  double christoffel;  // sum_{k<n} P_k(t)^2
};

HermiteAt orthonormal_hermite(int n, double t) {
  double previous = 0.0, current = std::pow(std::numbers::pi, -0.25);
  double previous_d = 0.0, current_d = 0.0;
  double christoffel = 0.0;
  for (int k = 0; k < n; ++k) {
    christoffel += current * current;
    const double b_k = std::sqrt(0.5 * k), b_next = std::sqrt(0.5 * (k + 1));
    const double next = (t * current - b_k * previous) / b_next;
    const double next_d = (current + t * current_d - b_k * previous_d) / b_next;
    previous = current;
    current = next;
    previous_d = current_d;
    current_d = next_d;
  }
  return {current, current_d, christoffel};
}

}  // namespace

GaussHermiteRule::GaussHermiteRule(int points) {
  if (points < 1 || points > kMaxPoints) {
    throw ConfigError("Gauss-Hermite quadrature: " + std::to_string(points) +
                      " nodes; the rule needs between 1 and " + std::to_string(kMaxPoints));
  }
  const int n = points;
  Eigen::MatrixXd jacobi = Eigen::MatrixXd::Zero(n, n);
  for (int k = 1; k < n; ++k) jacobi(k, k - 1) = jacobi(k - 1, k) = std::sqrt(0.5 * k);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(jacobi, Eigen::EigenvaluesOnly);
  Eigen::ArrayXd t = solver.eigenvalues().array();  // ascending

  // The eigenvalues are accurate to ~eps ||J|| absolutely; a few Newton steps on P_n make the
  // nodes near zero accurate relatively too. Stop once a step no longer shrinks.
  for (int i = 0; i < n; ++i) {
    double last_step = std::numeric_limits<double>::infinity();
    for (int iteration = 0; iteration < 10; ++iteration) {
      const HermiteAt p = orthonormal_hermite(n, t(i));
      const double step = p.value / p.derivative;
      if (!std::isfinite(step) || std::abs(step) >= last_step) break;
      t(i) -= step;
      last_step = std::abs(step);
      if (last_step <= 1e-17 * std::max(1.0, std::abs(t(i)))) break;
    }
  }

  weights_.resize(n);
  for (int i = 0; i < n; ++i) weights_(i) = 1.0 / orthonormal_hermite(n, t(i)).christoffel;

  // Exact symmetry: average each node with its mirror image.
  nodes_.resize(n);
  for (int i = 0, j = n - 1; i <= j; ++i, --j) {
    const double node = 0.5 * (t(j) - t(i));
    const double weight = 0.5 * (weights_(i) + weights_(j));
    nodes_(i) = -node;
    nodes_(j) = node;
    weights_(i) = weights_(j) = weight;
  }
  gaussian_weights_ = weights_ / std::sqrt(std::numbers::pi);
}

GaussHermiteLadder::GaussHermiteLadder(int points, std::span<const NodeStep> schedule) {
  double previous_limit = 0.0;
  int previous_points = 0;
  for (const NodeStep& step : schedule) {
    if (step.points <= previous_points || !(step.max_variance > previous_limit))
      throw ConfigError("Gauss-Hermite ladder: the steps must ascend in points and variance");
    previous_points = step.points;
    previous_limit = step.max_variance;
    if (step.points >= points) break;
    rules_.emplace_back(step.points);
    limits_.push_back(step.max_variance);
  }
  rules_.emplace_back(points);
  limits_.push_back(std::numeric_limits<double>::infinity());
}

}  // namespace spikevi
