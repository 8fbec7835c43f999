// Observation models (DESIGN.md §1): closed forms against finite differences and quadrature.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "spikevi/error.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"
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

// ---- Quadrature models (Gauss–Hermite, DESIGN.md §6) ----

// The built-in models as the rest of spikevi makes them: through the catalogue.
std::unique_ptr<ObservationModel> built_in(const std::string& name, int nodes = 20,
                                           const std::vector<Eigen::VectorXd>& row_values = {}) {
  return builtin_spike_models().get(name)->observation(row_values, false, nodes);
}
std::unique_ptr<ObservationModel> poisson_by_quadrature(int nodes = 20) {
  return built_in("poisson", nodes);
}
std::unique_ptr<ObservationModel> negative_binomial(const Eigen::VectorXd& shapes, int nodes = 20) {
  return built_in("negative_binomial", nodes, {shapes});
}
std::unique_ptr<ObservationModel> bernoulli(int nodes = 20) { return built_in("bernoulli", nodes); }

// Per-row shapes spanning strong over-dispersion (0.3) to nearly Poisson (1e4).
Eigen::VectorXd test_shapes(int rows) {
  const std::array<double, 6> values = {0.3, 1.5, 7.0, 60.0, 1e4, 2.2};
  Eigen::VectorXd shapes(rows);
  for (int n = 0; n < rows; ++n) shapes(n) = values[n % values.size()];
  return shapes;
}

// Binary observations with means in [-3, 3] and variances in [0.05, 1].
Moments random_bernoulli_inputs(int rows, int cols, std::mt19937_64& rng) {
  std::bernoulli_distribution bit(0.4);
  std::uniform_real_distribution<double> mean(-3.0, 3.0);
  Moments m = random_poisson_inputs(rows, cols, rng);
  for (Eigen::Index i = 0; i < m.x.size(); ++i) {
    m.x(i) = bit(rng) ? 1.0 : 0.0;
    m.mu(i) = mean(rng);
  }
  return m;
}

// E h(x, eta) under N(mu, s2) by the test's own 100-point rule, element by element: an oracle
// independent of the library's rule, pointwise formulas and vectorisation.
template <class Pointwise>
ArrayXXd reference_expectation(const Moments& in, Pointwise&& h) {
  const Quadrature rule = gauss_hermite(100);
  ArrayXXd out(in.x.rows(), in.x.cols());
  for (Eigen::Index j = 0; j < in.x.cols(); ++j) {
    for (Eigen::Index i = 0; i < in.x.rows(); ++i) {
      const Eigen::ArrayXd eta = in.mu(i, j) + std::sqrt(in.s2(i, j)) * rule.nodes.array();
      double sum = 0.0;
      for (Eigen::Index k = 0; k < eta.size(); ++k)
        sum += rule.weights(k) * h(i, in.x(i, j), eta(k));
      out(i, j) = sum;
    }
  }
  return out;
}

TEST(PoissonQuadratureObservation, DerivativesMatchCentralDifferences) {
  std::mt19937_64 rng(31);
  check_derivatives(*poisson_by_quadrature(), random_poisson_inputs(6, 9, rng));
}

