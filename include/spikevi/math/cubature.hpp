#pragma once
// Deterministic cubature for expectations under a D-dimensional Gaussian (the MLP readout's
// expectations, docs/model-and-inference.md "The MLP readout"): E h(z), z ~ N(m, S), as
//   E h(z) ~ sum_j w_j h(m + L xi_j),   S = L L' (Cholesky),
// with standard-normal nodes xi_j (D x J) and positive weights w_j summing to one. A rotated rule
// (rotated()) turns the nodes of bin t by its own random orthogonal matrix, xi_tj = Q_t xi_j.
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

class RandomStream;

class GaussianCubature {
 public:
  // The third-degree spherical-radial (unscented, kappa = 0) rule: J = 2D nodes +-sqrt(D) e_i,
  // weights 1/(2D); exact for every polynomial of degree <= 3 (Arasaratnam & Haykin 2009).
  static GaussianCubature spherical_radial(int dim);
  // The tensor product of the n-point Gauss-Hermite rule (quadrature.hpp) in each dimension:
  // J = n^D nodes, exact for polynomials of degree <= 2n - 1 in each coordinate. ConfigError
  // when n^D exceeds 100000 or n is outside [1, 256].
  static GaussianCubature gauss_hermite_product(int dim, int points_per_dim);

  // The randomised two-shell spherical-radial rule (--readout mlp's default): J = 4D nodes of
  // weight 1/(4D); for bin t, with r = t mod rotations,
  //   +-sqrt(D (1 - a_r)) Q_r e_i   and   +-sqrt(D (1 + a_r)) Q'_r e_i,   i = 1..D,
  // Q_r, Q'_r Haar-random rotations and a_r^2 uniform on [max(0, 4/D - 1), min(1, 4/D)], all
  // from the fixed stream of rotated(). The second moment is I for every a_r, so each bin's rule
  // is exact to degree three like spherical_radial(); for D >= 2, E a_r^2 = 2/D makes the mean
  // fourth radial moment D (D + 2), the Gaussian's, so over the draws the rule is unbiased for
  // every polynomial of degree <= 5. The nodes of different bins fill the whole space, not one
  // sphere. (D = 1: a = 1, nodes 0, 0, +-sqrt(2).) The same cap on the table as rotated().
  static GaussianCubature randomised_spherical_radial(int dim, int rotations);

  // This rule with the nodes of bin t turned by Q_(t mod r), r = min(rotations, what fits in
  // kMaxRotatedValues doubles) Haar-random orthogonal matrices drawn from a fixed stream
  // (purpose kCubature), so the rule is the same in every fit, rank and restart. A rotation maps
  // polynomials of total degree k to polynomials of total degree k, so each bin's rule keeps the
  // unrotated rule's exactness; but the nodes no longer sit at the same few points of every bin's
  // whitened space, where a flexible readout can learn an eta that the rule misjudges
  // (docs/model-and-inference.md "Where the cubature fails"). rotations = 0: unrotated.
  GaussianCubature rotated(int rotations) const;
  static constexpr long kMaxRotatedValues = 1L << 22;

  int dim() const { return static_cast<int>(nodes_.rows()); }
  int points() const { return static_cast<int>(nodes_.cols()); }
  int rotations() const { return static_cast<int>(turned_nodes_.size()); }
  const Eigen::MatrixXd& nodes() const { return nodes_; }  // D x J, unrotated
  // The nodes of bin `bin` (D x J): Q_(bin mod r) nodes(), or nodes() when unrotated.
  const Eigen::MatrixXd& bin_nodes(Eigen::Index bin) const {
    if (turned_nodes_.empty()) return nodes_;
    return turned_nodes_[static_cast<std::size_t>(bin) % turned_nodes_.size()];
  }
  const Eigen::VectorXd& weights() const { return weights_; }  // J

 private:
  GaussianCubature(Eigen::MatrixXd nodes, Eigen::VectorXd weights)
      : nodes_(std::move(nodes)), weights_(std::move(weights)) {}
  Eigen::MatrixXd nodes_;
  Eigen::VectorXd weights_;
  std::vector<Eigen::MatrixXd> turned_nodes_;  // Q_r nodes_ per rotation r; empty: unrotated
};

// A Haar-distributed random orthogonal D x D matrix: the Q of the QR factorisation of a matrix
// of independent standard normals, its columns' signs fixed so that R has a positive diagonal
// (Mezzadri 2007, "How to generate random matrices from the classical compact groups").
Eigen::MatrixXd haar_orthogonal(int dim, RandomStream& stream);

}  // namespace spikevi
