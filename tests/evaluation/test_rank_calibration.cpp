#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/rank_calibration.hpp"

namespace spikevi {
namespace {

constexpr int kDraws = 99;

// R x K ranks of a truth x ~ N(0, 1) among L draws y ~ N(shift, scale^2): scale 1 and shift
// 0 is a calibrated posterior, scale < 1 too narrow, scale > 1 too wide, shift != 0 biased.
// `shared` > 0 correlates the K scalars of a replicate (x_k = sqrt(shared) c + sqrt(1 -
// shared) e_k, and the draws the same way), as the coordinates of one posterior are.
RankTable synthetic_ranks(int replicates, int scalars, double scale, double shift,
                          std::uint64_t seed, double shared = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  RankTable ranks(replicates, scalars);
  for (int r = 0; r < replicates; ++r) {
    const double common = normal(rng);
    std::vector<double> truth(static_cast<std::size_t>(scalars));
    for (int k = 0; k < scalars; ++k)
      truth[static_cast<std::size_t>(k)] =
          std::sqrt(shared) * common + std::sqrt(1 - shared) * normal(rng);
    Eigen::ArrayXi below = Eigen::ArrayXi::Zero(scalars);
    for (int l = 0; l < kDraws; ++l) {
      const double draw_common = normal(rng);
      for (int k = 0; k < scalars; ++k) {
        const double z = std::sqrt(shared) * draw_common + std::sqrt(1 - shared) * normal(rng);
        if (shift + scale * z < truth[static_cast<std::size_t>(k)]) ++below(k);
      }
    }
    for (int k = 0; k < scalars; ++k) ranks(r, k) = below(k);
  }
  return ranks;
}

TEST(RankVerdict, RuleOnShapeStatistics) {
  EXPECT_EQ(rank_verdict({.p_value = 0.5, .mean_z = 9, .outer_z = 9}, 0.01), RankVerdict::kUniform);
  EXPECT_EQ(rank_verdict({.p_value = 0.001, .mean_z = 0.3, .outer_z = 6}, 0.01),
            RankVerdict::kTooNarrow);
  EXPECT_EQ(rank_verdict({.p_value = 0.001, .mean_z = -0.3, .outer_z = -6}, 0.01),
            RankVerdict::kTooWide);
  EXPECT_EQ(rank_verdict({.p_value = 0.001, .mean_z = -5, .outer_z = 2}, 0.01),
            RankVerdict::kBiased);
  EXPECT_EQ(verdict_name(RankVerdict::kTooNarrow), "too narrow");
  EXPECT_EQ(verdict_name(RankVerdict::kTooWide), "too wide");
  EXPECT_EQ(verdict_name(RankVerdict::kBiased), "biased");
  EXPECT_EQ(verdict_name(RankVerdict::kUniform), "uniform");
}

TEST(RankTest, VerdictsOfSyntheticRankSets) {
  const RankTestSettings settings;
  EXPECT_EQ(test_rank_uniformity(synthetic_ranks(200, 10, 1.0, 0.0, 1), kDraws, settings).verdict,
            RankVerdict::kUniform);
  EXPECT_EQ(test_rank_uniformity(synthetic_ranks(200, 10, 0.6, 0.0, 2), kDraws, settings).verdict,
            RankVerdict::kTooNarrow);
  EXPECT_EQ(test_rank_uniformity(synthetic_ranks(200, 10, 2.0, 0.0, 3), kDraws, settings).verdict,
            RankVerdict::kTooWide);
  EXPECT_EQ(test_rank_uniformity(synthetic_ranks(200, 10, 1.0, 0.6, 4), kDraws, settings).verdict,
            RankVerdict::kBiased);
  EXPECT_EQ(test_rank_uniformity(synthetic_ranks(200, 10, 1.0, -0.6, 5), kDraws, settings).verdict,
            RankVerdict::kBiased);
}

// The chi-square statistic of one column of ranks equals the textbook sum over bins.
TEST(RankTest, ChiSquareMatchesItsDefinition) {
  RankTable ranks(60, 1);
  for (int r = 0; r < 60; ++r) ranks(r, 0) = (r * 37) % 20 < 14 ? (r * 7) % 100 : 3;
  RankTestSettings settings;
  settings.bins = 4;
  const RankTest test = test_rank_uniformity(ranks, kDraws, settings);
  std::vector<double> counts(4, 0.0);
  for (int r = 0; r < 60; ++r) counts[static_cast<std::size_t>(ranks(r, 0) / 25)] += 1;
  double chi = 0;
  for (double c : counts) chi += (c - 15) * (c - 15) / 15;
  EXPECT_NEAR(test.chi_square, chi, 1e-12);
  EXPECT_EQ(test.chi_square_dof, 3);
  EXPECT_DOUBLE_EQ(test.design_effect, 1.0);  // one scalar per replicate
  for (std::size_t b = 0; b < 4; ++b) EXPECT_EQ(test.histogram[b], counts[b]);
  // p-value of chi-square with 3 dof in closed form: 1 - P(3/2, x/2).
  const double x = chi;
  const double p3 = std::erfc(std::sqrt(x / 2)) + std::sqrt(2 * x / M_PI) * std::exp(-x / 2);
  EXPECT_NEAR(test.chi_square_p_value, p3, 1e-10);
}

// The ECDF difference is zero at the end points' neighbours of a perfectly flat table, the band
// contains 0 and narrows towards the ends, and the grid is i / (L+1).
TEST(RankTest, BandAndEcdfOfAFlatTable) {
  RankTable ranks(100, 4);
  for (int r = 0; r < 100; ++r)
    for (int k = 0; k < 4; ++k) ranks(r, k) = (r + 25 * k) % 100;
  const RankTest test = test_rank_uniformity(ranks, kDraws, RankTestSettings{});
  ASSERT_EQ(test.ecdf_grid.size(), 99u);
  EXPECT_DOUBLE_EQ(test.ecdf_grid[9], 0.10);
  for (std::size_t i = 0; i < 99; ++i) {
    EXPECT_NEAR(test.ecdf_difference[i], 0.0, 1e-12);
    EXPECT_LT(test.band_lower[i], 0.0);
    EXPECT_GT(test.band_upper[i], 0.0);
  }
  EXPECT_LT(test.band_upper[0] - test.band_lower[0], test.band_upper[49] - test.band_lower[49]);
  EXPECT_FALSE(test.outside_band);
  EXPECT_EQ(test.verdict, RankVerdict::kUniform);
  EXPECT_NEAR(test.chi_square, 0.0, 1e-12);
}

// Calibration of the tests themselves: over 200 uniform rank sets the chi-square verdict says
// non-uniform about alpha = 1 % of the time and the ECDF leaves the 95 % band about 5 % of
// the time. With 200 sets the counts are Binomial(200, 0.01) (mean 2; P(> 7) < 0.001) and
// Binomial(200, 0.05) (mean 10; P(outside 2..21) < 0.001).
TEST(RankTest, FalseAlarmRatesOfUniformSets) {
  RankTestSettings settings;
  settings.band_simulations = 400;
  int rejected = 0, outside = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    settings.seed = seed + 1000;
    const RankTest test =
        test_rank_uniformity(synthetic_ranks(100, 1, 1.0, 0.0, seed + 100), kDraws, settings);
    rejected += test.verdict != RankVerdict::kUniform;
    outside += test.outside_band;
  }
  EXPECT_LE(rejected, 7);
  EXPECT_GE(outside, 2);
  EXPECT_LE(outside, 21);
}

// Correlated scalars: pooling them without the design effect would reject a calibrated
// posterior; with it the verdict stays uniform and deff is near 1 + (K-1) rho.
TEST(RankTest, DesignEffectOfCorrelatedScalars) {
  const RankTable ranks = synthetic_ranks(200, 10, 1.0, 0.0, 11, 0.8);
  const RankTest test = test_rank_uniformity(ranks, kDraws, RankTestSettings{});
  EXPECT_GT(test.design_effect, 3.0);
  EXPECT_EQ(test.verdict, RankVerdict::kUniform);
  EXPECT_NEAR(test.effective_count, 2000.0 / test.design_effect, 1.0);
}

TEST(RankTest, RefusesBadArguments) {
  RankTable ranks = RankTable::Zero(5, 2);
  RankTestSettings settings;
  settings.bins = 7;  // does not divide 100
  EXPECT_THROW(test_rank_uniformity(ranks, kDraws, settings), ConfigError);
  ranks(0, 0) = 100;
  EXPECT_THROW(test_rank_uniformity(ranks, kDraws, RankTestSettings{}), InputError);
  EXPECT_THROW(test_rank_uniformity(RankTable(0, 0), kDraws, RankTestSettings{}), InputError);
}

TEST(RankCoverage, CentralIntervalsFromRanks) {
  RankTable ranks(1, 5);
  ranks << 0, 10, 50, 80, 99;  // r / L = 0, 0.101, 0.505, 0.808, 1
  std::vector<double> nominal;
  const std::vector<double> coverage = rank_interval_coverage(ranks, kDraws, {0.5, 0.8}, &nominal);
  EXPECT_DOUBLE_EQ(coverage[0], 1.0 / 5);  // 0.505 only
  EXPECT_DOUBLE_EQ(coverage[1], 3.0 / 5);  // 0.101, 0.505 and 0.808: within 0.4 of 1/2
  // Nominal: r with |r/99 - 1/2| <= 0.25, i.e. 25 <= r <= 74: 50 of 100 values.
  EXPECT_DOUBLE_EQ(nominal[0], 0.50);
  EXPECT_DOUBLE_EQ(nominal[1], 0.80);  // 10 <= r <= 89
}

}  // namespace
}  // namespace spikevi