// On a grid mu in [-3, 3], s2 in [1e-4, 2] (log-spaced), x = 0..8, the default 20-node rule
// reproduces every closed-form quantity to 1e-10 relative to the size of the terms it sums
// (|x mu| + lambda for ell, x + lambda for g, lambda for the rest; ell and g themselves can
// cancel to zero). Measured: ~6e-16 with 20 nodes; 12 nodes give ~2e-12 and 10 only ~1e-9,
// since E e^{sqrt(2 s2) t} needs more nodes as s2 grows (at s2 = 2 the error of the n-point
// rule is about n! 4^n / (2^n (2n)!)).
TEST(PoissonQuadratureObservation, EqualsTheClosedFormOnAGridOfMeansAndVariances) {
  const int means = 25, variances = 15, counts = 9;
  Moments in{ArrayXXd(means * counts, variances), ArrayXXd(means * counts, variances),
             ArrayXXd(means * counts, variances)};
  for (int a = 0; a < means; ++a) {
    for (int c = 0; c < counts; ++c) {
      for (int b = 0; b < variances; ++b) {
        const int row = a * counts + c;
        in.x(row, b) = c;
        in.mu(row, b) = -3.0 + 6.0 * a / (means - 1);
        in.s2(row, b) =
            std::exp(std::log(1e-4) + (std::log(2.0) - std::log(1e-4)) * b / (variances - 1));
      }
    }
  }
  const auto model = poisson_by_quadrature();
  const auto& quadrature = dynamic_cast<const QuadratureObservation&>(*model);
  ASSERT_EQ(quadrature.nodes(), 20);
  const Outputs closed = evaluate(PoissonObservation{}, in.x, in.mu, in.s2);
  const Outputs by_rule = evaluate(quadrature, in.x, in.mu, in.s2);
  const ArrayXXd rate = (in.mu + 0.5 * in.s2).exp();
  const auto relative = [](const ArrayXXd& a, const ArrayXXd& b, const ArrayXXd& scale) {
    return ((a - b).abs() / scale).maxCoeff();
  };
  EXPECT_LE(relative(by_rule.ell, closed.ell, (in.x * in.mu).abs() + rate), 1e-10);
  EXPECT_LE(relative(by_rule.g, closed.g, in.x + rate), 1e-10);
  EXPECT_LE(relative(by_rule.G, closed.G, 0.5 * rate), 1e-10);
  EXPECT_LE(relative(by_rule.d2, closed.d2, rate), 1e-10);
  EXPECT_LE(relative(by_rule.d3, closed.d3, rate), 1e-10);
  EXPECT_LE(relative(by_rule.d4, closed.d4, rate), 1e-10);
  EXPECT_EQ(quadrature.log_base_measure(in.x), PoissonObservation{}.log_base_measure(in.x));
}

TEST(NegativeBinomialObservation, DerivativesMatchCentralDifferences) {
  std::mt19937_64 rng(32);
  check_derivatives(*negative_binomial(test_shapes(6)), random_poisson_inputs(6, 9, rng));
}

// The pmf written as given (DESIGN.md §1), integrated by the oracle rule. Its softplus has
// poles at imaginary distance pi, so the 20-node rule converges more slowly than for Poisson:
// measured ~1e-10 (ell) and ~3e-9 (G) at s2 = 1, ~1e-6 at s2 = 2 (take ~48 nodes there).
// For s2 <= 1 here, 1e-8 relative (floor 1) leaves a margin of about 4.
TEST(NegativeBinomialObservation, EqualsAHundredPointQuadratureOfThePmf) {
  std::mt19937_64 rng(33);
  const Moments in = random_poisson_inputs(6, 10, rng);
  const Eigen::VectorXd r = test_shapes(6);
  const Outputs out = evaluate(*negative_binomial(r), in.x, in.mu, in.s2);
  const ArrayXXd ell = reference_expectation(in, [&r](Eigen::Index n, double x, double eta) {
    return std::lgamma(x + r(n)) - std::lgamma(r(n)) + r(n) * std::log(r(n)) + x * eta -
           (x + r(n)) * std::log(r(n) + std::exp(eta));
  });
  const ArrayXXd g = reference_expectation(in, [&r](Eigen::Index n, double x, double eta) {
    return x - (x + r(n)) * std::exp(eta) / (r(n) + std::exp(eta));
  });
  const ArrayXXd d2 = reference_expectation(in, [&r](Eigen::Index n, double x, double eta) {
    return -(x + r(n)) * r(n) * std::exp(eta) / std::pow(r(n) + std::exp(eta), 2);
  });
  expect_close(out.ell, ell, 1e-8, "ell");
  expect_close(out.g, g, 1e-8, "g");
  expect_close(out.G, 0.5 * d2, 1e-8, "G");
  expect_close(out.d2, d2, 1e-8, "d2");
}

