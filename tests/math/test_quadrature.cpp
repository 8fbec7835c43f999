// Gauss–Hermite rule and Gaussian expectations (DESIGN.md §6): exactness on polynomials.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/math/quadrature.hpp"

namespace spikevi {
namespace {

using Eigen::ArrayXXd;

const std::vector<int> kRuleSizes = {1, 2, 3, 4, 5, 8, 10, 15, 20, 31, 40, 64};

// integral t^k e^{-t^2} dt over the real line: Gamma((k + 1) / 2) for even k, 0 for odd k.
double hermite_moment(int k) { return k % 2 == 1 ? 0.0 : std::tgamma(0.5 * (k + 1)); }

TEST(GaussHermiteRule, MatchesTheClosedFormsForTwoAndThreePoints) {
  const double root_pi = std::sqrt(std::numbers::pi);
  const GaussHermiteRule two(2);
  EXPECT_NEAR(two.nodes()(1), std::sqrt(0.5), 1e-16);
  EXPECT_NEAR(two.weights()(0), root_pi / 2.0, 1e-15);
  const GaussHermiteRule three(3);
  EXPECT_EQ(three.nodes()(1), 0.0);
  EXPECT_NEAR(three.nodes()(2), std::sqrt(1.5), 1e-15);
  EXPECT_NEAR(three.weights()(1), 2.0 * root_pi / 3.0, 1e-15);
  EXPECT_NEAR(three.weights()(2), root_pi / 6.0, 1e-15);
}

TEST(GaussHermiteRule, NodesAreSymmetricAndWeightsPositiveSummingToRootPi) {
  for (const int n : {1, 2, 3, 7, 20, 64, 100, GaussHermiteRule::kMaxPoints}) {
    const GaussHermiteRule rule(n);
    ASSERT_EQ(rule.points(), n);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(rule.nodes()(i), -rule.nodes()(n - 1 - i)) << n << " " << i;
      EXPECT_EQ(rule.weights()(i), rule.weights()(n - 1 - i)) << n << " " << i;
      EXPECT_GT(rule.weights()(i), 0.0) << n << " " << i;
      if (i > 0) {
        EXPECT_LT(rule.nodes()(i - 1), rule.nodes()(i)) << n << " " << i;
      }
    }
    EXPECT_NEAR(rule.weights().sum() / std::sqrt(std::numbers::pi), 1.0, 1e-14) << n;
    EXPECT_NEAR(rule.gaussian_weights().sum(), 1.0, 1e-14) << n;
  }
}

// sum_i w_i t_i^k = Gamma((k+1)/2) for every k <= 2n - 1, to 1e-12 relative to sum w_i |t_i|^k
// (which is the integral itself for even k; for odd k the exact value 0 leaves only the scale).
TEST(GaussHermiteRule, IntegratesPolynomialsUpToDegreeTwoNMinusOneExactly) {
  for (const int n : kRuleSizes) {
    const GaussHermiteRule rule(n);
    for (int k = 0; k <= 2 * n - 1; ++k) {
      const Eigen::ArrayXd terms = rule.weights() * rule.nodes().pow(k);
      const double scale = (rule.weights() * rule.nodes().abs().pow(k)).sum();
      EXPECT_NEAR(terms.sum(), hermite_moment(k), 1e-12 * scale) << "n = " << n << ", k = " << k;
    }
    // ... but not degree 2n: the remainder n! sqrt(pi) / (2^n (2n)!) f^{(2n)} is n! sqrt(pi) / 2^n
    // for t^{2n} (Abramowitz & Stegun 25.4.46); checked while it is well above round-off.
    if (n <= 12) {
      const double rule_value = (rule.weights() * rule.nodes().pow(2 * n)).sum();
      const double remainder =
          std::tgamma(n + 1.0) * std::sqrt(std::numbers::pi) / std::ldexp(1.0, n);
      EXPECT_NEAR(hermite_moment(2 * n) - rule_value, remainder, 1e-9 * remainder) << n;
    }
  }
}

TEST(GaussHermiteRule, RejectsNodeCountsOutsideItsRange) {
  EXPECT_THROW(GaussHermiteRule(0), ConfigError);
  EXPECT_THROW(GaussHermiteRule(-3), ConfigError);
  EXPECT_THROW(GaussHermiteRule(GaussHermiteRule::kMaxPoints + 1), ConfigError);
}

// E[eta^j], eta ~ N(mu, s2): m_0 = 1, m_1 = mu, m_j = mu m_{j-1} + (j - 1) s2 m_{j-2}.
std::vector<double> gaussian_moments(double mu, double s2, int highest) {
  std::vector<double> m(highest + 1);
  m[0] = 1.0;
  if (highest >= 1) m[1] = mu;
  for (int j = 2; j <= highest; ++j) m[j] = mu * m[j - 1] + (j - 1) * s2 * m[j - 2];
  return m;
}

// A polynomial sum_j a_j eta^j with positive coefficients a_j = 1 / j! (no cancellation for
// mu > 0, so 1e-12 relative is a fair bound), its derivatives at a point, and their exact
// expectations under N(mu, s2).
struct Polynomial {
  std::vector<double> coefficients;

