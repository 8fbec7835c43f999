#pragma once
// Element-wise functions of whole arrays for the encoder's inference path (site_encoder.hpp) and
// the MLP readout's hidden units (mlp_readout.hpp). Eigen 3.4 vectorises only exp and log for
// doubles; its tanh and log1p call the scalar libm routine per element, which cost most of the
// encoder's forward pass (and a sixth of an MLP fit's time). Accuracy against libm,
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

}  // namespace spikevi
