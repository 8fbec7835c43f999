// Counter-based random draws (DESIGN.md §4): reproducibility and distributions.
//
// Distribution checks use n = 1e5 draws from fixed keys, so they are deterministic; each
// compares a statistic with its exact expectation using the exact standard error and fails
// beyond 5 standard errors (a correct generator fails one such check with probability ~6e-7),
// or uses a goodness-of-fit test at a level that a correct generator fails ~1e-3 of the time.
// Wrong algorithms (a biased transform, a wrong acceptance test) miss by many standard errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

constexpr int kDraws = 100000;
constexpr double kStandardErrors = 5.0;
constexpr double kKolmogorovCritical = 1.95;  // sqrt(n) D_n: P(exceed) = 0.001

RandomStream stream_for(std::uint64_t seed, RandomPurpose purpose = RandomPurpose::kMonteCarlo,
                        std::uint64_t iteration = 3, std::uint64_t trial = 5,
                        std::uint64_t inner = 7) {
  return RandomStream({seed, purpose}, {iteration, trial, inner});
}

struct SampleMoments {
  double mean = 0.0;
  double variance = 0.0;  // unbiased
};

SampleMoments moments(const std::vector<double>& x) {
  SampleMoments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= static_cast<double>(x.size() - 1);
  return m;
}

// Expects the sample mean and variance of draws with the given mean, variance and fourth
// central moment to lie within kStandardErrors of them; Var(s^2) ~ (mu4 - sigma^4) / n.
void expect_mean_and_variance(const std::vector<double>& x, double mean, double variance,
                              double fourth_central) {
  const double n = static_cast<double>(x.size());
  const SampleMoments m = moments(x);
  EXPECT_NEAR(m.mean, mean, kStandardErrors * std::sqrt(variance / n));
  EXPECT_NEAR(m.variance, variance,
              kStandardErrors * std::sqrt((fourth_central - variance * variance) / n));
}

// sqrt(n) times the Kolmogorov-Smirnov distance between the sample and a continuous CDF.
template <typename Cdf>
double scaled_ks_distance(std::vector<double> x, Cdf&& cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double distance = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(x[i]);
    distance = std::max(
        {distance, (static_cast<double>(i) + 1.0) / n - f, f - static_cast<double>(i) / n});
  }
  return std::sqrt(n) * distance;
}

TEST(RandomStream, GivesIdenticalDrawsForTheSameKeyAndCounter) {
  RandomStream a = stream_for(42);
  RandomStream b = stream_for(42);
  for (std::uint64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(a.uniform(i), b.uniform(i));
    EXPECT_EQ(a.normal(i), b.normal(i));
  }
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.next_u64(), b.next_u64());
    EXPECT_EQ(a.next_poisson(40.0), b.next_poisson(40.0));
    EXPECT_EQ(a.next_gamma(0.7), b.next_gamma(0.7));
  }
}

TEST(RandomStream, MakesEachIndexedDrawReproducibleAlone) {
  RandomStream fresh = stream_for(1);
  const double alone = fresh.uniform(1001);
  const double normal_alone = fresh.normal(333);
  RandomStream used = stream_for(1);
  for (int i = 0; i < 100; ++i) used.next_gamma(2.0);
  EXPECT_EQ(used.uniform(1001), alone);
  EXPECT_EQ(used.normal(333), normal_alone);
}

TEST(RandomStream, SequentialDrawsFollowTheIndexedOnes) {
  RandomStream indexed = stream_for(2);
  RandomStream uniforms = stream_for(2);
  RandomStream normals = stream_for(2);
  for (std::uint64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(uniforms.next_uniform(), indexed.uniform(i));
    EXPECT_EQ(normals.next_normal(), indexed.normal(i));
  }
}

// A normal consumes two words and a uniform one, so mixed sequential draws never share a
// word: after one normal, the next word is word 2.
TEST(RandomStream, SequentialNormalsConsumeTwoWordsAndUniformsOne) {
  RandomStream words = stream_for(3);
  std::vector<std::uint64_t> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(words.next_u64());
  RandomStream mixed = stream_for(3);
  mixed.next_normal();
  EXPECT_EQ(mixed.next_u64(), expected[2]);
  mixed.next_normal();  // words 3 and 4, across a block boundary
  EXPECT_EQ(mixed.next_u64(), expected[5]);
}

TEST(RandomStream, ChangesWithSeedPurposeIterationTrialAndInnerStep) {
  auto first_words = [](RandomStream s) {
    return std::vector<double>{s.uniform(0), s.uniform(1), s.uniform(2), s.uniform(3)};
  };
  const std::vector<double> base = first_words(stream_for(9));
  EXPECT_NE(first_words(stream_for(10)), base);
  EXPECT_NE(first_words(stream_for(9, RandomPurpose::kMinibatch)), base);
  EXPECT_NE(first_words(stream_for(9, RandomPurpose::kMonteCarlo, 4)), base);
  EXPECT_NE(first_words(stream_for(9, RandomPurpose::kMonteCarlo, 3, 6)), base);
  EXPECT_NE(first_words(stream_for(9, RandomPurpose::kMonteCarlo, 3, 5, 8)), base);
  EXPECT_EQ(first_words(stream_for(9)), base);
}

TEST(RandomStream, UniformsLieInTheOpenUnitIntervalWithUniformMoments) {
  RandomStream stream = stream_for(11);
  std::vector<double> x(kDraws);
  for (double& v : x) v = stream.next_uniform();
  EXPECT_GT(*std::min_element(x.begin(), x.end()), 0.0);
  EXPECT_LT(*std::max_element(x.begin(), x.end()), 1.0);
  expect_mean_and_variance(x, 0.5, 1.0 / 12.0, 1.0 / 80.0);
  EXPECT_LT(scaled_ks_distance(x, [](double u) { return u; }), kKolmogorovCritical);
}