  explicit Polynomial(int degree) : coefficients(degree + 1) {
    for (int j = 0; j <= degree; ++j) coefficients[j] = 1.0 / std::tgamma(j + 1.0);
  }
  // d^k/deta^k of eta^j is j!/(j-k)! eta^{j-k}.
  static double falling(int j, int k) {
    double product = 1.0;
    for (int i = 0; i < k; ++i) product *= j - i;
    return product;
  }
  std::array<double, 5> at(double eta) const {
    std::array<double, 5> out{};
    for (int k = 0; k < 5; ++k) {
      for (int j = k; j < static_cast<int>(coefficients.size()); ++j)
        out[k] += coefficients[j] * falling(j, k) * std::pow(eta, j - k);
    }
    return out;
  }
  std::array<double, 5> expected(double mu, double s2) const {
    const std::vector<double> m = gaussian_moments(mu, s2, coefficients.size());
    std::array<double, 5> out{};
    for (int k = 0; k < 5; ++k) {
      for (int j = k; j < static_cast<int>(coefficients.size()); ++j)
        out[k] += coefficients[j] * falling(j, k) * m[j - k];
    }
    return out;
  }
};

struct Targets {
  std::array<ArrayXXd, 5> of_order;
  ExpectationTargets pointers() {
    return {&of_order[0], &of_order[1], &of_order[2], &of_order[3], &of_order[4]};
  }
};

void random_moments(int rows, int cols, std::mt19937_64& rng, double mu_low, double mu_high,
                    ArrayXXd& mu, ArrayXXd& s2) {
  std::uniform_real_distribution<double> mean(mu_low, mu_high),
      log_variance(std::log(1e-4), std::log(2.0));
  mu.resize(rows, cols);
  s2.resize(rows, cols);
  for (Eigen::Index i = 0; i < mu.size(); ++i) {
    mu(i) = mean(rng);
    s2(i) = std::exp(log_variance(rng));
  }
}

TEST(GaussianExpectations, AreExactForPolynomialsOfDegreeUpToTwoNMinusOne) {
  std::mt19937_64 rng(21);
  for (const int n : {1, 2, 5, 10, 20}) {
    const GaussHermiteRule rule(n);
    const Polynomial poly(2 * n - 1);
    ArrayXXd mu, s2;
    random_moments(4, 6, rng, 0.2, 2.0, mu, s2);
    Targets out;
    gaussian_expectations_pointwise(
        rule, mu, s2, [&poly](Eigen::Index, Eigen::Index, double eta) { return poly.at(eta); },
        out.pointers());
    for (Eigen::Index i = 0; i < mu.size(); ++i) {
      const std::array<double, 5> expected = poly.expected(mu(i), s2(i));
      for (int k = 0; k < 5; ++k) {
        EXPECT_NEAR(out.of_order[k](i), expected[k], 1e-12 * std::max(1.0, expected[k]))
            << "n = " << n << ", order " << k << ", mu = " << mu(i) << ", s2 = " << s2(i);
      }
    }
  }
}

// The column (vectorised) form and the scalar form agree, pass the right column and rows, and
// only the wanted targets are touched (resized and overwritten).
TEST(GaussianExpectations, ColumnAndScalarFormsAgreeAndOnlyWantedTargetsAreWritten) {
  std::mt19937_64 rng(22);
  const GaussHermiteRule rule(20);
  ArrayXXd mu, s2;
  random_moments(7, 5, rng, -3.0, 3.0, mu, s2);
  ArrayXXd offset = ArrayXXd::Random(7, 5);  // f(eta) = e^eta + offset(row, col) eta^2
  const auto point = [&offset](Eigen::Index row, Eigen::Index col, double eta) {
    const double e = std::exp(eta), a = offset(row, col);
    return std::array<double, 5>{e + a * eta * eta, e + 2.0 * a * eta, e + 2.0 * a, e, e};
  };
  Targets scalar;
  gaussian_expectations_pointwise(rule, mu, s2, point, scalar.pointers());

  ArrayXXd first, third, untouched = ArrayXXd::Constant(2, 2, 42.0);
  gaussian_expectations(
      rule, mu, s2,
      [&offset](Eigen::Index col, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
        EXPECT_FALSE(at.wanted[0]);
        EXPECT_FALSE(at.wanted[2]);
        at.of_order[1] = eta.exp() + 2.0 * offset.col(col) * eta;
        at.of_order[3] = eta.exp();
      },
      {nullptr, &first, nullptr, &third, nullptr});
  EXPECT_EQ(untouched(0, 0), 42.0);
  ASSERT_EQ(first.rows(), 7);
  ASSERT_EQ(first.cols(), 5);
  EXPECT_LE((first - scalar.of_order[1]).abs().maxCoeff(), 1e-14 * first.abs().maxCoeff());
  EXPECT_LE((third - scalar.of_order[3]).abs().maxCoeff(), 1e-14 * third.abs().maxCoeff());

  // E e^eta = exp(mu + s2 / 2), E eta^2 = mu^2 + s2: 20 nodes suffice for s2 <= 2.
  const ArrayXXd rate = (mu + 0.5 * s2).exp();
  const ArrayXXd expected = rate + offset * (mu.square() + s2);
  EXPECT_LE(((scalar.of_order[0] - expected).abs() / expected.abs().max(rate)).maxCoeff(), 1e-13);
  EXPECT_LE(((scalar.of_order[4] - rate).abs() / rate).maxCoeff(), 1e-13);
}

TEST(GaussianExpectations, ZeroVarianceEvaluatesAtTheMean) {
  const GaussHermiteRule rule(9);
  const ArrayXXd mu = ArrayXXd::Random(3, 4), s2 = ArrayXXd::Zero(3, 4);
  ArrayXXd value;
  gaussian_expectations_pointwise(rule, mu, s2,
                                  [](Eigen::Index, Eigen::Index, double eta) {
                                    return std::array<double, 5>{std::sin(eta), 0, 0, 0, 0};
                                  },
                                  {&value, nullptr, nullptr, nullptr, nullptr});
  EXPECT_LE((value - mu.sin()).abs().maxCoeff(), 1e-15);
}

TEST(GaussianExpectations, RejectsMeansAndVariancesOfDifferentShapes) {
  const GaussHermiteRule rule(5);
  ArrayXXd value;
  const auto constant = [](Eigen::Index, Eigen::Index, double) {
    return std::array<double, 5>{1, 0, 0, 0, 0};
  };
  EXPECT_THROW(
      gaussian_expectations_pointwise(rule, ArrayXXd::Zero(3, 4), ArrayXXd::Zero(4, 3), constant,
                                      {&value, nullptr, nullptr, nullptr, nullptr}),
      InputError);
}

// ---- GaussHermiteLadder: fewer nodes where s2 is small (issue 17) ----

// The pointwise terms the softplus schedule covers, for n = 1 and shift 0 (a shift moves mu):
// softplus(u), p = sigmoid(u), p q, p q (q - p), p q (1 - 6 p q), i.e. minus the derivatives of
// orders 0..4 of f = -softplus (x eta, the rest of f, every rule integrates exactly).
std::array<double, 5> softplus_terms(double u) {
  const double e = std::exp(-std::abs(u));
  const double p = u >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e), q = 1.0 - p, pq = p * q;
  return {std::max(u, 0.0) + std::log1p(e), p, pq, pq * (q - p), pq * (1.0 - 6.0 * pq)};
}