// As r -> infinity, log NB(x; e^eta, r) - log Poisson(x; e^eta) = ((x - e^eta)^2 - x) / (2r)
// + O(1/r^2) (expand lgamma(x + r) - lgamma(r) - x log r = x (x - 1) / (2r) + ... and
// (x + r) log(1 + e^eta / r)). So under N(mu, s2), with lambda = e^{mu + s2/2} and
// E e^{2 eta} = e^{2 mu + 2 s2}:
//   ell_NB - ell_P = (x^2 - x - 2 x lambda + E e^{2 eta}) / (2r),
// and g, G differ by its mu and s2 derivatives. At r = 1e7 the correction is up to ~1e-5 while
// the O(1/r^2) rest is below (x^3 + E e^{3 eta}) / r^2 <= (512 + e^9) / 1e14 ~ 1e-10 for these
// inputs (mu <= 1.5, s2 <= 1); 1e-9 checks the correction itself, not just closeness.
// d2..d4 get only the bound (x + 8 E e^{2 eta} / lambda) / r on their relative deviation
// (from (x + r) p q (1 - 6 p q) with p ~ e^eta / r).
TEST(NegativeBinomialObservation, ApproachesPoissonAsTheShapeGrows) {
  std::mt19937_64 rng(34);
  const Moments in = random_poisson_inputs(5, 12, rng);
  const double r = 1e7;
  const Outputs nb =
      evaluate(*negative_binomial(Eigen::VectorXd::Constant(5, r)), in.x, in.mu, in.s2);
  const Outputs poisson = evaluate(PoissonObservation{}, in.x, in.mu, in.s2);
  const ArrayXXd& x = in.x;
  const ArrayXXd rate = (in.mu + 0.5 * in.s2).exp();
  const ArrayXXd rate2 = (2.0 * in.mu + 2.0 * in.s2).exp();  // E e^{2 eta}
  const ArrayXXd ell_shift = (x.square() - x - 2.0 * x * rate + rate2) / (2.0 * r);
  const ArrayXXd g_shift = (rate2 - x * rate) / r;
  const ArrayXXd G_shift = (2.0 * rate2 - x * rate) / (2.0 * r);
  EXPECT_GT(ell_shift.abs().maxCoeff(), 1e-7);  // the check below is not vacuous
  EXPECT_LE((nb.ell - poisson.ell).abs().maxCoeff(), 1e-4);
  EXPECT_LE((nb.ell - poisson.ell - ell_shift).abs().maxCoeff(), 1e-9);
  EXPECT_LE((nb.g - poisson.g - g_shift).abs().maxCoeff(), 1e-9);
  EXPECT_LE((nb.G - poisson.G - G_shift).abs().maxCoeff(), 1e-9);
  const ArrayXXd bound = (x + 8.0 * rate2 / rate) / r;
  for (const auto& [approx, exact] :
       {std::pair{&nb.d2, &poisson.d2}, std::pair{&nb.d3, &poisson.d3},
        std::pair{&nb.d4, &poisson.d4}}) {
    EXPECT_TRUE(((*approx - *exact).abs() / exact->abs() <= bound).all());
  }
}

// Sum over bins of ell per row, for a model with the given shapes.
Eigen::VectorXd row_totals(const Eigen::VectorXd& shapes, const Moments& in) {
  ArrayXXd ell, g, G;
  negative_binomial(shapes)->expected_log_likelihood(in.x, in.mu, in.s2, ell, g, G);
  return ell.rowwise().sum().matrix();
}

// Counts 0..8 plus, in the last two columns, large (70, 150) and non-integer (2.5) counts, which
// take the digamma/trigamma path rather than the exact finite sums. Central differences with the
// relative step 1e-5 r_n: truncation ~1e-10 relative, round-off ~1e-15 sum |ell| / 1e-5 r.
TEST(NegativeBinomialObservation, ShapeGradientMatchesFiniteDifferencesInTheShape) {
  std::mt19937_64 rng(35);
  Moments in = random_poisson_inputs(6, 10, rng);
  for (Eigen::Index n = 0; n < 6; ++n) {
    in.x(n, 8) = n % 2 == 0 ? 70.0 : 2.5;
    in.x(n, 9) = 150.0;
    in.mu(n, 8) = std::log(std::max(1.0, in.x(n, 8))) - 0.3;
    in.mu(n, 9) = std::log(150.0) + 0.2;
  }
  const Eigen::VectorXd shapes = test_shapes(6);
  Eigen::MatrixXd gradient, curvature;
  negative_binomial(shapes)->row_parameter_derivatives(in.x, in.mu, in.s2, gradient, curvature);
  ASSERT_EQ(gradient.rows(), 6);
  ASSERT_EQ(gradient.cols(), 1);
  ASSERT_EQ(curvature.rows(), 6);
  for (Eigen::Index n = 0; n < 6; ++n) {
    const double h = 1e-5 * shapes(n);
    Eigen::VectorXd up = shapes, down = shapes;
    up(n) += h;
    down(n) -= h;
    const double fd_gradient = (row_totals(up, in)(n) - row_totals(down, in)(n)) / (2.0 * h);
    Eigen::MatrixXd g_up, g_down, unused;
    negative_binomial(up)->row_parameter_derivatives(in.x, in.mu, in.s2, g_up, unused);
    negative_binomial(down)->row_parameter_derivatives(in.x, in.mu, in.s2, g_down, unused);
    const double fd_curvature = (g_up(n) - g_down(n)) / (2.0 * h);
    EXPECT_NEAR(gradient(n), fd_gradient, 1e-6 * std::max(1.0, std::abs(fd_gradient))) << n;
    EXPECT_NEAR(curvature(n), fd_curvature, 1e-6 * std::max(1.0, std::abs(fd_curvature))) << n;
  }
}