TEST(RandomStream, NormalsHaveStandardNormalMomentsAndDistribution) {
  RandomStream stream = stream_for(12);
  std::vector<double> x(kDraws);
  for (double& v : x) v = stream.next_normal();
  const double n = kDraws;
  double m1 = 0.0, m2 = 0.0, m4 = 0.0;
  for (double v : x) {
    m1 += v;
    m2 += v * v;
    m4 += v * v * v * v;
  }
  // E x = 0, E x^2 = 1, E x^4 = 3 with variances 1, 2 and E x^8 - 9 = 96.
  EXPECT_NEAR(m1 / n, 0.0, kStandardErrors * std::sqrt(1.0 / n));
  EXPECT_NEAR(m2 / n, 1.0, kStandardErrors * std::sqrt(2.0 / n));
  EXPECT_NEAR(m4 / n, 3.0, kStandardErrors * std::sqrt(96.0 / n));
  const auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  EXPECT_LT(scaled_ks_distance(x, phi), kKolmogorovCritical);
}

class PoissonDraws : public ::testing::TestWithParam<double> {};

// Means below 30 use inversion and the rest PTRS, so 29 and 31 straddle the switch.
TEST_P(PoissonDraws, MatchTheMeanVarianceAndProbabilitiesOfThePoisson) {
  const double mu = GetParam();
  RandomStream stream = stream_for(13);
  std::vector<double> x(kDraws);
  for (double& v : x) v = static_cast<double>(stream.next_poisson(mu));
  expect_mean_and_variance(x, mu, mu, mu + 3.0 * mu * mu);

  // Pearson chi-square over the values with expected count >= 20, plus the two pooled tails.
  // Under H0 it has mean df and sd sqrt(2 df); df + 5 sd is exceeded with probability < 1e-4.
  const auto pmf = [mu](double k) {
    return std::exp(k * std::log(mu) - mu - boost::math::lgamma(k + 1.0));
  };
  std::vector<double> observed, expected;
  double below = 0.0, mass_below = 0.0, inside_mass = 0.0;
  for (int k = 0; k < 10 * mu + 50; ++k) {
    const double p = pmf(k);
    const double count = static_cast<double>(std::count(x.begin(), x.end(), k));
    if (p * kDraws >= 20.0) {
      observed.push_back(count);
      expected.push_back(p * kDraws);
      inside_mass += p;
    } else if (expected.empty()) {
      below += count;
      mass_below += p;
    }
  }
  const double inside_count = [&] {
    double s = 0.0;
    for (double c : observed) s += c;
    return s;
  }();
  observed.push_back(below);
  expected.push_back(mass_below * kDraws);
  observed.push_back(kDraws - inside_count - below);
  expected.push_back((1.0 - inside_mass - mass_below) * kDraws);
  double chi2 = 0.0;
  int bins = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    if (expected[i] < 1e-9) continue;  // an empty tail
    chi2 += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
    ++bins;
  }
  const double df = bins - 1;
  EXPECT_LT(chi2, df + 5.0 * std::sqrt(2.0 * df)) << "bins " << bins;
}

INSTANTIATE_TEST_SUITE_P(Means, PoissonDraws, ::testing::Values(0.3, 5.0, 29.0, 31.0, 200.0));

TEST(RandomStream, GivesZeroForAPoissonMeanThatIsNotPositive) {
  RandomStream stream = stream_for(14);
  EXPECT_EQ(stream.next_poisson(0.0), 0u);
  EXPECT_EQ(stream.next_poisson(-3.0), 0u);
}

TEST(RandomStream, RefusesAPoissonMeanThatIsNotFinite) {
  RandomStream stream = stream_for(15);
  EXPECT_THROW(stream.next_poisson(std::numeric_limits<double>::quiet_NaN()), NumericalError);
  EXPECT_THROW(stream.next_poisson(std::numeric_limits<double>::infinity()), NumericalError);
}

class GammaDraws : public ::testing::TestWithParam<double> {};

// Shapes below 1 use the boost u^(1/shape); the rest Marsaglia-Tsang directly.
TEST_P(GammaDraws, MatchTheMeanVarianceAndDistributionOfTheGamma) {
  const double shape = GetParam();
  RandomStream stream = stream_for(16);
  std::vector<double> x(kDraws);
  for (double& v : x) v = stream.next_gamma(shape);
  EXPECT_GT(*std::min_element(x.begin(), x.end()), 0.0);
  // Gamma(k, 1): mean k, variance k, fourth central moment 3k^2 + 6k.
  expect_mean_and_variance(x, shape, shape, 3.0 * shape * shape + 6.0 * shape);
  const auto cdf = [shape](double v) { return boost::math::gamma_p(shape, v); };
  EXPECT_LT(scaled_ks_distance(x, cdf), kKolmogorovCritical);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GammaDraws, ::testing::Values(0.5, 1.5, 10.0));

TEST(RandomStream, RefusesAGammaShapeThatIsNotPositiveAndFinite) {
  RandomStream stream = stream_for(17);
  EXPECT_THROW(stream.next_gamma(0.0), NumericalError);
  EXPECT_THROW(stream.next_gamma(-1.0), NumericalError);
  EXPECT_THROW(stream.next_gamma(std::numeric_limits<double>::quiet_NaN()), NumericalError);
}

}  // namespace
}  // namespace spikevi
