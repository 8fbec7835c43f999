// Observation models (DESIGN.md §1): closed forms against finite differences and quadrature.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/observation_model.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using Eigen::ArrayXXd;

// Central differences of a function of an array, one element at a time: ell is element-wise,
// so shifting every entry together differentiates each entry.
constexpr double kStep = 1e-5;

struct Moments {
  ArrayXXd x, mu, s2;
};

// Counts 0..8, means in [-2, 1.5], variances in [0.05, 1]: rates from 0.1 to about 7.
Moments random_poisson_inputs(int rows, int cols, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> count(0, 8);
  std::uniform_real_distribution<double> mean(-2.0, 1.5);
  std::uniform_real_distribution<double> variance(0.05, 1.0);
  Moments m{ArrayXXd(rows, cols), ArrayXXd(rows, cols), ArrayXXd(rows, cols)};
  for (Eigen::Index i = 0; i < m.x.size(); ++i) {
    m.x(i) = count(rng);
    m.mu(i) = mean(rng);
    m.s2(i) = variance(rng);
  }
  return m;
}

// Continuous values with every third entry missing (NaN).
Moments random_gaussian_inputs(int rows, int cols, std::mt19937_64& rng) {
  Moments m = random_poisson_inputs(rows, cols, rng);
  m.x = spikevi::testing::random_normal(rows, cols, rng, 2.0).array();
  for (Eigen::Index i = 0; i < m.x.size(); i += 3)
    m.x(i) = std::numeric_limits<double>::quiet_NaN();
  return m;
}

struct Outputs {
  ArrayXXd ell, g, G, d2, d3, d4;
};

Outputs evaluate(const ObservationModel& model, const ArrayXXd& x, const ArrayXXd& mu,
                 const ArrayXXd& s2) {
  Outputs out;
  model.expected_log_likelihood(x, mu, s2, out.ell, out.g, out.G);
  model.expected_derivatives(x, mu, s2, out.d2, out.d3, out.d4);
  return out;
}

// |a - b| <= tol max(1, |b|) entry-wise. Central differences with h = 1e-5 on values of size
// <= 20 carry about 1e-15 * 20 / 1e-5 = 2e-9 round-off and h^2/6 |f'''| <= 1e-9 truncation, so
// 1e-6 leaves three orders of margin while a wrong formula is off by O(1).
void expect_close(const ArrayXXd& a, const ArrayXXd& b, double tol, const char* what) {
  const ArrayXXd scale = b.abs().max(1.0);
  EXPECT_LE(((a - b).abs() / scale).maxCoeff(), tol) << what;
}

// Checks g = d ell/d mu, G = d ell/d s2, d2 = d g/d mu, d3 = d d2/d mu, d4 = 2 d d2/d s2
// (Price: d/d s2 E h(eta) = E h''(eta) / 2) and G = d2 / 2, for any model.
void check_derivatives(const ObservationModel& model, const Moments& in) {
  const Outputs at = evaluate(model, in.x, in.mu, in.s2);
  const Outputs mu_up = evaluate(model, in.x, in.mu + kStep, in.s2);
  const Outputs mu_down = evaluate(model, in.x, in.mu - kStep, in.s2);
  const Outputs s2_up = evaluate(model, in.x, in.mu, in.s2 + kStep);
  const Outputs s2_down = evaluate(model, in.x, in.mu, in.s2 - kStep);
  const double h2 = 2.0 * kStep;
  expect_close((mu_up.ell - mu_down.ell) / h2, at.g, 1e-6, "g = d ell / d mu");
  expect_close((s2_up.ell - s2_down.ell) / h2, at.G, 1e-6, "G = d ell / d s2");
  expect_close((mu_up.g - mu_down.g) / h2, at.d2, 1e-6, "d2 = d g / d mu");
  expect_close((mu_up.d2 - mu_down.d2) / h2, at.d3, 1e-6, "d3 = d d2 / d mu");
  expect_close(2.0 * (s2_up.d2 - s2_down.d2) / h2, at.d4, 1e-6, "d4 = 2 d d2 / d s2");
  expect_close(0.5 * at.d2, at.G, 1e-14, "G = E f'' / 2");
}

// Gauss-Hermite rule for E f(Z), Z ~ N(0, 1), by Golub-Welsch on the probabilists' Hermite
// recurrence He_{k+1} = z He_k - k He_{k-1}: nodes = eigenvalues of the Jacobi matrix, weights =
// squared first components of its eigenvectors.
struct Quadrature {
  Eigen::VectorXd nodes, weights;
};

Quadrature gauss_hermite(int points) {
  Eigen::MatrixXd jacobi = Eigen::MatrixXd::Zero(points, points);
  for (int k = 1; k < points; ++k) jacobi(k, k - 1) = jacobi(k - 1, k) = std::sqrt(k);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(jacobi);
  return {solver.eigenvalues(), solver.eigenvectors().row(0).transpose().array().square()};
}

TEST(PoissonObservation, DerivativesMatchCentralDifferences) {
  std::mt19937_64 rng(11);
  check_derivatives(PoissonObservation{}, random_poisson_inputs(6, 9, rng));
}

TEST(GaussianObservation, DerivativesMatchCentralDifferences) {
  std::mt19937_64 rng(12);
  const GaussianObservation model(Eigen::Vector4d(0.3, 1.0, 2.5, 0.05));
  check_derivatives(model, random_gaussian_inputs(4, 9, rng));
}