// Max over mu in [-12, 12] (step 0.05) and the five orders of |rule - reference| at one s2.
double softplus_error(const GaussHermiteRule& rule, const GaussHermiteRule& reference, double s2) {
  const auto expectations = [s2](const GaussHermiteRule& r, double mu) {
    std::array<double, 5> sum{};
    for (int i = 0; i < r.points(); ++i) {
      const std::array<double, 5> at = softplus_terms(mu + std::sqrt(2.0 * s2) * r.nodes()(i));
      for (int k = 0; k < 5; ++k) sum[k] += r.gaussian_weights()(i) * at[k];
    }
    return sum;
  };
  double worst = 0.0;
  for (int j = -240; j <= 240; ++j) {
    const std::array<double, 5> a = expectations(rule, 0.05 * j);
    const std::array<double, 5> b = expectations(reference, 0.05 * j);
    for (int k = 0; k < 5; ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
  }
  return worst;
}

// |E e^eta / exp(mu + s2 / 2) - 1| (independent of mu).
double exp_error(const GaussHermiteRule& rule, double s2) {
  double sum = 0.0;
  for (int i = 0; i < rule.points(); ++i)
    sum += rule.gaussian_weights()(i) * std::exp(std::sqrt(2.0 * s2) * rule.nodes()(i) - 0.5 * s2);
  return std::abs(sum - 1.0);
}

// Each step of each schedule keeps its promise up to its limit, and below it: the softplus
// terms within 1e-10 (per unit of n) of a 200-node rule, E e^eta within 1e-10 relative of the
// closed form. The limits are ~0.7x where that first fails, so at twice the limit it fails:
// the schedules are not needlessly cautious.
TEST(GaussHermiteLadder, EveryStepMeetsItsScheduleAccuracyUpToItsLimit) {
  const GaussHermiteRule reference(200);
  for (const NodeStep& step : kSoftplusNodeSchedule) {
    const GaussHermiteRule rule(step.points);
    for (const double fraction : {1.0, 0.5, 0.1, 0.01}) {
      EXPECT_LE(softplus_error(rule, reference, fraction * step.max_variance), 1e-10)
          << step.points << " nodes at s2 = " << fraction * step.max_variance;
    }
    EXPECT_GT(softplus_error(rule, reference, 2.0 * step.max_variance), 1e-10) << step.points;
  }
  for (const NodeStep& step : kExpNodeSchedule) {
    const GaussHermiteRule rule(step.points);
    for (const double fraction : {1.0, 0.5, 0.1, 0.01})
      EXPECT_LE(exp_error(rule, fraction * step.max_variance), 1e-10) << step.points;
    EXPECT_GT(exp_error(rule, 2.0 * step.max_variance), 1e-10) << step.points;
  }
}

TEST(GaussHermiteLadder, PicksTheSmallestRuleCoveringTheVarianceAndNeverMoreThanItsPoints) {
  const GaussHermiteLadder ladder(20, kSoftplusNodeSchedule);
  EXPECT_FALSE(ladder.fixed());
  EXPECT_EQ(ladder.points(), 20);
  EXPECT_EQ(ladder.for_variance(0.0).points(), 4);
  EXPECT_EQ(ladder.for_variance(4.7e-3).points(), 4);
  EXPECT_EQ(ladder.for_variance(5e-3).points(), 6);
  EXPECT_EQ(ladder.for_variance(0.2).points(), 16);
  EXPECT_EQ(ladder.for_variance(0.3).points(), 20);
  EXPECT_EQ(ladder.for_variance(1e6).points(), 20);
  // At most 8 nodes: the steps of 8 points and more are dropped, 8 nodes serve s2 > 2.6e-2.
  const GaussHermiteLadder capped(8, kSoftplusNodeSchedule);
  EXPECT_EQ(capped.for_variance(3e-2).points(), 8);
  EXPECT_EQ(capped.for_variance(1e-2).points(), 6);
  const GaussHermiteLadder fixed(20);
  EXPECT_TRUE(fixed.fixed());
  EXPECT_EQ(fixed.for_variance(0.0).points(), 20);
  const NodeStep descending[] = {{6, 1e-2}, {4, 1e-1}};
  EXPECT_THROW(GaussHermiteLadder(20, descending), ConfigError);
}

// A column takes the rule of its largest s2, and so agrees with the 20-node rule to the
// schedule's accuracy (here E sigmoid, 1e-10).
TEST(GaussianExpectations, ALadderTakesEachColumnsRuleFromItsLargestVariance) {
  std::mt19937_64 rng(23);
  ArrayXXd mu, s2;
  random_moments(6, 4, rng, -4.0, 4.0, mu, s2);
  s2.col(0).setConstant(1e-4);
  s2.col(1).setConstant(1e-4);
  s2(3, 1) = 0.12;  // column 1 needs the 12-point rule
  s2.col(2).setConstant(0.5);
  s2.col(3).setZero();
  const auto sigmoid = [](Eigen::Index, const Eigen::ArrayXd& eta, PointwiseDerivatives& at) {
    at.of_order[1] = 1.0 / (1.0 + (-eta).exp());
  };
  const GaussHermiteLadder ladder(20, kSoftplusNodeSchedule);
  ASSERT_EQ(ladder.for_variance(1e-4).points(), 4);
  ASSERT_EQ(ladder.for_variance(0.12).points(), 12);
  ArrayXXd adaptive, fixed, twelve;
  gaussian_expectations(ladder, mu, s2, sigmoid, {nullptr, &adaptive, nullptr, nullptr, nullptr});
  gaussian_expectations(GaussHermiteRule(20), mu, s2, sigmoid,
                        {nullptr, &fixed, nullptr, nullptr, nullptr});
  gaussian_expectations(GaussHermiteRule(12), mu, s2, sigmoid,
                        {nullptr, &twelve, nullptr, nullptr, nullptr});
  EXPECT_LE((adaptive - fixed).abs().maxCoeff(), 1e-10);
  for (Eigen::Index i = 0; i < 6; ++i) {
    EXPECT_EQ(adaptive(i, 1), twelve(i, 1));
    EXPECT_EQ(adaptive(i, 2), fixed(i, 2));
  }
}

}  // namespace
}  // namespace spikevi
