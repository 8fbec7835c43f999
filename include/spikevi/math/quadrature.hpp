#pragma once
// Gauss–Hermite quadrature for expectations under a scalar Gaussian (DESIGN.md §1, §6): the
// observation models without a closed form (negative binomial, Bernoulli) take
// E h(eta), eta ~ N(mu, s2), as
//   E h(eta) = (1 / sqrt(pi)) sum_i w_i h(mu + sqrt(2 s2) t_i)
// over the n-point physicists' rule (t_i, w_i) for the weight e^{-t^2}, exact whenever h is a
// polynomial of degree <= 2n - 1.
#include <Eigen/Dense>
#include <array>
#include <string>
#include <utility>

#include "spikevi/error.hpp"

namespace spikevi {

// The n-point rule for integral e^{-t^2} h(t) dt ~ sum_i w_i h(t_i), 1 <= n <= kMaxPoints.
// Nodes by Golub & Welsch (1969): the eigenvalues of the symmetric tridiagonal Jacobi matrix of
// the monic Hermite recurrence p_{k+1} = t p_k - (k/2) p_{k-1}, polished by Newton steps on the
// orthonormal recurrence; weights from the Christoffel function w_i = 1 / sum_{k<n} P_k(t_i)^2
// (P_k orthonormal), a sum of positive terms, so tiny tail weights keep full relative accuracy.
// Throws ConfigError for n outside [1, kMaxPoints].
class GaussHermiteRule {
 public:
  // Above ~256 points the orthonormal polynomials at the outer nodes (~e^{t^2/2}) overflow.
  static constexpr int kMaxPoints = 256;

  explicit GaussHermiteRule(int points);

  int points() const { return static_cast<int>(nodes_.size()); }
  // Ascending, exactly antisymmetric (t_i = -t_{n-1-i}; the middle one is 0 for odd n).
  const Eigen::ArrayXd& nodes() const { return nodes_; }
  // Symmetric, positive, summing to sqrt(pi).
  const Eigen::ArrayXd& weights() const { return weights_; }
  // weights / sqrt(pi): the probabilities with which E h(eta) weighs h at each node.
  const Eigen::ArrayXd& gaussian_weights() const { return gaussian_weights_; }

 private:
  Eigen::ArrayXd nodes_, weights_, gaussian_weights_;
};

// f^{(k)}(eta) for k = 0..4 at one column of points (one entry per row of the N x T arrays).
// `wanted[k]` says which orders the caller accumulates; of_order[k] is sized to the column for
// exactly those, and a callable may skip the others (e.g. a logarithm needed only by f itself).
struct PointwiseDerivatives {
  std::array<bool, 5> wanted{};
  std::array<Eigen::ArrayXd, 5> of_order;
};

// Where E f^{(k)}(eta) goes for k = 0..4; nullptr = not wanted. A target is resized to the
// shape of mu and overwritten, so targets must be distinct arrays, none of them mu or s2. With f =
// log p(x | eta): ell = E f, g = E f', G = E f'' / 2 (Price's theorem), and the readout step's E
// f'', E f''', E f''''.
using ExpectationTargets = std::array<Eigen::ArrayXXd*, 5>;

// Element-wise over N x T arrays mu, s2 (s2 >= 0): E f^{(k)}(eta), eta ~ N(mu(i, j), s2(i, j)),
// for the wanted k. `derivatives(column, eta, at)` fills at.of_order[k] (k wanted) with
// f^{(k)} at the points eta (ArrayXd, one per row) of that column, so a model supplies only
// its pointwise log-likelihood derivatives and may vectorise over the column. No allocation
// happens per element or per node: the buffers are one column each, made once per call.
// Nodes are summed in pairs (t_i, -t_i) from the tails inwards, smallest weights first.
template <class ColumnDerivatives>
void gaussian_expectations(const GaussHermiteRule& rule, const Eigen::ArrayXXd& mu,
                           const Eigen::ArrayXXd& s2, ColumnDerivatives&& derivatives,
                           const ExpectationTargets& targets) {
  using Eigen::Index;
  if (mu.rows() != s2.rows() || mu.cols() != s2.cols()) {
    throw InputError("gaussian_expectations: mu is " + std::to_string(mu.rows()) + " x " +
                     std::to_string(mu.cols()) + " but s2 is " + std::to_string(s2.rows()) + " x " +
                     std::to_string(s2.cols()));
  }
  const Index rows = mu.rows();
  PointwiseDerivatives at;
  for (int k = 0; k < 5; ++k) {
    at.wanted[k] = targets[k] != nullptr;
    if (!at.wanted[k]) continue;
    at.of_order[k].resize(rows);
    targets[k]->setZero(rows, mu.cols());
  }
  const Eigen::ArrayXd& t = rule.nodes();
  const Eigen::ArrayXd& w = rule.gaussian_weights();
  const int n = rule.points();
  Eigen::ArrayXd spread(rows), eta(rows);
  for (Index col = 0; col < mu.cols(); ++col) {
    spread = (2.0 * s2.col(col)).sqrt();
    const auto add_node = [&](int i) {
      eta = mu.col(col) + t(i) * spread;
      derivatives(col, std::as_const(eta), at);
      for (int k = 0; k < 5; ++k) {
        if (at.wanted[k]) targets[k]->col(col) += w(i) * at.of_order[k];
      }
    };
    for (int lower = 0, upper = n - 1; lower <= upper; ++lower, --upper) {
      add_node(lower);
      if (upper != lower) add_node(upper);  // odd n: the middle node once
    }
  }
}

// Scalar form: `point(row, column, eta)` returns {f, f', f'', f''', f''''} at one point (all
// five; the unwanted ones are ignored). Simpler to write, but not vectorised over the column.
template <class PointDerivatives>
void gaussian_expectations_pointwise(const GaussHermiteRule& rule, const Eigen::ArrayXXd& mu,
                                     const Eigen::ArrayXXd& s2, PointDerivatives&& point,
                                     const ExpectationTargets& targets) {
  gaussian_expectations(
      rule, mu, s2,
      [&point](Eigen::Index col, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
        for (Eigen::Index row = 0; row < eta.size(); ++row) {
          const std::array<double, 5> value = point(row, col, eta(row));
          for (int k = 0; k < 5; ++k) {
            if (at.wanted[k]) at.of_order[k](row) = value[k];
          }
        }
      },
      targets);
}

}  // namespace spikevi
