#pragma once
// The results file of `spikevi sbc` (SBC.h5, docs/output-files.md#sbc-file) and of
// `spikevi family-check` (FAMILY.h5, docs/output-files.md#family-check-file). SBC.h5:
//   root attributes: the provenance (version, git_revision, date, ranks, command_line), family,
//     replicates, draws, bins (B), trial_bins, seed, variance_inflation, alpha, seconds,
//     dynamics (fixed | prior) and, with prior, dynamics_prior_scale and dynamics_prior_dof
//   /config attributes: the options used
//   per monitored group G (latents; with dynamics = prior also dynamics and noise): /sbc/G
//     with attributes verdict (uniform | too narrow | too wide | biased), chi_square,
//     chi_square_dof, chi_square_p_value, design_effect, effective_count, outside_band (0/1),
//     mean_z, outer_z, and datasets ranks int64 [R,K], names string [K], histogram int64 [B],
//     ecdf_grid, ecdf_difference, band_lower, band_upper float64 [L] (grid i/(L+1), i = 1..L)
#include <map>
#include <string>
#include <vector>

#include "spikevi/evaluation/rank_calibration.hpp"

namespace spikevi {

class Hdf5File;

struct SbcGroup {
  std::string name;  // e.g. "latents"
  RankTable ranks;
  std::vector<std::string> names;
  RankTest test;
};

struct SbcRecord {
  std::string family;
  int replicates = 0, draws = 0, bins = 0, trial_bins = 0;
  double seed = 0, variance_inflation = 1.0, alpha = 0.01, seconds = 0.0;
  // "fixed" (theta's dynamics) or "prior" (drawn per replicate from the MNIW prior below).
  std::string dynamics = "fixed";
  double dynamics_prior_scale = 0.0, dynamics_prior_dof = 0.0;
  std::vector<SbcGroup> groups;
  std::map<std::string, std::string> provenance, configuration;
};

// Writes the groups under `prefix` (e.g. "/sbc") of an open file; used by both files.
void write_sbc_groups(Hdf5File& file, const std::string& prefix,
                      const std::vector<SbcGroup>& groups);

void write_sbc(const std::string& path, const SbcRecord& record);

// FAMILY.h5: root attributes the provenance, replicates, draws, bins, trials (scored from the
// data), spikes, elbo_gauss_markov, elbo_mean_field, elbo_gain, elbo_gain_per_spike,
// variance_ratio_median, variance_ratio_p10, variance_ratio_p90; /variance_ratio float64 [n]
// (every ratio, trial-major); per family F (gauss-markov, mean-field) /families/F with
// attributes elbo, verdict, chi_square_p_value, coverage_50, coverage_80, coverage_95 and
// nominal_50, nominal_80, nominal_95, and its SBC groups under /families/F/sbc/G (as in SBC.h5).
struct FamilyCheckEntry {
  std::string family;
  double elbo = 0.0;  // on the data's trials at the fit's globals
  std::vector<double> levels, coverage, nominal;
  std::vector<SbcGroup> groups;
};

struct FamilyCheckRecord {
  int replicates = 0, draws = 0, bins = 0, trials = 0;
  double spikes = 0.0;
  std::vector<double> variance_ratios;  // Gauss-Markov / mean-field posterior log-rate variances
  double ratio_median = 0, ratio_p10 = 0, ratio_p90 = 0;
  std::vector<FamilyCheckEntry> families;  // gauss-markov first
  std::map<std::string, std::string> provenance, configuration;
};

void write_family_check(const std::string& path, const FamilyCheckRecord& record);

}  // namespace spikevi
