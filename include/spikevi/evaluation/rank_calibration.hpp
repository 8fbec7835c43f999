#pragma once
// Uniformity of simulation-based-calibration ranks (DESIGN.md §8; Talts et al. 2018, Modrák et
// al. 2023, Säilynoja et al. 2022): a chi-square test on B bins, the ECDF difference with a
// simultaneous 95 % band, and a verdict on the shape. Pure functions of the ranks.
//
// The ranks of one monitored group form an R x K table: replicate r, scalar k, rank in 0..L
// (the number of the L posterior draws below the true value). Under exact inference each rank
// is discrete-uniform on 0..L. The K scalars of one replicate share its posterior and may be
// correlated; replicates are independent. The tests pool all R K ranks and correct for that
// correlation by Kish's design effect
//   deff = max(1, Var_r(mean_k u_rk) / (Var(u) / K)),   u = fractional rank,
// the variance of the replicates' mean rank over its value for independent ranks: the pooled
// statistics behave like those of N_eff = R K / deff independent ranks.
#include <Eigen/Dense>
#include <cstdint>
#include <string>
#include <vector>

namespace spikevi {

using RankTable = Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

enum class RankVerdict { kUniform, kTooNarrow, kTooWide, kBiased };
// "uniform", "too narrow", "too wide", "biased".
std::string verdict_name(RankVerdict verdict);

// What the verdict is decided on (standardised with N_eff).
struct RankShape {
  double p_value = 1.0;  // of the design-corrected chi-square
  // (mean fractional rank - 1/2) / its null SD: > 0 when the truth lies above the posterior.
  double mean_z = 0.0;
  // (share of ranks in the outer half of 0..L - its null share) / its null SD: > 0 for a U
  // shape (truth in the tails: posterior too narrow), < 0 for a cap (posterior too wide).
  double outer_z = 0.0;
};

// The verdict rule: `uniform` when p_value >= alpha; otherwise the larger deviation of the
// two standardised shape statistics names it: |mean_z| > |outer_z| -> `biased`, else
// outer_z > 0 -> `too narrow` and outer_z <= 0 -> `too wide`. At alpha = 0.01 an exactly
// calibrated posterior is called non-uniform with probability about 0.01.
RankVerdict rank_verdict(const RankShape& shape, double alpha);

struct RankTestSettings {
  int bins = 20;        // B: must divide L + 1, so each bin holds the same number of ranks
  double alpha = 0.01;  // significance of the chi-square test for the verdict
  double band_level = 0.95;
  // Null samples that fix the simultaneous band (fewer, down to 200, when N_eff x samples
  // would pass 2e8 draws).
  int band_simulations = 1000;
  std::uint64_t seed = 1;  // of those samples (RandomPurpose kCalibration)
};

struct RankTest {
  std::vector<std::int64_t> histogram;  // B bins of (L+1)/B consecutive ranks each
  double chi_square = 0.0;              // design-corrected: raw chi-square / deff
  int chi_square_dof = 0;               // B - 1
  double chi_square_p_value = 1.0;
  double design_effect = 1.0;
  double effective_count = 0.0;  // N_eff
  // ECDF of the fractional ranks at z_i = i / (L+1), i = 1..L, minus z_i, and the simultaneous
  // band (Säilynoja et al. 2022) of that difference for N_eff uniform ranks.
  std::vector<double> ecdf_grid, ecdf_difference, band_lower, band_upper;
  bool outside_band = false;  // the difference leaves the band somewhere
  RankShape shape;
  RankVerdict verdict = RankVerdict::kUniform;
};

// Tests an R x K table of ranks in 0..L. Throws ConfigError when B does not divide L + 1, and
// InputError for an empty table or a rank outside 0..L.
RankTest test_rank_uniformity(const RankTable& ranks, int draws, const RankTestSettings& settings);

// The empirical coverage of central posterior intervals read off the ranks: the truth lies in
// the central `level` interval of the draws when its rank r has |r / L - 1/2| <= level / 2.
// Returns, per level, the share of ranks inside; `nominal` the share a uniform rank has.
std::vector<double> rank_interval_coverage(const RankTable& ranks, int draws,
                                           const std::vector<double>& levels,
                                           std::vector<double>* nominal = nullptr);

}  // namespace spikevi