// At r = 1e7 the shape derivatives are the r-derivatives of the Poisson correction above,
// -C / r^2 and 2 C / r^3 with C = sum_t (x^2 - x - 2 x lambda + E e^{2 eta}) / 2: about 1e-13
// and 1e-20, which the Boost digamma/trigamma differences could not resolve (error ~4e-15).
// The relative O(1/r) rest allows 1e-4.
TEST(NegativeBinomialObservation, ShapeGradientStaysAccurateForLargeShapes) {
  std::mt19937_64 rng(36);
  const Moments in = random_poisson_inputs(4, 12, rng);
  const double r = 1e7;
  Eigen::MatrixXd gradient, curvature;
  negative_binomial(Eigen::VectorXd::Constant(4, r))
      ->row_parameter_derivatives(in.x, in.mu, in.s2, gradient, curvature);
  const ArrayXXd rate = (in.mu + 0.5 * in.s2).exp();
  const ArrayXXd rate2 = (2.0 * in.mu + 2.0 * in.s2).exp();
  const ArrayXXd terms = 0.5 * (in.x.square() - in.x - 2.0 * in.x * rate + rate2);
  for (Eigen::Index n = 0; n < 4; ++n) {
    const double c = terms.row(n).sum(), scale = terms.row(n).abs().sum();
    EXPECT_NEAR(gradient(n), -c / (r * r), 1e-4 * scale / (r * r)) << n;
    EXPECT_NEAR(curvature(n), 2.0 * c / (r * r * r), 1e-4 * scale / (r * r * r)) << n;
  }
}

TEST(NegativeBinomialObservation, RejectsBadShapesAndCounts) {
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW((void)negative_binomial(Eigen::Vector2d(1.0, bad)), NumericalError) << bad;
  }
  EXPECT_THROW((void)negative_binomial(Eigen::Vector2d(1.0, 2.0), 0), ConfigError);
  const auto built = negative_binomial(Eigen::Vector2d(1.0, 2.0));
  const ObservationModel& model = *built;

  ArrayXXd x(2, 2), ell, g, G;
  x << 0, 3, 1, 5;
  const ArrayXXd mu = ArrayXXd::Zero(2, 2), s2 = ArrayXXd::Constant(2, 2, 0.1);
  EXPECT_NEAR(model.log_base_measure(x), -std::log(6.0 * 120.0), 1e-13);
  x(1, 1) = -1.0;
  EXPECT_THROW((void)model.log_base_measure(x), InputError);
  EXPECT_THROW(model.expected_log_likelihood(x, mu, s2, ell, g, G), InputError);
  x(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(model.expected_derivatives(x, mu, s2, ell, g, G), InputError);
  const ArrayXXd three_rows = ArrayXXd::Zero(3, 2);
  EXPECT_THROW(model.expected_log_likelihood(three_rows, ArrayXXd::Zero(3, 2), ArrayXXd::Zero(3, 2),
                                             ell, g, G),
               InputError);
}

TEST(BernoulliObservation, DerivativesMatchCentralDifferences) {
  std::mt19937_64 rng(37);
  check_derivatives(*bernoulli(), random_bernoulli_inputs(6, 9, rng));
}

