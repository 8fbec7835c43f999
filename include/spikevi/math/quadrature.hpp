#pragma once
// Gauss–Hermite quadrature for expectations under a scalar Gaussian (DESIGN.md §1, §6): the
// observation models without a closed form (negative binomial, Bernoulli) take
// E h(eta), eta ~ N(mu, s2), as
//   E h(eta) = (1 / sqrt(pi)) sum_i w_i h(mu + sqrt(2 s2) t_i)
// over the n-point physicists' rule (t_i, w_i) for the weight e^{-t^2}, exact whenever h is a
// polynomial of degree <= 2n - 1.
#include <Eigen/Dense>
#include <array>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

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

// A rule with at most n points that uses fewer where the variance is small (issue 17): each step
// (points, max_variance) says that `points` nodes meet the accuracy its schedule was built for
// whenever s2 <= max_variance; steps ascend in both. The n-point rule serves every larger s2,
// and steps with points >= n are dropped, so n stays the most nodes any site gets.
struct NodeStep {
  int points;
  double max_variance;
};

class GaussHermiteLadder {
 public:
  // An empty schedule: the n-point rule everywhere (the fixed rule). ConfigError as for
  // GaussHermiteRule, or for a schedule that does not ascend.
  explicit GaussHermiteLadder(int points, std::span<const NodeStep> schedule = {});

  // The smallest rule whose variance limit covers s2.
  const GaussHermiteRule& for_variance(double s2) const { return rules_[step_for_variance(s2)]; }
  // Its position among the steps: 0 (fewest points) .. steps() - 1 (the largest rule); 0 for a
  // NaN s2.
  std::size_t step_for_variance(double s2) const {
    std::size_t i = 0;
    while (s2 > limits_[i]) ++i;  // the last limit is +infinity
    return i;
  }
  std::size_t steps() const { return rules_.size(); }
  const GaussHermiteRule& step(std::size_t i) const { return rules_[i]; }
  // The largest s2 step i serves (+infinity for the last).
  double limit(std::size_t i) const { return limits_[i]; }
  const GaussHermiteRule& largest() const { return rules_.back(); }
  int points() const { return largest().points(); }
  bool fixed() const { return rules_.size() == 1; }
  // The same steps (points and variance limits).
  bool operator==(const GaussHermiteLadder& other) const {
    if (limits_ != other.limits_) return false;
    for (std::size_t i = 0; i < rules_.size(); ++i)
      if (rules_[i].points() != other.rules_[i].points()) return false;
    return true;
  }

 private:
  std::vector<GaussHermiteRule> rules_;
  std::vector<double> limits_;
};

// The schedule for the softplus family (negative binomial, Bernoulli): with f = x eta -
// n softplus(eta - shift), every E f^{(k)}, k = 0..4, is within 1e-10 n of a 200-node rule
// for any mu and shift (max over mu - shift in [-12, 12]; tests/math/test_quadrature.cpp), so
// the ELBO moves by at most 1e-10 sum n over the entries: ~3e-10 of it on the negative-binomial
// benchmark (perf/README.md "Quadrature nodes by variance"). The limits are 0.7x the largest
// s2 at which that holds. The 20-node rule itself is only that accurate up to s2 ~ 0.55 (at
// s2 = 1 its error is ~5e-8 n), where the ladder hands over to it.
inline constexpr NodeStep kSoftplusNodeSchedule[] = {{4, 4.7e-3}, {6, 2.6e-2}, {8, 6.3e-2},
                                                     {10, 0.108}, {12, 0.157}, {16, 0.26}};
// The schedule for the exponential (Poisson by quadrature): E e^eta within 1e-10 of the exact
// e^{mu + s2/2} relative, the same way (and with it E f^{(k)} for f = x eta - e^eta).
inline constexpr NodeStep kExpNodeSchedule[] = {{4, 1.4e-2}, {6, 0.14},  {8, 0.49},
                                                {10, 1.1},   {12, 1.98}, {16, 4.4}};

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

namespace detail {
// The body of both gaussian_expectations: `rule_of(col)` is the rule of column col.
template <class RuleOfColumn, class ColumnDerivatives>
void expectations_by_column(RuleOfColumn&& rule_of, const Eigen::ArrayXXd& mu,
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
  Eigen::ArrayXd spread(rows), eta(rows);
  for (Index col = 0; col < mu.cols(); ++col) {
    const GaussHermiteRule& rule = rule_of(col);
    const Eigen::ArrayXd& t = rule.nodes();
    const Eigen::ArrayXd& w = rule.gaussian_weights();
    const int n = rule.points();
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

}  // namespace detail

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
  detail::expectations_by_column([&rule](Eigen::Index) -> const GaussHermiteRule& { return rule; },
                                 mu, s2, std::forward<ColumnDerivatives>(derivatives), targets);
}

// The same with a ladder: each column takes the rule for the largest s2 in it
// (ladder.for_variance), so the result depends only on that column's data (bitwise the same
// on any number of ranks and threads).
template <class ColumnDerivatives>
void gaussian_expectations(const GaussHermiteLadder& ladder, const Eigen::ArrayXXd& mu,
                           const Eigen::ArrayXXd& s2, ColumnDerivatives&& derivatives,
                           const ExpectationTargets& targets) {
  const auto rule_of = [&](Eigen::Index col) -> const GaussHermiteRule& {
    if (ladder.fixed() || s2.rows() == 0) return ladder.largest();
    return ladder.for_variance(s2.col(col).maxCoeff());
  };
  detail::expectations_by_column(rule_of, mu, s2, std::forward<ColumnDerivatives>(derivatives),
                                 targets);
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
