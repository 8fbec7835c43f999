#pragma once
// The softplus family of pointwise log-likelihoods shared by the negative binomial, the
// Bernoulli and the softplus-Poisson models (private to src/model/spike/).
#include <Eigen/Dense>

#include "spikevi/math/quadrature.hpp"

namespace spikevi {

// f(eta) = x eta - n softplus(eta - shift), softplus(u) = log(1 + e^u), covers the negative
// binomial (n = x + r, shift = log r, after splitting log(r + e^eta) = log r + softplus(u)) and
// the Bernoulli (n = 1, shift = 0). With p = sigmoid(u), q = 1 - p:
//   f' = x - n p,  f'' = -n p q,  f''' = -n p q (q - p),  f'''' = -n p q (1 - 6 p q).
// Everything is written through the one exponential e = e^{-|u|} in (0, 1], so nothing
// overflows for any eta: with d = 1 / (1 + e), (p, q) = (d, e d) for u >= 0 and (e d, d) for
// u < 0, p q = e d^2, and softplus(u) = max(u, 0) + log1p(e). Eigen 3.4 evaluates select() one
// scalar at a time, so the branch is a blend: p = d (e + (1 - e) h), q = d (1 - (1 - e) h) with
// h = clamp(1e300 u, 0, 1), which is the step H(u) except for |u| < 1e-300, where 1 - e = 0
// anyway. The buffers hold one column, so nothing is allocated per node.
class SoftplusTerms {
 public:
  explicit SoftplusTerms(Eigen::Index rows)
      : u_(rows), e_(rows), d_(rows), softplus_(rows), p_(rows), q_(rows), pq_(rows) {}

  // softplus(u) is only formed when `with_value` (the log is the costliest part).
  template <class Shift>
  void evaluate(const Eigen::ArrayXd& eta, const Shift& shift, bool with_value) {
    u_ = eta - shift;
    e_ = (-u_.abs()).exp();
    d_ = 1.0 / (1.0 + e_);
    pq_ = (1.0 - e_) * (1e300 * u_).max(0.0).min(1.0);  // (1 - e) h, in pq_ for two lines
    p_ = d_ * (e_ + pq_);
    q_ = d_ * (1.0 - pq_);
    pq_ = e_ * d_.square();
    if (with_value) {
      // log1p(e) for e in (0, 1], vectorisable: with y = fl(1 + e), e - (y - 1) is the exact
      // rounding error of y, and log1p(e) = log y + (e - (y - 1)) / y up to its square;
      // a few ulp, and e itself when y rounds to 1.
      softplus_ = 1.0 + e_;  // y
      softplus_ = softplus_.log() + (e_ - (softplus_ - 1.0)) / softplus_;
      softplus_ += u_.max(0.0);
    }
  }

  // f^{(k)} for the wanted k, given the counts x and the "trials" n of this column.
  template <class Counts, class Trials>
  void likelihood(const Counts& x, const Trials& n, const Eigen::ArrayXd& eta,
                  PointwiseDerivatives& at) const {
    if (at.wanted[0]) at.of_order[0] = x * eta - n * softplus_;
    if (at.wanted[1]) at.of_order[1] = x - n * p_;
    if (at.wanted[2]) at.of_order[2] = -n * pq_;
    if (at.wanted[3]) at.of_order[3] = -n * pq_ * (q_ - p_);
    if (at.wanted[4]) at.of_order[4] = -n * pq_ * (1.0 - 6.0 * pq_);
  }

  Eigen::Index rows() const { return u_.size(); }
  const Eigen::ArrayXd& softplus() const { return softplus_; }
  const Eigen::ArrayXd& p() const { return p_; }
  const Eigen::ArrayXd& q() const { return q_; }
  const Eigen::ArrayXd& pq() const { return pq_; }

 private:
  Eigen::ArrayXd u_, e_, d_, softplus_, p_, q_, pq_;
};

// One SoftplusTerms per thread, resized to the column: pointwise() is called per column and
// node, and must not allocate there.
inline SoftplusTerms& softplus_scratch(Eigen::Index rows) {
  thread_local SoftplusTerms terms(0);
  if (terms.rows() != rows) terms = SoftplusTerms(rows);
  return terms;
}

}  // namespace spikevi
