#pragma once
// Element-wise functions of whole arrays for the encoder's inference path (site_encoder.hpp),
// the MLP readout's hidden units (mlp_readout.hpp) and the softplus family's quadrature nodes
// (src/model/spike/softplus_moments.cpp). Eigen 3.4 vectorises only exp and log for doubles;
// its tanh and log1p call the scalar libm routine per element, which cost most of the encoder's
// forward pass (and a sixth of an MLP fit's time). Accuracy against libm,
// tested in tests/math/test_elementwise.cpp:
//   * log1p_counts: the same bits as std::log1p (a table of std::log1p(k) for small integers;
//     only -0.0 differs: it gives +0.0).
//   * tanh_in_place, softplus_in_place: within a few ulp of std::tanh and of
//     std::log1p(std::exp(x)) (softplus: where that is above 1e-300; below, both are).
#include <Eigen/Dense>

namespace spikevi {

// u = log(1 + x) element-wise for counts x (N x T; any x >= -1 is accepted): the integers
// 0..kLog1pTableSize-1 read a table of std::log1p(k), every other value calls std::log1p, so
// the result is bitwise that of counts.log1p() (but +0.0 for -0.0).
inline constexpr int kLog1pTableSize = 64;
void log1p_counts(const Eigen::ArrayXXd& counts, Eigen::MatrixXd& u);
// The same for the `size` values at x, into out (which may be x).
void log1p_counts(const double* x, Eigen::Index size, double* out);

// x <- tanh(x) by Cephes' method: 1 - 2 / (e^{2|x|} + 1) (sign restored) for |x| > 0.625,
// |x| capped at 20 where tanh is 1 in double, and a rational function of x^2 below.
// Non-finite entries get std::tanh.
void tanh_in_place(Eigen::MatrixXd& x);

// x <- softplus(x) = log(1 + e^x), x itself above 30 (as SiteEncoder's scalar softplus), with
// log1p(e) = log(1 + e) e / ((1 + e) - 1) (the same cancellation; e when 1 + e rounds to 1).
void softplus_in_place(Eigen::MatrixXd& x);

// log1p(e) and 1 / (1 + e) for e in [0, 1], element-wise over a fixed-size array, with one
// division between them (Eigen's log and its inverse take one each, and the log is the costlier
// half of a softplus node). With 1 + e = 2^k (1 + f): k = 1, f = (e - 1) / 2 where
// e > sqrt(2) - 1, else k = 0, f = e; then log1p(e) = k log 2 + 2 atanh(s), s = f / (2 + f),
// |s| <= 0.172, by the series 2 sum_m s^(2m+1) / (2m+1) to s^23 (the rest is below 1e-18 of
// it). s and 1 / (1 + e) both come from R = 1 / ((1 + e)(2 + f)), each refined by one Newton
// step. log1p is within 3 ulp of std::log1p (2 where the build has FMA), the reciprocal within
// 1 ulp of 1 / (1 + e) (tests/math/test_elementwise.cpp). e outside [0, 1] is not supported.
template <int N>
void log1p_and_reciprocal(const Eigen::Array<double, N, 1>& e, Eigen::Array<double, N, 1>& log1p,
                          Eigen::Array<double, N, 1>& reciprocal) {
  using Lanes = Eigen::Array<double, N, 1>;
  Lanes k, f;
  for (int l = 0; l < N; ++l) {  // a masked blend once vectorised
    const bool halve = e[l] > 0.41421356237309503;
    k[l] = halve ? 1.0 : 0.0;
    f[l] = halve ? 0.5 * (e[l] - 1.0) : e[l];
  }
  const Lanes y = 1.0 + e, two_f = 2.0 + f;
  const Lanes r = (y * two_f).inverse();
  Lanes d = two_f * r;
  d += d * (1.0 - d * y);
  Lanes s = f * (y * r);
  s += (f - s * two_f) * (y * r);
  const Lanes s2 = s.square();
  Lanes series = Lanes::Constant(1.0 / 23.0);  // sum_{m>=1} s^(2m-2) / (2m+1)
  for (const double c : {1.0 / 21.0, 1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0,
                         1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0})
    series = series * s2 + c;
  // log 2 as a head with trailing zero bits and a tail (Cephes' split), so k log 2 is exact.
  log1p = k * 6.93147180369123816490e-01 +
          (2.0 * s + (2.0 * s * s2 * series + k * 1.90821492927058770002e-10));
  reciprocal = d;
}

}  // namespace spikevi
