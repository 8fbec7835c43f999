#pragma once
// The Gaussian expectations of the softplus family's pointwise terms (softplus_terms.hpp) by
// Gauss–Hermite quadrature, each entry with the rule its own s2 needs (issue 17; private to
// src/model/spike/).
#include <Eigen/Dense>
#include <array>

#include "spikevi/math/quadrature.hpp"

namespace spikevi {

// With u ~ N(mu - shift, s2), p = sigmoid(u), q = 1 - p, element-wise over N x T arrays:
//   of[kSoftplus] = E softplus(u), of[kP] = E p, of[kPQ] = E p q,
//   of[kPQSkew] = E p q (q - p), of[kPQKurt] = E p q (1 - 6 p q), of[kPSquared] = E p^2.
// The first five are the terms kSoftplusNodeSchedule's promise is measured on (1e-10 of a
// 200-node rule); f = x eta - n softplus(eta - shift) has E f = x mu - n E softplus(u) and
// E f^(k) = -n times the k-th of them (x eta is integrated exactly, outside the rule).
struct SoftplusMoments {
  enum Moment { kSoftplus, kP, kPQ, kPQSkew, kPQKurt, kPSquared, kCount };
  std::array<Eigen::ArrayXXd, kCount> of;
};

// All six moments, each entry by the rule ladder.for_variance(s2 of that entry), so an entry's
// moments depend only on its own mu, s2 and shift: the same bits whichever other entries share
// the call (rows, bins, ranks, threads). `shifts` has one value per row, or none for 0.
//
// The last result of each thread is kept with its inputs; a call with bitwise the same mu, s2,
// shifts and ladder returns it without integrating again (the local step's last ELBO
// evaluation, then the readout and row-parameter statistics at the same q). The reference is
// valid until the thread's next call. InputError when mu, s2 and shifts do not fit together.
const SoftplusMoments& softplus_moments(const GaussHermiteLadder& ladder, const Eigen::ArrayXXd& mu,
                                        const Eigen::ArrayXXd& s2, const Eigen::ArrayXd& shifts);

}  // namespace spikevi