// Softplus again: 20 nodes are good to ~1e-10 for s2 <= 1 (see the negative binomial).
TEST(BernoulliObservation, EqualsAHundredPointQuadrature) {
  std::mt19937_64 rng(38);
  const Moments in = random_bernoulli_inputs(5, 10, rng);
  const Outputs out = evaluate(*bernoulli(), in.x, in.mu, in.s2);
  const auto sigmoid = [](double eta) { return 1.0 / (1.0 + std::exp(-eta)); };
  const ArrayXXd ell = reference_expectation(
      in, [](Eigen::Index, double x, double eta) { return x * eta - std::log1p(std::exp(eta)); });
  const ArrayXXd g = reference_expectation(
      in, [&](Eigen::Index, double x, double eta) { return x - sigmoid(eta); });
  const ArrayXXd d2 = reference_expectation(
      in, [&](Eigen::Index, double, double eta) { return -sigmoid(eta) * (1.0 - sigmoid(eta)); });
  expect_close(out.ell, ell, 1e-8, "ell");
  expect_close(out.g, g, 1e-8, "g");
  expect_close(out.G, 0.5 * d2, 1e-8, "G");
  EXPECT_EQ(bernoulli()->log_base_measure(in.x), 0.0);
}

// With s2 = 0 every node sits at mu, so ell, g, 2 G are f, f', f'' at mu: the vectorised
// softplus (two exponentials, log1p by a first-order correction of log(1 + e)) against the
// scalar std::log1p, across the whole range where e^mu does or does not overflow. (Eigen's
// vectorised exp does not go subnormal: below e^{-708} it returns ~1e-308, hence the floor.)
TEST(BernoulliObservation, PointwiseFormulasKeepFullPrecisionAtZeroVariance) {
  const int points = 2001;
  ArrayXXd x(2, points), mu(2, points), s2 = ArrayXXd::Zero(2, points);
  for (int j = 0; j < points; ++j) {
    mu.col(j).setConstant(-740.0 + 1480.0 * j / (points - 1) + 1e-3);
    x(0, j) = 0.0;
    x(1, j) = 1.0;
  }
  mu.col(0).setConstant(1e-9);  // and tiny |u|, where 1 + e rounds
  mu.col(1).setConstant(-1e-12);
  mu.col(2).setConstant(36.0);  // e^{-u} ~ 2e-16: 1 + e just rounds to 1
  const Outputs out = evaluate(*bernoulli(), x, mu, s2);
  for (int j = 0; j < points; ++j) {
    for (int i = 0; i < 2; ++i) {
      const double eta = mu(i, j), e = std::exp(-std::abs(eta));
      const double softplus = std::max(eta, 0.0) + std::log1p(e);
      const double p = eta >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      const double pq = e / ((1.0 + e) * (1.0 + e));
      const double ell = x(i, j) * eta - softplus;
      EXPECT_NEAR(out.ell(i, j), ell, 1e-15 * std::max(std::abs(ell), softplus) + 1e-300) << eta;
      EXPECT_NEAR(out.g(i, j), x(i, j) - p, 1e-15 * std::max(p, 1.0 - p) + 1e-300) << eta;
      EXPECT_NEAR(out.G(i, j), -0.5 * pq, 1e-15 * pq + 1e-300) << eta;
    }
  }
}

TEST(BernoulliObservation, RejectsObservationsOtherThanZeroAndOne) {
  const auto built = bernoulli();
  const ObservationModel& model = *built;
  const ArrayXXd mu = ArrayXXd::Zero(2, 3), s2 = ArrayXXd::Constant(2, 3, 0.5);
  ArrayXXd a, b, c;
  for (const double bad : {2.0, -1.0, 0.5, std::numeric_limits<double>::quiet_NaN()}) {
    ArrayXXd x = ArrayXXd::Zero(2, 3);
    x(1, 2) = bad;
    EXPECT_THROW(model.expected_log_likelihood(x, mu, s2, a, b, c), InputError) << bad;
    EXPECT_THROW(model.expected_derivatives(x, mu, s2, a, b, c), InputError) << bad;
    EXPECT_THROW((void)model.log_base_measure(x), InputError) << bad;
  }
  ArrayXXd two = ArrayXXd::Zero(2, 3);
  two(0, 1) = 2.0;
  try {
    (void)model.log_base_measure(two);
    ADD_FAILURE() << "x = 2 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("(0, 1)"), std::string::npos) << e.what();
  }
}

