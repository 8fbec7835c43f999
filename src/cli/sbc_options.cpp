#include "cli/sbc_options.hpp"

#include <cstdio>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"

namespace spikevi::cli {
namespace {

std::vector<int> parse_bins(const std::string& text) {
  std::vector<int> bins;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::size_t used = 0;
    int bin = -1;
    try {
      bin = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t0123456789", 0) != std::string::npos)
      throw ConfigError("--monitor-bins '" + text +
                        "': give comma-separated bin numbers, e.g. 10,50,90");
    bins.push_back(bin);
  }
  return bins;
}

}  // namespace

void add_sbc_options(po::options_description& options, SbcOptions& o) {
  CalibrationSettings& c = o.calibration;
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(),
       "data set (HDF5): its padded length is the default --trial-bins; without --fit its "
       "/truth is theta")
      ("fit", po::value(&o.fit),
       "results of spikevi fit (HDF5): theta = its globals, the dynamics at their posterior "
       "means (default: the data set's /truth)")
      ("out", po::value(&o.out)->required(), "results file to write (HDF5)")
      ("replicates", po::value(&c.replicates)->default_value(200),
       "R: simulated replicates (one trial each)")
      ("draws", po::value(&c.draws)->default_value(99),
       "L: posterior draws per replicate; ranks are 0..L")
      ("rank-bins", po::value(&o.ranks.bins)->default_value(20),
       "B: bins of the rank histogram and chi-square test; must divide L + 1")
      ("trial-bins", po::value(&o.trial_bins)->default_value(0),
       "T: bins of each simulated trial (0: the data set's padded length)")
      ("monitor-bins", po::value(&o.monitor_bins),
       "comma-separated bins whose latent coordinates are ranked (default: 5 bins spread "
       "evenly, round((j + 1/2) T / 5))")
      ("seed", po::value(&c.seed)->default_value(1), "seed of the replicates' streams")
      ("alpha", po::value(&o.ranks.alpha)->default_value(0.01, "0.01"),
       "significance of the chi-square test behind each verdict")
      ("local-tolerance", po::value(&c.local.tolerance)->default_value(1e-6, "1e-6"),
       "latent inference per replicate: stop when a step gains less (nats)")
      ("local-max-iterations", po::value(&c.local.max_iterations)->default_value(200),
       "latent inference per replicate: most natural-gradient steps")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out")
      ("quiet", po::bool_switch(&o.quiet), "no progress lines");
  // clang-format on
}

SbcSetup prepare_sbc(SbcOptions& o, const CommandContext& context) {
  check_output_path("--out", o.out, o.overwrite);
  check_output_is_not_input("--out", o.out, "--data", o.data);
  if (!o.fit.empty()) check_output_is_not_input("--out", o.out, "--fit", o.fit);
  if (!(o.ranks.alpha > 0 && o.ranks.alpha < 1))
    throw ConfigError("--alpha must be in (0, 1) (got " + std::to_string(o.ranks.alpha) + ")");
  if (o.trial_bins < 0)
    throw ConfigError("--trial-bins must be >= 0 (got " + std::to_string(o.trial_bins) + ")");
  SbcSetup setup;
  if (!o.fit.empty()) {
    setup.fit = read_fit_model(o.fit);
    setup.data = read_dataset_for_fit(o.data, setup.fit, o.fit);
    setup.model = CalibrationModel::from_fit(setup.fit.globals, setup.fit.model);
    setup.from_fit = true;
    setup.source = "the globals of " + o.fit;
  } else {
    setup.data = read_dataset(o.data);
    if (!setup.data.truth || setup.data.truth->dim() == 0)
      throw InputError(o.data + ": no /truth to take theta from; give --fit FIT.h5");
    setup.model = CalibrationModel::from_truth(*setup.data.truth);
    setup.source = "/truth of " + o.data;
  }
  CalibrationSettings& c = o.calibration;
  c.bins = o.trial_bins > 0 ? o.trial_bins : setup.data.bins;
  if (!o.monitor_bins.empty()) c.monitored_bins = parse_bins(o.monitor_bins);
  c.monitored_bins = monitored_bins(c);  // ConfigError for a bin outside the trial
  o.ranks.seed = c.seed;
  if (c.draws < 1 || o.ranks.bins < 2 || (c.draws + 1) % o.ranks.bins != 0)
    throw ConfigError("--rank-bins " + std::to_string(o.ranks.bins) +
                      " must be >= 2 and divide --draws + 1 = " + std::to_string(c.draws + 1));
  (void)context;
  return setup;
}

ProgressLine::ProgressLine(std::string label, int total, bool print)
    : label_(std::move(label)), total_(total), print_(print) {}

void ProgressLine::operator()(int done, int share) {
  if (!print_ || share <= 0) return;
  const double fraction = static_cast<double>(done) / share;
  const int decile = static_cast<int>(10 * fraction + 1e-9);
  if (decile == last_decile_) return;
  last_decile_ = decile;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double left = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0.0;
  const int replicates_done = std::min(total_, static_cast<int>(std::lround(fraction * total_)));
  std::printf("[%3.0f%%, ~%.0f s left] %s: %d/%d replicates\n", 100 * fraction, left,
              label_.c_str(), replicates_done, total_);
  std::fflush(stdout);
}

SbcGroup rank_group(std::string name, const RankTable& ranks, std::vector<std::string> names,
                    const SbcOptions& o) {
  SbcGroup group;
  group.name = std::move(name);
  group.ranks = ranks;
  group.names = std::move(names);
  group.test = test_rank_uniformity(group.ranks, o.calibration.draws, o.ranks);
  return group;
}

SbcGroup latent_group(const CalibrationResult& result, const SbcOptions& o) {
  return rank_group("latents", result.latent_ranks, result.latent_names, o);
}

void print_sbc_table(const std::vector<SbcGroup>& groups) {
  std::printf("%-10s %8s %18s %10s %6s %13s  %s\n", "group", "scalars", "chi-square (dof)",
              "p-value", "deff", "ECDF in band", "verdict");
  for (const SbcGroup& g : groups) {
    char chi[32];
    std::snprintf(chi, sizeof chi, "%.1f (%d)", g.test.chi_square, g.test.chi_square_dof);
    std::printf("%-10s %8td %18s %10.3g %6.2f %13s  %s\n", g.name.c_str(), g.ranks.cols(), chi,
                g.test.chi_square_p_value, g.test.design_effect, g.test.outside_band ? "no" : "yes",
                verdict_name(g.test.verdict).c_str());
  }
}

}  // namespace spikevi::cli
