// The vectorised element-wise functions of the encoder's inference path and the softplus
// family's quadrature against the libm routines they replace: log1p of counts bit for bit, tanh,
// softplus and log1p with the reciprocal within a few ulp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "spikevi/math/elementwise.hpp"

namespace spikevi {
namespace {

// Distance in units in the last place between two finite doubles of the same sign.
std::int64_t ulps_apart(double a, double b) {
  std::int64_t x = 0, y = 0;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x > y ? x - y : y - x;
}

// Grid of x: uniform on [-25, 25] (both tanh branches and the cap at 20), plus +-10^-12..10^0
// where tanh's rational branch and any cancellation would show.
Eigen::MatrixXd tanh_grid() {
  const int uniform = 200001, logarithmic = 2 * 24001;
  Eigen::MatrixXd x(1, uniform + logarithmic);  // 1 x n: not a multiple of the chunk size
  for (int i = 0; i < uniform; ++i) x(0, i) = -25.0 + 50.0 * i / (uniform - 1);
  for (int i = 0; i < logarithmic / 2; ++i) {
    const double v = std::pow(10.0, -12.0 + 12.0 * i / (logarithmic / 2 - 1));
    x(0, uniform + 2 * i) = v;
    x(0, uniform + 2 * i + 1) = -v;
  }
  return x;
}

TEST(Elementwise, Log1pOfCountsIsBitwiseStdLog1p) {
  Eigen::ArrayXXd counts(3, 70);
  for (int t = 0; t < 70; ++t) {
    counts(0, t) = t;                    // the table's integers, then beyond it (64..69)
    counts(1, t) = 0.25 * t + 0.1;       // not integers
    counts(2, t) = t % 2 ? 1e6 + t : 0;  // large integers and zeros
  }
  Eigen::MatrixXd u;
  log1p_counts(counts, u);
  ASSERT_EQ(u.rows(), 3);
  ASSERT_EQ(u.cols(), 70);
  for (Eigen::Index i = 0; i < counts.size(); ++i)
    EXPECT_EQ(u.data()[i], std::log1p(counts.data()[i])) << "count " << counts.data()[i];
}

TEST(Elementwise, TanhIsWithinThreeUlpOfStdTanh) {
  const Eigen::MatrixXd x = tanh_grid();
  Eigen::MatrixXd y = x;
  tanh_in_place(y);
  std::int64_t worst = 0;
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double exact = std::tanh(x(0, i));
    ASSERT_EQ(std::signbit(y(0, i)), std::signbit(exact)) << "x = " << x(0, i);
    worst = std::max(worst, ulps_apart(y(0, i), exact));
  }
  // Cephes' tanh is within 2.5e-16 relative of tanh, libm's within 1 ulp.
  EXPECT_LE(worst, 3);
  EXPECT_EQ(tanh_grid().cwiseAbs().maxCoeff(), 25.0);  // the grid reaches past the cap at 20
}

TEST(Elementwise, TanhPassesNonFiniteEntriesToStdTanh) {
  const double inf = std::numeric_limits<double>::infinity();
  Eigen::MatrixXd x(1, 3);
  x << inf, -inf, 0.3;
  tanh_in_place(x);
  EXPECT_EQ(x(0, 0), 1.0);
  EXPECT_EQ(x(0, 1), -1.0);
  EXPECT_EQ(x(0, 2), std::tanh(0.3));
  x(0, 0) = std::numeric_limits<double>::quiet_NaN();
  tanh_in_place(x);
  EXPECT_TRUE(std::isnan(x(0, 0)));
}

TEST(Elementwise, SoftplusIsWithinThreeUlpOfLog1pOfExp) {
  const int n = 100001;
  Eigen::MatrixXd x(1, n);
  for (int i = 0; i < n; ++i) x(0, i) = -690.0 + 750.0 * i / (n - 1);  // up to 60: past 30
  Eigen::MatrixXd y = x;
  softplus_in_place(y);
  std::int64_t worst = 0;
  for (int i = 0; i < n; ++i) {
    const double v = x(0, i);
    if (v > 30.0) {
      EXPECT_EQ(y(0, i), v);  // the scalar softplus returns x itself there
    } else {
      worst = std::max(worst, ulps_apart(y(0, i), std::log1p(std::exp(v))));
    }
  }
  EXPECT_LE(worst, 3);
}

// log1p_and_reciprocal, the softplus family's quadrature nodes: e on a uniform grid of [0, 1],
// both sides of the switch at sqrt(2) - 1, and 2^-k, 1.5 2^-k down to the subnormals (the
// series' small-s end), against std::log1p and 1 / (1 + e).
TEST(Elementwise, Log1pAndReciprocalAreWithinThreeUlpAndOneUlp) {
  constexpr int kLanes = 32;
  using Lanes = Eigen::Array<double, kLanes, 1>;
  std::vector<double> grid;
  for (int i = 0; i <= 200000; ++i) grid.push_back(i / 200000.0);
  for (int k = 1; k <= 1074; ++k) {
    grid.push_back(std::ldexp(1.0, -k));
    grid.push_back(std::ldexp(1.5, -k));
  }
  const double knee = 0.41421356237309503;
  for (const double e : {std::nextafter(knee, 0.0), knee, std::nextafter(knee, 1.0), 1.0})
    grid.push_back(e);
  while (grid.size() % kLanes != 0) grid.push_back(0.5);
  std::int64_t worst_log = 0, worst_reciprocal = 0;
  for (std::size_t first = 0; first < grid.size(); first += kLanes) {
    const Lanes e = Eigen::Map<const Lanes>(grid.data() + first);
    Lanes log1p, reciprocal;
    log1p_and_reciprocal(e, log1p, reciprocal);
    for (int l = 0; l < kLanes; ++l) {
      worst_log = std::max(worst_log, ulps_apart(log1p[l], std::log1p(e[l])));
      worst_reciprocal = std::max(worst_reciprocal, ulps_apart(reciprocal[l], 1.0 / (1.0 + e[l])));
    }
  }
  EXPECT_LE(worst_log, 3);  // measured: 2 with FMA (-march=native), 3 without
  EXPECT_LE(worst_reciprocal, 1);
  Lanes log1p, reciprocal;
  log1p_and_reciprocal(Lanes::Zero().eval(), log1p, reciprocal);
  EXPECT_TRUE((log1p == 0.0).all() && (reciprocal == 1.0).all());
}

}  // namespace
}  // namespace spikevi