// E[x eta - e^eta] by an 80-point Gauss-Hermite rule: exact for the linear part, and for e^{s z}
// with s <= 1 the rule's error is below s^160 / 160!, so only round-off (about 1e-14 of the
// rate) remains; 1e-10 relative is a loose bound that any formula error would exceed.
TEST(PoissonObservation, ExpectedLogLikelihoodEqualsGaussHermiteQuadrature) {
  std::mt19937_64 rng(13);
  const Moments in = random_poisson_inputs(5, 8, rng);
  const Outputs out = evaluate(PoissonObservation{}, in.x, in.mu, in.s2);
  const Quadrature rule = gauss_hermite(80);
  for (Eigen::Index i = 0; i < in.x.size(); ++i) {
    const Eigen::ArrayXd eta = in.mu(i) + std::sqrt(in.s2(i)) * rule.nodes.array();
    const double expected = (rule.weights.array() * (in.x(i) * eta - eta.exp())).sum();
    EXPECT_NEAR(out.ell(i), expected, 1e-10 * std::max(1.0, std::abs(expected)));
  }
}

// The Gaussian ell is a quadratic in eta, which a 10-point rule integrates exactly.
TEST(GaussianObservation, ExpectedLogLikelihoodEqualsGaussHermiteQuadrature) {
  std::mt19937_64 rng(14);
  const Eigen::Vector3d variances(0.5, 1.5, 4.0);
  const GaussianObservation model(variances);
  const Moments in = random_gaussian_inputs(3, 7, rng);
  const Outputs out = evaluate(model, in.x, in.mu, in.s2);
  const Quadrature rule = gauss_hermite(10);
  for (Eigen::Index j = 0; j < in.x.cols(); ++j) {
    for (Eigen::Index i = 0; i < in.x.rows(); ++i) {
      if (std::isnan(in.x(i, j))) continue;
      const double r = variances(i);
      const Eigen::ArrayXd eta = in.mu(i, j) + std::sqrt(in.s2(i, j)) * rule.nodes.array();
      const Eigen::ArrayXd log_p =
          -0.5 * std::log(2.0 * std::numbers::pi * r) - (in.x(i, j) - eta).square() / (2.0 * r);
      EXPECT_NEAR(out.ell(i, j), (rule.weights.array() * log_p).sum(), 1e-12);
    }
  }
}

TEST(GaussianObservation, MissingEntriesContributeNothing) {
  std::mt19937_64 rng(15);
  const GaussianObservation model(Eigen::Vector3d(0.5, 1.5, 4.0));
  const Moments in = random_gaussian_inputs(3, 6, rng);
  const Outputs out = evaluate(model, in.x, in.mu, in.s2);
  for (const ArrayXXd* a : {&out.ell, &out.g, &out.G, &out.d2, &out.d3, &out.d4}) {
    for (Eigen::Index i = 0; i < in.x.size(); ++i) {
      if (std::isnan(in.x(i))) {
        EXPECT_EQ((*a)(i), 0.0);
      }
      EXPECT_TRUE(std::isfinite((*a)(i)));
    }
  }
  EXPECT_EQ(model.log_base_measure(in.x), 0.0);
}

TEST(GaussianObservation, HasConstantSecondAndVanishingHigherDerivatives) {
  std::mt19937_64 rng(16);
  const Eigen::Vector2d variances(0.25, 2.0);
  const GaussianObservation model(variances);
  const Moments in = random_gaussian_inputs(2, 5, rng);
  const Outputs out = evaluate(model, in.x, in.mu, in.s2);
  for (Eigen::Index j = 0; j < in.x.cols(); ++j) {
    for (Eigen::Index i = 0; i < in.x.rows(); ++i) {
      const double expected = std::isnan(in.x(i, j)) ? 0.0 : -1.0 / variances(i);
      EXPECT_EQ(out.d2(i, j), expected);
      EXPECT_EQ(out.d3(i, j), 0.0);
      EXPECT_EQ(out.d4(i, j), 0.0);
    }
  }
}

TEST(GaussianObservation, RejectsVariancesThatAreNotFiniteAndPositive) {
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(GaussianObservation(Eigen::Vector2d(1.0, bad)), NumericalError) << bad;
  }
}

TEST(PoissonObservation, SecondToFourthExpectedDerivativesAreMinusTheRate) {
  std::mt19937_64 rng(17);
  const Moments in = random_poisson_inputs(3, 4, rng);
  const Outputs out = evaluate(PoissonObservation{}, in.x, in.mu, in.s2);
  const ArrayXXd rate = (in.mu + 0.5 * in.s2).exp();
  expect_close(-out.d2, rate, 1e-15, "d2");
  expect_close(-out.d3, rate, 1e-15, "d3");
  expect_close(-out.d4, rate, 1e-15, "d4");
}

TEST(PoissonObservation, LogBaseMeasureIsMinusTheSumOfLogFactorials) {
  ArrayXXd x(2, 2);
  x << 0, 3, 1, 5;  // -(log 0! + log 1! + log 3! + log 5!)
  EXPECT_NEAR(PoissonObservation{}.log_base_measure(x), -std::log(6.0 * 120.0), 1e-13);
  x(1, 1) = -1.0;
  EXPECT_THROW((void)PoissonObservation{}.log_base_measure(x), InputError);
}

}  // namespace
}  // namespace spikevi