// G <= 0 (and E f'' <= 0): every model here is log-concave in eta (DESIGN.md §1), and for the
// quadrature models it holds exactly because f'' <= 0 at every node and the weights are positive.
TEST(QuadratureObservations, AreLogConcave) {
  std::mt19937_64 rng(39);
  const Moments counts = random_poisson_inputs(6, 20, rng);
  const Moments bits = random_bernoulli_inputs(6, 20, rng);
  const PoissonObservation poisson;
  const auto poisson_by_rule = poisson_by_quadrature();
  const auto shaped = negative_binomial(test_shapes(6));
  const auto binary = bernoulli();
  for (const auto& [model, in] :
       {std::pair<const ObservationModel*, const Moments*>{&poisson, &counts},
        {poisson_by_rule.get(), &counts},
        {shaped.get(), &counts},
        {binary.get(), &bits}}) {
    const Outputs out = evaluate(*model, in->x, in->mu, in->s2);
    EXPECT_LE(out.G.maxCoeff(), 0.0) << model->name();
    EXPECT_LE(out.d2.maxCoeff(), 0.0) << model->name();
  }
}

// eta ~ +-700 (e^eta near the double range's end): everything finite, and equal to the
// asymptotes. For e^eta >> r: log(r + e^eta) -> eta, so ell -> a(x, r) + x mu - (x + r)(mu -
// log r), g -> -r; for e^eta << r: log(r + e^eta) -> log r, ell -> a(x, r) + x mu, g -> x,
// with a(x, r) = lgamma(x + r) - lgamma(r) - x log r. Bernoulli:
// ell -> (x - 1) mu, g -> x - 1 at +700; ell -> x mu, g -> x at -700.
TEST(QuadratureObservations, StayFiniteAndReachTheirAsymptotesForExtremeMeans) {
  const double r = 2.5;
  const auto shaped = negative_binomial(Eigen::Vector2d(r, r));
  const auto binary = bernoulli();
  for (const double mean : {700.0, -700.0}) {
    for (const double variance : {1e-4, 1.0}) {
      ArrayXXd x(2, 2), mu = ArrayXXd::Constant(2, 2, mean),
                        s2 = ArrayXXd::Constant(2, 2, variance);
      x << 0, 1, 1, 0;
      const Outputs b = evaluate(*binary, x, mu, s2);
      x << 0, 3, 1, 7;
      const Outputs nb = evaluate(*shaped, x, mu, s2);
      for (const Outputs* out : {&b, &nb}) {
        for (const ArrayXXd* a : {&out->ell, &out->g, &out->G, &out->d2, &out->d3, &out->d4})
          EXPECT_TRUE(a->allFinite()) << mean << " " << variance;
        EXPECT_LE(out->G.maxCoeff(), 0.0);
      }
      const double a3 = std::lgamma(3.0 + r) - std::lgamma(r) - 3.0 * std::log(r);
      if (mean > 0) {
        x << 0, 1, 1, 0;
        expect_close(b.ell, (x - 1.0) * mean, 1e-12, "bernoulli ell at +700");
        expect_close(b.g, x - 1.0, 1e-12, "bernoulli g at +700");
        EXPECT_NEAR(nb.ell(0, 1), a3 + 3.0 * mean - (3.0 + r) * (mean - std::log(r)),
                    1e-12 * mean * r);
        EXPECT_NEAR(nb.g(0, 1), -r, 1e-12);
      } else {
        x << 0, 1, 1, 0;
        expect_close(b.ell, x * mean, 1e-12, "bernoulli ell at -700");
        expect_close(b.g, x, 1e-12, "bernoulli g at -700");
        EXPECT_NEAR(nb.ell(0, 1), a3 + 3.0 * mean, 1e-12 * -mean);
        EXPECT_NEAR(nb.g(0, 1), 3.0, 1e-12);
      }
    }
  }
}

