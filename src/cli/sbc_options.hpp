#pragma once
// What `spikevi sbc` and `spikevi family-check` share: the calibration options, the model
// theta (a fit's globals or the data set's /truth), the progress line and the rank tests.
#include <chrono>
#include <string>

#include "cli/command.hpp"
#include "spikevi/driver/calibration.hpp"
#include "spikevi/io/calibration_file.hpp"
#include "spikevi/io/fit_file.hpp"

namespace spikevi::cli {

struct SbcOptions {
  std::string data, fit, out, family = "gauss-markov", monitor_bins;
  int trial_bins = 0;  // 0: the data set's padded length
  bool overwrite = false, quiet = false;
  CalibrationSettings calibration;
  RankTestSettings ranks;
};

// --fit, --replicates, --draws, --rank-bins, --trial-bins, --monitor-bins, --seed, --alpha,
// --local-tolerance, --local-max-iterations, --overwrite, --quiet (and --data, --out).
void add_sbc_options(po::options_description& options, SbcOptions& o);

// theta, and the data set it was read with (all ranks read it). Fills o.calibration (bins,
// monitored bins, seed) and checks the outputs. `source` says where theta came from.
struct SbcSetup {
  CalibrationModel model;
  Dataset data;
  FitModel fit;  // the fit's globals and model when --fit is given
  bool from_fit = false;
  std::string source;
};
SbcSetup prepare_sbc(SbcOptions& o, const CommandContext& context);

// "[ 40%, ~12 s left] sbc gauss-markov: 80/200 replicates" on rank 0 at every tenth of its
// share (the replicates are dealt evenly, so rank 0's share tracks the whole), unless quiet.
class ProgressLine {
 public:
  ProgressLine(std::string label, int total, bool print);
  void operator()(int done, int share);

 private:
  std::string label_;
  int total_ = 0;
  bool print_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// One group of ranks, tested; the latents group of a calibration run.
SbcGroup rank_group(std::string name, const RankTable& ranks, std::vector<std::string> names,
                    const SbcOptions& o);
SbcGroup latent_group(const CalibrationResult& result, const SbcOptions& o);

// The table of groups as printed.
void print_sbc_table(const std::vector<SbcGroup>& groups);

}  // namespace spikevi::cli
