#pragma once
// Deterministic cubature for expectations under a D-dimensional Gaussian (the MLP readout's
// expectations, docs/model-and-inference.md "The MLP readout"): E h(z), z ~ N(m, S), as
//   E h(z) ~ sum_j w_j h(m + L xi_j),   S = L L' (Cholesky),
// with fixed standard-normal nodes xi_j (D x J) and positive weights w_j summing to one.
#include <Eigen/Dense>

namespace spikevi {

class GaussianCubature {
 public:
  // The third-degree spherical-radial (unscented, kappa = 0) rule: J = 2D nodes +-sqrt(D) e_i,
  // weights 1/(2D); exact for every polynomial of degree <= 3 (Arasaratnam & Haykin 2009).
  static GaussianCubature spherical_radial(int dim);
  // The tensor product of the n-point Gauss-Hermite rule (quadrature.hpp) in each dimension:
  // J = n^D nodes, exact for polynomials of degree <= 2n - 1 in each coordinate. ConfigError
  // when n^D exceeds 100000 or n is outside [1, 256].
  static GaussianCubature gauss_hermite_product(int dim, int points_per_dim);

  int dim() const { return static_cast<int>(nodes_.rows()); }
  int points() const { return static_cast<int>(nodes_.cols()); }
  const Eigen::MatrixXd& nodes() const { return nodes_; }      // D x J
  const Eigen::VectorXd& weights() const { return weights_; }  // J

 private:
  GaussianCubature(Eigen::MatrixXd nodes, Eigen::VectorXd weights)
      : nodes_(std::move(nodes)), weights_(std::move(weights)) {}
  Eigen::MatrixXd nodes_;
  Eigen::VectorXd weights_;
};

}  // namespace spikevi