// Nodes by variance (issue 17): the default ladder agrees with a fixed 200-node rule to its
// schedule's promise, 1e-10 (x + r) per entry (1e-10 for the Bernoulli), over s2 from 1e-4 to
// 0.25 (4 to 16 nodes; above, the ladder is the 20-node rule), and expected_terms is bitwise the
// two separate calls.
TEST(QuadratureObservation, NodesByVarianceMatchAHighOrderRuleAndOnePassEqualsTwo) {
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> mean(-3.0, 2.0),
      log_variance(std::log(1e-4), std::log(0.25));
  const Eigen::Index rows = 5, cols = 40;
  ArrayXXd mu(rows, cols), s2(rows, cols), counts(rows, cols), binary(rows, cols);
  std::poisson_distribution<int> count(2.0);
  for (Eigen::Index j = 0; j < cols; ++j) {
    const double column_variance = std::exp(log_variance(rng));  // bins of small and large s2
    for (Eigen::Index i = 0; i < rows; ++i) {
      mu(i, j) = mean(rng);
      s2(i, j) = column_variance * (0.2 + 0.8 * (i + 1) / static_cast<double>(rows));
      counts(i, j) = count(rng);
      binary(i, j) = counts(i, j) > 1 ? 1.0 : 0.0;
    }
  }
  const Eigen::VectorXd shapes = (Eigen::VectorXd(rows) << 0.5, 1.5, 4.0, 30.0, 1e4).finished();
  struct Case {
    std::unique_ptr<ObservationModel> adaptive, reference;
    const ArrayXXd* x;
    ArrayXXd scale;
  };
  Case cases[2] = {
      {negative_binomial(shapes), negative_binomial(shapes, 200), &counts,
       counts.colwise() + shapes.array()},
      {built_in("bernoulli"), built_in("bernoulli", 200), &binary, ArrayXXd::Ones(rows, cols)}};
  for (Case& c : cases) {
    ASSERT_TRUE(dynamic_cast<const QuadratureObservation&>(*c.adaptive).adaptive());
    dynamic_cast<QuadratureObservation&>(*c.reference).use_fixed_rule();
    std::array<ArrayXXd, 6> a, b, separate;
    c.adaptive->expected_terms(*c.x, mu, s2, a[0], a[1], a[2], a[3], a[4], a[5]);
    c.reference->expected_terms(*c.x, mu, s2, b[0], b[1], b[2], b[3], b[4], b[5]);
    c.adaptive->expected_log_likelihood(*c.x, mu, s2, separate[0], separate[1], separate[2]);
    c.adaptive->expected_derivatives(*c.x, mu, s2, separate[3], separate[4], separate[5]);
    for (int k = 0; k < 6; ++k) {
      EXPECT_TRUE((a[k] == separate[k]).all()) << c.adaptive->name() << " term " << k;
      EXPECT_LE(((a[k] - b[k]).abs() / c.scale).maxCoeff(), 1e-10)
          << c.adaptive->name() << " term " << k;
    }
  }
}

