// spikevi evaluate: co-smoothing of a fit on the test trials, beside the reference scores.
#include <cmath>
#include <cstdio>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <limits>
#include <optional>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/amortised_evaluation.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/evaluation/decoding.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/evaluation/predictive_coverage.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/evaluation_file.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi::cli {
namespace {

struct EvaluateOptions {
  std::string data, fit, out;
  bool overwrite = false;
  LocalStepSettings local{.tolerance = 1e-6, .max_iterations = 200};
  int refine = 0;  // amortised fits: local steps from the encoder's sites
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
      ("refine", po::value(&o.refine)->default_value(0),
       "amortised fits (fit --inference amortised): the test trials' latents are the encoder's "
       "q from their held-in neurons, refined by this many natural-gradient local steps")
      ("threads", po::value(&o.local.threads)->default_value(0),
       "threads over the test trials and the baseline's neurons (0: OMP_NUM_THREADS, else 1)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  return options;
}

void print_coverage(const PredictiveCoverage& c, const std::string& what) {
  std::printf("%s:", what.c_str());
  for (std::size_t l = 0; l < c.levels.size(); ++l)
    std::printf("%s %.0f%% interval %.3f", l ? "," : "", 100.0 * c.levels[l], c.pooled[l]);
  const bool narrow = c.pooled.back() < c.levels.back() - 0.02;
  const bool wide = c.pooled.back() > c.levels.back() + 0.02;
  std::printf("%s\n", narrow ? " (over-confident)" : wide ? " (too wide)" : "");
}

// The values of /continuous/NAME for the test trials, channels x T_k each.
std::vector<Eigen::MatrixXd> test_values(const Dataset& data, const std::string& name) {
  std::vector<Eigen::MatrixXd> values;
  for (int k : data.split->test_trials)
    values.push_back(data.continuous.at(name).at(static_cast<std::size_t>(k - data.first_trial)));
  return values;
}

// Coverage of every Gaussian modality the fit learned and the data file has, as `decode`
// predicts it (docs/output-files.md#decode-file): the test trials' latents inferred from all
// their spikes, the modality not shown to the inference.
std::vector<EvaluationRecord::ModalityCoverage> modality_coverage(const FitModel& fit,
                                                                  const Dataset& data,
                                                                  const std::string& data_path,
                                                                  const LocalStepSettings& local) {
  std::vector<const ContinuousReadout*> present;
  for (const ContinuousReadout& modality : fit.globals.continuous)
    if (data.continuous.count(modality.name)) present.push_back(&modality);
  std::vector<EvaluationRecord::ModalityCoverage> result;
  if (present.empty()) return result;
  const std::vector<GaussMarkovState> states =
      infer_latents(InferenceModel::of(fit.globals, fit.model),
                    make_trial_counts(data, data.split->test_trials), local);
  std::vector<GaussianMoments> latents;
  for (const GaussMarkovState& state : states) latents.push_back(state.moments);
  for (const ContinuousReadout* modality : present) {
    const std::vector<Eigen::MatrixXd> values = test_values(data, modality->name);
    if (values.front().rows() != modality->channels())
      throw InputError(data_path + ": /continuous/" + modality->name + " has " +
                       std::to_string(values.front().rows()) + " channels but the fit has " +
                       std::to_string(modality->channels()));
    const ModalityPredictive predictive = modality_predictive(*modality, latents);
    result.push_back({modality->name,
                      gaussian_predictive_coverage(predictive.mean, predictive.variance, values)});
  }
  return result;
}

// Lets freed large blocks be reused instead of handed back to the kernel: the smoothing
// baseline allocates each fold's design and rows x neurons work arrays afresh (tens of MB on a
// 320-trial set), and as separate mmaps each cost a page fault per 4 KiB on first touch
// (perf/README.md "evaluate's smoothing baseline"). glibc only; allocation, not arithmetic, so
// no result changes.
void keep_freed_memory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

int run_evaluate(const CommandContext& context) {
  keep_freed_memory();
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
  if (o.refine < 0) throw ConfigError("--refine must be >= 0 local steps");
  const std::optional<EncoderRecord> encoder = read_encoder(o.fit);
  if (!encoder && o.refine > 0)
    throw ConfigError("--refine applies to amortised fits only; " + o.fit + " has no /encoder");
  const CosmoothingResult model =
      encoder ? cosmooth_amortised(InferenceModel::of(globals, fit.model), *encoder, data, o.refine,
                                   o.local)
              : cosmooth(InferenceModel::of(globals, fit.model), data, o.local);
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
  scores.continuous_coverage = modality_coverage(fit, data, o.data, o.local);
  scores.provenance = provenance(context);
  write_atomically(o.out, [&](const std::string& path) { write_evaluation(path, scores); });

  std::printf(
      "co-smoothing on %zu test trials, %zu held-out neurons (bits/spike, higher is "
      "better):\n",
      split.test_trials.size(), split.heldout_neurons.size());
  std::printf("  spikevi fit                                 %8.4f\n", scores.bits_per_spike);
  if (encoder)
    std::printf("  (amortised fit: test latents from its encoder, %d refining local steps)\n",
                o.refine);
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
  print_coverage(scores.coverage,
                 "posterior-predictive coverage of the held-out test counts (randomised PIT, " +
                     std::to_string(static_cast<long long>(scores.coverage.scored)) + " counts)");
  for (const EvaluationRecord::ModalityCoverage& modality : scores.continuous_coverage)
    print_coverage(modality.coverage,
                   "posterior-predictive coverage of /continuous/" + modality.name +
                       " from the test trials' spikes (Gaussian PIT, " +
                       std::to_string(static_cast<long long>(modality.coverage.scored)) +
                       " values)");
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace spikevi::cli
