// spikevi family-check: Gauss-Markov against mean-field at fixed globals, in one place
// (DESIGN.md §8 "Family check", docs/commands.md#family-check): the ELBO gain on the
// data set's trials, the distribution of posterior log-rate variance ratios, and from
// simulation-based calibration of both families the coverage of central posterior intervals
// and each family's verdict.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli/command.hpp"
#include "cli/sbc_options.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/evaluation/model_comparison.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/io/trial_counts.hpp"

namespace spikevi::cli {
namespace {

const std::vector<double> kLevels{0.5, 0.8, 0.95};

// The q-quantile of sorted values, linear between order statistics.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(at));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

// ELBOs of both families on every trial of the data set (spikes alone, the globals fixed) and
// the ratios of their posterior log-rate variances c_n' S_t c_n, Gauss-Markov / mean-field.
void score_data(const SbcSetup& setup, const SbcOptions& o, FamilyCheckRecord& record) {
  std::vector<int> all(static_cast<std::size_t>(setup.data.trials));
  std::iota(all.begin(), all.end(), 0);
  const std::vector<TrialCounts> trials = make_trial_counts(setup.data, all);
  InferenceModel inference = setup.from_fit ? InferenceModel::of(setup.fit.globals, setup.fit.model)
                                            : truth_model(*setup.data.truth);
  std::vector<Eigen::ArrayXXd> variances[2];
  for (int slot = 0; slot < 2; ++slot) {
    inference.model.family = slot == 0 ? FamilyKind::kGaussMarkov : FamilyKind::kMeanField;
    std::vector<GaussianMoments> moments;
    double elbo = 0;
    for (const GaussMarkovState& state : infer_latents(inference, trials, o.calibration.local)) {
      moments.push_back(state.moments);
      elbo += state.elbo;
    }
    record.families[static_cast<std::size_t>(slot)].elbo = elbo;
    variances[slot] = log_rate_variances(inference.readout, moments);
  }
  record.trials = static_cast<int>(trials.size());
  record.spikes = 0;
  for (const TrialCounts& t : trials) record.spikes += t.counts.sum();
  for (std::size_t k = 0; k < trials.size(); ++k)
    for (Eigen::Index j = 0; j < variances[0][k].size(); ++j)
      record.variance_ratios.push_back(variances[0][k].data()[j] / variances[1][k].data()[j]);
  std::vector<double> sorted = record.variance_ratios;
  std::sort(sorted.begin(), sorted.end());
  record.ratio_median = quantile(sorted, 0.5);
  record.ratio_p10 = quantile(sorted, 0.1);
  record.ratio_p90 = quantile(sorted, 0.9);
}

void print_family_check(const FamilyCheckRecord& r) {
  const FamilyCheckEntry &gm = r.families[0], &mf = r.families[1];
  std::printf("\nfamily check on %d trials (%.0f spikes) and %d SBC replicates:\n", r.trials,
              r.spikes, r.replicates);
  std::printf("  ELBO gain of gauss-markov over mean-field  %+.4f nats/spike (%+.1f nats)\n",
              (gm.elbo - mf.elbo) / std::max(r.spikes, 1.0), gm.elbo - mf.elbo);
  std::printf(
      "  posterior log-rate variance ratio gauss-markov / mean-field: median %.3f, 10-90%% "
      "%.3f-%.3f%s\n",
      r.ratio_median, r.ratio_p10, r.ratio_p90,
      r.ratio_median > 1.0 ? " (mean-field is over-confident)" : "");
  std::printf("  %-28s %14s %14s\n", "", "gauss-markov", "mean-field");
  for (std::size_t l = 0; l < kLevels.size(); ++l) {
    char label[64];
    std::snprintf(label, sizeof label, "latent coverage, %.0f%% (%.3f)", 100 * kLevels[l],
                  gm.nominal[l]);
    std::printf("  %-28s %14.3f %14.3f\n", label, gm.coverage[l], mf.coverage[l]);
  }
  std::printf("  %-28s %14.3g %14.3g\n", "SBC chi-square p-value",
              gm.groups[0].test.chi_square_p_value, mf.groups[0].test.chi_square_p_value);
  std::printf("  %-28s %14s %14s\n", "SBC verdict", verdict_name(gm.groups[0].test.verdict).c_str(),
              verdict_name(mf.groups[0].test.verdict).c_str());
}

}  // namespace

int run_family_check(const CommandContext& context) {
  SbcOptions o;
  po::options_description options("Family-check options");
  add_sbc_options(options, o);
  po::variables_map values;
  if (!parse_options("family-check",
                     "Compares the Gauss-Markov and mean-field families at fixed globals (a "
                     "fit's, --fit, or the data set's /truth): the ELBO gain of Gauss-Markov on "
                     "the data set's trials, the median and 10-90 % range of the ratio of the "
                     "posterior log-rate variances, and simulation-based calibration of both "
                     "families on the same replicates (as spikevi sbc): the coverage of the "
                     "central 50/80/95 % posterior intervals of the true latents and each "
                     "family's verdict, side by side. Writes --out (FAMILY.h5, "
                     "docs/output-files.md#family-check-file) and prints the table "
                     "(docs/commands.md#family-check).",
                     options, context, values))
    return 0;
  const auto start = std::chrono::steady_clock::now();
  SbcSetup setup = prepare_sbc(o, context);
  Communicator& comm = *context.comm;
  if (comm.is_root()) {
    std::printf(
        "spikevi family-check: %d replicates of %d bins per family, %d draws, over %d rank(s); "
        "theta = %s\n",
        o.calibration.replicates, o.calibration.bins, o.calibration.draws, comm.size(),
        setup.source.c_str());
    std::fflush(stdout);
  }
  FamilyCheckRecord record;
  for (FamilyKind family : {FamilyKind::kGaussMarkov, FamilyKind::kMeanField}) {
    o.calibration.family = family;
    ProgressLine progress("family-check " + family_name(family), o.calibration.replicates,
                          comm.is_root() && !o.quiet);
    const CalibrationResult result = run_calibration(
        setup.model, o.calibration, comm, [&](int done, int share) { progress(done, share); });
    FamilyCheckEntry entry;
    entry.family = family_name(family);
    entry.groups.push_back(latent_group(result, o));
    entry.levels = kLevels;
    entry.coverage =
        rank_interval_coverage(result.latent_ranks, o.calibration.draws, kLevels, &entry.nominal);
    record.families.push_back(std::move(entry));
  }
  run_on_root(context, [&] {
    score_data(setup, o, record);
    record.replicates = o.calibration.replicates;
    record.draws = o.calibration.draws;
    record.bins = o.ranks.bins;
    record.provenance = provenance(context);
    record.configuration = option_values(values);
    write_atomically(o.out, [&](const std::string& path) { write_family_check(path, record); });
    print_family_check(record);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.1f s; wrote %s\n", seconds, o.out.c_str());
    std::fflush(stdout);
  });
  return 0;
}

}  // namespace spikevi::cli