// The softplus family takes each entry's rule from that entry's own s2 (issue 17), not from the
// largest s2 of its bin: with s2 from 1e-4 to 0.5 in every bin, each entry is bitwise what the
// fixed rule of its ladder step gives on the same block (the same lanes' instructions, the same
// assembly), whichever other entries share its bin.
TEST(QuadratureObservation, SoftplusModelsTakeEachEntrysRuleFromItsOwnVariance) {
  std::mt19937_64 rng(41);
  std::uniform_real_distribution<double> mean(-3.0, 2.0),
      log_variance(std::log(1e-4), std::log(0.5));
  const Eigen::Index rows = 7, cols = 12;
  ArrayXXd mu(rows, cols), s2(rows, cols), counts(rows, cols);
  std::poisson_distribution<int> count(2.0);
  for (Eigen::Index i = 0; i < mu.size(); ++i) {
    mu(i) = mean(rng);
    s2(i) = std::exp(log_variance(rng));
    counts(i) = count(rng);
  }
  const ArrayXXd binary = (counts > 1.0).cast<double>();
  const Eigen::VectorXd shapes =
      (Eigen::VectorXd(rows) << 0.5, 1.5, 4.0, 30.0, 1e4, 2.0, 8.0).finished();
  const auto make = [&](const std::string& name, int nodes) {
    return name == "bernoulli" ? built_in(name, nodes) : negative_binomial(shapes, nodes);
  };
  const GaussHermiteLadder ladder(20, kSoftplusNodeSchedule);
  for (const std::string name : {"negative_binomial", "bernoulli"}) {
    const ArrayXXd& x = name == "bernoulli" ? binary : counts;
    Outputs adaptive;
    const auto model = make(name, 20);
    model->expected_terms(x, mu, s2, adaptive.ell, adaptive.g, adaptive.G, adaptive.d2, adaptive.d3,
                          adaptive.d4);
    std::set<int> used;
    for (std::size_t step = 0; step < ladder.steps(); ++step) {
      const int points = ladder.step(step).points();
      const auto fixed_model = make(name, points);
      dynamic_cast<QuadratureObservation&>(*fixed_model).use_fixed_rule();
      Outputs fixed;
      fixed_model->expected_terms(x, mu, s2, fixed.ell, fixed.g, fixed.G, fixed.d2, fixed.d3,
                                  fixed.d4);
      for (Eigen::Index i = 0; i < mu.size(); ++i) {
        if (ladder.for_variance(s2(i)).points() != points) continue;
        used.insert(points);
        for (const auto& [a, b] : {std::pair{&adaptive.ell, &fixed.ell},
                                   {&adaptive.g, &fixed.g},
                                   {&adaptive.G, &fixed.G},
                                   {&adaptive.d2, &fixed.d2},
                                   {&adaptive.d3, &fixed.d3},
                                   {&adaptive.d4, &fixed.d4}})
          EXPECT_EQ((*a)(i), (*b)(i)) << name << " entry " << i << " (" << points << " nodes)";
      }
    }
    EXPECT_GE(used.size(), 5u) << name;  // the grid reaches most steps
  }
}

// The softplus models keep their last moments per thread and reuse them only for bitwise the
// same (mu, s2), shifts and rule: interleaved calls, an input changed in place, another
// model's shapes and the fixed rule all give what a first call gives.
TEST(QuadratureObservation, SoftplusModelsReuseOnlyTheMomentsOfTheSameInputs) {
  std::mt19937_64 rng(42);
  const Moments a = random_poisson_inputs(5, 8, rng), b = random_poisson_inputs(5, 8, rng);
  const Eigen::VectorXd shapes = test_shapes(5);
  const auto model = negative_binomial(shapes);
  const Outputs first_a = evaluate(*model, a.x, a.mu, a.s2);
  const Outputs first_b = evaluate(*model, a.x, b.mu, b.s2);
  const auto same = [](const Outputs& p, const Outputs& q) {
    return (p.ell == q.ell).all() && (p.g == q.g).all() && (p.G == q.G).all() &&
           (p.d2 == q.d2).all() && (p.d3 == q.d3).all() && (p.d4 == q.d4).all();
  };
  EXPECT_FALSE(same(first_a, first_b));
  EXPECT_TRUE(same(evaluate(*model, a.x, a.mu, a.s2), first_a));
  ArrayXXd mu = a.mu, s2 = a.s2;
  (void)evaluate(*model, a.x, mu, s2);
  mu = b.mu;  // the same arrays, other values
  s2 = b.s2;
  EXPECT_TRUE(same(evaluate(*model, a.x, mu, s2), first_b));
  // Another model (other shifts) and the fixed rule on the inputs just seen.
  const auto other = negative_binomial(2.0 * shapes);
  const Outputs other_b = evaluate(*other, a.x, b.mu, b.s2);
  (void)evaluate(*model, a.x, a.mu, a.s2);
  EXPECT_TRUE(same(evaluate(*other, a.x, b.mu, b.s2), other_b));
  EXPECT_FALSE(same(other_b, first_b));
  const auto fixed = negative_binomial(shapes);
  dynamic_cast<QuadratureObservation&>(*fixed).use_fixed_rule();
  const Outputs fixed_b = evaluate(*fixed, a.x, b.mu, b.s2);
  EXPECT_FALSE(same(fixed_b, first_b));  // 20 nodes at every entry instead of 6 to 20
  (void)evaluate(*model, a.x, b.mu, b.s2);
  EXPECT_TRUE(same(evaluate(*fixed, a.x, b.mu, b.s2), fixed_b));
}

}  // namespace
}  // namespace spikevi
