// spikevi evaluate: co-smoothing of a fit on the test trials, beside the reference scores.
#include <cmath>
#include <cstdio>
#include <limits>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/evaluation/predictive_coverage.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/evaluation_file.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi::cli {
namespace {

struct EvaluateOptions {
  std::string data, fit, out;
  bool overwrite = false;
  LocalStepSettings local{.tolerance = 1e-6, .max_iterations = 200};
};

po::options_description evaluate_options(EvaluateOptions& o) {
  po::options_description options("Evaluate options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "the data set the fit was made on (HDF5)")
      ("fit", po::value(&o.fit)->required(), "results of spikevi fit (HDF5)")
      ("out", po::value(&o.out)->required(), "evaluation file to write (HDF5)")
      ("local-tolerance", po::value(&o.local.tolerance)->default_value(1e-6, "1e-6"),
       "latent inference on test trials: stop when a step gains less (nats)")
      ("local-max-iterations", po::value(&o.local.max_iterations)->default_value(200),
       "latent inference on test trials: most natural-gradient steps")
      ("threads", po::value(&o.local.threads)->default_value(0),
       "threads over the test trials and the baseline's neurons (0: OMP_NUM_THREADS, else 1)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  return options;
}

void print_coverage(const PredictiveCoverage& c) {
  std::printf(
      "posterior-predictive coverage of the held-out test counts (randomised PIT, %.0f "
      "counts):",
      c.scored);
  for (std::size_t l = 0; l < c.levels.size(); ++l)
    std::printf("%s %.0f%% interval %.3f", l ? "," : "", 100.0 * c.levels[l], c.pooled[l]);
  const bool narrow = c.pooled.back() < c.levels.back() - 0.02;
  const bool wide = c.pooled.back() > c.levels.back() + 0.02;
  std::printf("%s\n", narrow ? " (over-confident)" : wide ? " (too wide)" : "");
}

}  // namespace

int run_evaluate(const CommandContext& context) {
  EvaluateOptions o;
  po::options_description options = evaluate_options(o);
  po::variables_map values;
  if (!parse_options("evaluate",
                     "Infers the test trials' latents from the held-in neurons with "
                     "the fitted globals fixed, predicts the held-out neurons and prints the "
                     "co-smoothing bits per spike, beside the smoothed-spikes + Poisson "
                     "regression baseline and (simulated data) the true parameters' score.",
                     options, context, values))
    return 0;
  check_output_path("--out", o.out, o.overwrite);
  check_output_is_not_input("--out", o.out, "--data", o.data);
  check_output_is_not_input("--out", o.out, "--fit", o.fit);
  const FitModel fit = read_fit_model(o.fit);
  const Dataset data = read_dataset_for_fit(o.data, fit, o.fit);
  if (!data.split || data.split->test_trials.empty() || data.split->heldout_neurons.empty())
    throw InputError(o.data + ": /split/test_trials and /split/heldout_neurons are needed");
  const GlobalState& globals = fit.globals;
  if (!context.comm->is_root()) return 0;

  const Split& split = *data.split;
  const CosmoothingResult model = cosmooth(InferenceModel::of(globals, fit.model), data, o.local);
  EvaluationRecord scores;
  scores.padded_bins = data.bins;
  scores.rates = model.rates;
  scores.bits_per_spike = model.bits_per_spike;
  scores.truth_parameters_bits_per_spike = std::numeric_limits<double>::quiet_NaN();
  scores.true_rates_bits_per_spike = std::numeric_limits<double>::quiet_NaN();

  const Baselines baselines = cosmoothing_baselines(data, resolve_thread_count(o.local.threads));
  scores.baselines = {
      {"/baseline", "Gaussian-smoothed held-in spikes + Poisson regression on the smoothed counts",
       baselines.raw.fit.rates, baselines.raw.bits_per_spike, baselines.raw.fit.kernel_sd_bins},
      {"/baseline_log",
       "Gaussian-smoothed held-in spikes + Poisson regression on log(smoothed + 1e-4), as the "
       "Neural Latents Benchmark's smoothing baseline",
       baselines.log.fit.rates, baselines.log.bits_per_spike, baselines.log.fit.kernel_sd_bins}};
  const bool log_stronger = &baselines.stronger() == &baselines.log;
  scores.stronger_baseline = log_stronger ? "/baseline_log" : "/baseline";

  if (data.truth && data.truth->dim() > 0) {
    const Truth& truth = *data.truth;
    scores.truth_parameters_bits_per_spike =
        cosmooth(truth_model(truth), data, o.local).bits_per_spike;
    if (!truth.rates.empty())
      scores.true_rates_bits_per_spike =
          bits_per_spike(select_trials_and_rows(truth.rates, data.first_trial, split.test_trials,
                                                split.heldout_neurons),
                         heldout_counts(data));
  }
  const InferenceModel heldout = InferenceModel::of(globals, fit.model).rows(split.heldout_neurons);
  scores.coverage =
      predictive_coverage(*heldout.model.spikes, heldout.row_parameters, model.eta_mean,
                          model.eta_variance, heldout_counts(data), split.test_trials);
  scores.provenance = provenance(context);
  write_atomically(o.out, [&](const std::string& path) { write_evaluation(path, scores); });

  std::printf(
      "co-smoothing on %zu test trials, %zu held-out neurons (bits/spike, higher is "
      "better):\n",
      split.test_trials.size(), split.heldout_neurons.size());
  std::printf("  spikevi fit                                 %8.4f\n", scores.bits_per_spike);
  std::printf("  baseline: smoothed spikes + Poisson GLM     %8.4f   (kernel SD %.1f bins)\n",
              baselines.raw.bits_per_spike, baselines.raw.fit.kernel_sd_bins);
  std::printf("  baseline: NLB-style, GLM on log smoothed    %8.4f   (kernel SD %.1f bins)\n",
              baselines.log.bits_per_spike, baselines.log.fit.kernel_sd_bins);
  const double margin = scores.bits_per_spike - baselines.stronger().bits_per_spike;
  std::printf("  the stronger baseline here is the %s one; the fit %s it by %.4f bits/spike\n",
              log_stronger ? "NLB-style (log)" : "raw-feature", margin >= 0 ? "beats" : "trails",
              std::abs(margin));
  if (std::isfinite(scores.truth_parameters_bits_per_spike)) {
    std::printf("  same inference, true parameters (/truth)   %8.4f\n",
                scores.truth_parameters_bits_per_spike);
    std::printf("  true rates (ceiling nobody reaches)         %8.4f\n",
                scores.true_rates_bits_per_spike);
  }
  print_coverage(scores.coverage);
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace spikevi::cli
