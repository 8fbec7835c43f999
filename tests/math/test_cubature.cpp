// The Gaussian cubature rules against exact Gaussian moments.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "spikevi/error.hpp"
#include "spikevi/math/cubature.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

// E h(xi) for xi ~ N(0, I) under the rule (of bin `bin` for a rotated rule).
template <class H>
double expect(const GaussianCubature& rule, H&& h, Eigen::Index bin = 0) {
  double total = 0.0;
  for (int j = 0; j < rule.points(); ++j)
    total += rule.weights()(j) * h(rule.bin_nodes(bin).col(j));
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

// xi_i xi_k xi_0: a third-degree monomial, of mean 0 under N(0, I).
auto cubic(int i, int k) {
  return [i, k](const auto& x) { return x(i) * x(k) * x(0); };
}

TEST(GaussianCubature, HaarOrthogonalIsOrthogonalWithUniformEntries) {
  // Q'Q = I, and for a Haar Q every entry has E q_ij^2 = 1/D. Over 4000 draws at D = 3 the
  // sample mean of q_00^2 has standard error sqrt(Var/4000) = 0.0047 (Var q^2 = 3/(D(D+2)) -
  // 1/D^2 = 0.089); the tolerance is five of them.
  const int dim = 3, draws = 4000;
  double squares = 0.0;
  for (int r = 0; r < draws; ++r) {
    RandomStream stream({7, RandomPurpose::kCubature}, {0, static_cast<std::uint64_t>(r), 0});
    const Eigen::MatrixXd q = haar_orthogonal(dim, stream);
    ASSERT_LT((q.transpose() * q - Eigen::MatrixXd::Identity(dim, dim)).norm(), 1e-14);
    squares += q(0, 0) * q(0, 0);
  }
  EXPECT_NEAR(squares / draws, 1.0 / dim, 5 * 0.0047);
}

TEST(GaussianCubature, RotatedRuleIsExactToDegreeThreeInEveryBin) {
  for (int dim : {1, 2, 3, 5}) {
    const GaussianCubature rule = GaussianCubature::spherical_radial(dim).rotated(16);
    EXPECT_EQ(rule.rotations(), 16);
    for (Eigen::Index bin = 0; bin < 16; ++bin) {
      const Eigen::MatrixXd& nodes = rule.bin_nodes(bin);
      const Eigen::VectorXd mean = nodes * rule.weights();
      const Eigen::MatrixXd second = nodes * rule.weights().asDiagonal() * nodes.transpose();
      EXPECT_LT(mean.norm(), 1e-14);
      EXPECT_LT((second - Eigen::MatrixXd::Identity(dim, dim)).norm(), 1e-13);
      for (int i = 0; i < dim; ++i)
        for (int k = 0; k < dim; ++k) EXPECT_NEAR(expect(rule, cubic(i, k), bin), 0.0, 1e-13);
    }
  }
}

TEST(GaussianCubature, RotationsAreFixedDistinctAndCyclic) {
  const GaussianCubature plain = GaussianCubature::spherical_radial(3);
  const GaussianCubature rule = plain.rotated(8), again = plain.rotated(8);
  EXPECT_EQ(plain.rotated(0).rotations(), 0);
  EXPECT_EQ(plain.rotated(0).bin_nodes(5), plain.nodes());
  for (Eigen::Index bin = 0; bin < 8; ++bin) {
    EXPECT_EQ(rule.bin_nodes(bin), again.bin_nodes(bin));  // the same rule in every fit
    EXPECT_EQ(rule.bin_nodes(bin), rule.bin_nodes(bin + 8));
    EXPECT_GT((rule.bin_nodes(bin) - rule.bin_nodes(bin + 1)).norm(), 0.1);
    // The nodes stay on the sphere of radius sqrt(D).
    EXPECT_LT((rule.bin_nodes(bin).colwise().norm().array() - std::sqrt(3.0)).abs().maxCoeff(),
              1e-14);
  }
  // The table is capped at kMaxRotatedValues doubles: 3^8 nodes in 8 dimensions keep 79.
  EXPECT_EQ(GaussianCubature::gauss_hermite_product(8, 3).rotated(256).rotations(),
            GaussianCubature::kMaxRotatedValues / (8 * 6561));
  EXPECT_THROW(plain.rotated(-1), ConfigError);
}

TEST(GaussianCubature, RotationsSeeTheFourthMomentThatAxisNodesMiss) {
  // E xi1^2 xi2^2 = 1 for D = 2. The axis nodes +-sqrt(2) e_i give 0; turned by an angle theta
  // they give sin^2(2 theta), whose mean over Haar rotations is D/(D+2) = 1/2 (the radius stays
  // sqrt(D), so degree four is not exact, only no longer blind). Var sin^2(2 theta) = 1/8, so
  // the mean of 4096 bins has standard error 0.0055; tolerance five of them.
  const auto product = [](const auto& x) { return x(0) * x(0) * x(1) * x(1); };
  const GaussianCubature plain = GaussianCubature::spherical_radial(2);
  EXPECT_NEAR(expect(plain, product), 0.0, 1e-15);
  const GaussianCubature rule = plain.rotated(4096);
  double mean = 0.0;
  for (Eigen::Index bin = 0; bin < 4096; ++bin) mean += expect(rule, product, bin) / 4096.0;
  EXPECT_NEAR(mean, 0.5, 5 * 0.0055);
}

TEST(GaussianCubature, TwoShellRuleIsExactToDegreeThreeInEveryBin) {
  for (int dim : {1, 2, 3, 5, 8}) {
    const GaussianCubature rule = GaussianCubature::randomised_spherical_radial(dim, 16);
    EXPECT_EQ(rule.points(), 4 * dim);
    EXPECT_NEAR(rule.weights().sum(), 1.0, 1e-15);
    for (Eigen::Index bin = 0; bin < 16; ++bin) {
      const Eigen::MatrixXd& nodes = rule.bin_nodes(bin);
      const Eigen::MatrixXd second = nodes * rule.weights().asDiagonal() * nodes.transpose();
      EXPECT_LT((nodes * rule.weights()).norm(), 1e-14);
      EXPECT_LT((second - Eigen::MatrixXd::Identity(dim, dim)).norm(), 1e-13) << dim;
      for (int i = 0; i < dim; ++i)
        for (int k = 0; k < dim; ++k) EXPECT_NEAR(expect(rule, cubic(i, k), bin), 0.0, 1e-13);
      // Radii between 0 and sqrt(2D).
      EXPECT_LE(nodes.colwise().norm().maxCoeff(), std::sqrt(2.0 * dim) + 1e-13);
    }
  }
  EXPECT_EQ(GaussianCubature::randomised_spherical_radial(2, 0).rotations(), 0);
}

// Over the rotations the two-shell rule is unbiased for degree four: E xi1^4 = 3 and
// E xi1^2 xi2^2 = 1. The tolerance is five standard errors of the mean over 4096 bins,
// estimated from the bins' own spread.
TEST(GaussianCubature, TwoShellRuleIsUnbiasedForDegreeFourOverTheRotations) {
  const int bins = 4096;
  for (int dim : {2, 3, 5}) {
    const GaussianCubature rule = GaussianCubature::randomised_spherical_radial(dim, bins);
    const auto mean_and_error = [&](auto&& h) {
      Eigen::ArrayXd values(bins);
      for (int bin = 0; bin < bins; ++bin) values(bin) = expect(rule, h, bin);
      const double mean = values.mean();
      return std::pair{mean, std::sqrt((values - mean).square().sum() / (bins - 1) / bins)};
    };
    const auto [fourth, fourth_se] =
        mean_and_error([](const auto& x) { return std::pow(x(0), 4); });
    EXPECT_NEAR(fourth, 3.0, 5 * fourth_se + 1e-12) << dim;
    const auto [mixed, mixed_se] =
        mean_and_error([](const auto& x) { return x(0) * x(0) * x(1) * x(1); });
    EXPECT_NEAR(mixed, 1.0, 5 * mixed_se + 1e-12) << dim;
    // The unrotated two-shell nodes (on the axes) miss the mixed moment entirely.
    EXPECT_NEAR(expect(GaussianCubature::randomised_spherical_radial(dim, 0),
                       [](const auto& x) { return x(0) * x(0) * x(1) * x(1); }),
                0.0, 1e-14);
  }
}

TEST(GaussianCubature, RefusesTooManyNodes) {
  EXPECT_THROW(GaussianCubature::gauss_hermite_product(10, 5), ConfigError);
  EXPECT_THROW(GaussianCubature::spherical_radial(0), ConfigError);
}

}  // namespace
}  // namespace spikevi
