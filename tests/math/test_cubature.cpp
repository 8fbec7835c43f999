// The Gaussian cubature rules against exact Gaussian moments.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/math/cubature.hpp"

namespace spikevi {
namespace {

// E h(xi) for xi ~ N(0, I) under the rule.
template <class H>
double expect(const GaussianCubature& rule, H&& h) {
  double total = 0.0;
  for (int j = 0; j < rule.points(); ++j) total += rule.weights()(j) * h(rule.nodes().col(j));
  return total;
}

TEST(GaussianCubature, SphericalRadialIsExactToDegreeThree) {
  for (int dim : {1, 2, 3, 5}) {
    const GaussianCubature rule = GaussianCubature::spherical_radial(dim);
    EXPECT_EQ(rule.points(), 2 * dim);
    EXPECT_NEAR(rule.weights().sum(), 1.0, 1e-15);
    EXPECT_NEAR(expect(rule, [](const auto& x) { return x(0); }), 0.0, 1e-15);
    EXPECT_NEAR(expect(rule, [](const auto& x) { return x(0) * x(0); }), 1.0, 1e-14);
    EXPECT_NEAR(expect(rule, [](const auto& x) { return x(0) * x(0) * x(0); }), 0.0, 1e-14);
    if (dim > 1) {
      EXPECT_NEAR(expect(rule, [](const auto& x) { return x(0) * x(1); }), 0.0, 1e-15);
      EXPECT_NEAR(expect(rule, [](const auto& x) { return x(0) * x(0) * x(1); }), 0.0, 1e-15);
    }
  }
}

TEST(GaussianCubature, GaussHermiteProductIsExactForProductsOfLowDegree) {
  const GaussianCubature rule = GaussianCubature::gauss_hermite_product(2, 3);
  EXPECT_EQ(rule.points(), 9);
  EXPECT_NEAR(rule.weights().sum(), 1.0, 1e-14);
  // E xi1^4 xi2^2 = 3 * 1 (degree 5 per coordinate, exact for 3 points).
  EXPECT_NEAR(expect(rule, [](const auto& x) { return std::pow(x(0), 4) * x(1) * x(1); }), 3.0,
              1e-12);
  EXPECT_NEAR(expect(rule, [](const auto& x) { return std::pow(x(1), 5) * x(0); }), 0.0, 1e-12);
}

TEST(GaussianCubature, GaussHermiteProductConvergesOnTheExponential) {
  // E exp(a' xi) = exp(|a|^2 / 2).
  const Eigen::Vector3d a(0.7, -0.4, 0.3);
  const GaussianCubature rule = GaussianCubature::gauss_hermite_product(3, 10);
  EXPECT_NEAR(expect(rule, [&](const auto& x) { return std::exp(a.dot(x)); }) /
                  std::exp(0.5 * a.squaredNorm()),
              1.0, 1e-12);
}

TEST(GaussianCubature, RefusesTooManyNodes) {
  EXPECT_THROW(GaussianCubature::gauss_hermite_product(10, 5), ConfigError);
  EXPECT_THROW(GaussianCubature::spherical_radial(0), ConfigError);
}

}  // namespace
}  // namespace spikevi
