// spikevi decode: predict a Gaussian modality of the test trials from their spikes alone.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/amortised_evaluation.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/evaluation/decoding.hpp"
#include "spikevi/evaluation/lagged_ridge.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/evaluation_file.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/io/trial_counts.hpp"

namespace spikevi::cli {
namespace {

struct DecodeOptions {
  std::string data, fit, target, out;
  double level = 0.95;
  bool overwrite = false;
  LocalStepSettings local{.tolerance = 1e-6, .max_iterations = 200};
  int refine = 0;  // amortised fits: local steps from the encoder's sites
  std::string readout_from = "spike-latents";  // or "fit"
};

po::options_description decode_options(DecodeOptions& o) {
  po::options_description options("Decode options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "the data set the fit was made on (HDF5)")
      ("fit", po::value(&o.fit)->required(),
       "results of spikevi fit (with --readout-from fit: one that fused /continuous/NAME)")
      ("target", po::value(&o.target)->required(), "NAME of the modality /continuous/NAME")
      ("out", po::value(&o.out)->required(), "decoding file to write (HDF5)")
      ("level", po::value(&o.level)->default_value(0.95, "0.95"),
       "coverage of the central posterior-predictive interval")
      ("local-tolerance", po::value(&o.local.tolerance)->default_value(1e-6, "1e-6"),
       "latent inference on test trials: stop when a step gains less (nats)")
      ("local-max-iterations", po::value(&o.local.max_iterations)->default_value(200),
       "latent inference on test trials: most natural-gradient steps")
      ("refine", po::value(&o.refine)->default_value(0),
       "amortised fits (fit --inference amortised): the latents are the encoder's q from the "
       "spikes, refined by this many natural-gradient local steps")
      ("readout-from", po::value(&o.readout_from)->default_value("spike-latents"),
       "spike-latents: the target's readout (w, e, R) refitted on the training trials' latents "
       "inferred from their spikes alone, as the test trials' are (any fit, also one without "
       "the modality); fit: the fit's own readout of the modality (its R is the noise given "
       "latents that also saw the modality, so its intervals are too narrow when the spikes "
       "cannot carry what the modality told the fit)")
      ("threads", po::value(&o.local.threads)->default_value(0),
       "threads over the trials (0: OMP_NUM_THREADS, else 1)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  return options;
}

const ContinuousReadout& target_modality(const GlobalState& globals, const DecodeOptions& o) {
  std::string names;
  for (const ContinuousReadout& modality : globals.continuous) {
    if (modality.name == o.target) return modality;
    names += (names.empty() ? "" : ", ") + modality.name;
  }
  throw ConfigError(o.fit + " has no Gaussian modality '" + o.target + "' (it has: " +
                    (names.empty() ? "none" : names) + "); fit on a file with /continuous/" +
                    o.target + ", without --ignore-continuous");
}

// The oracle: the true latents through the true readout (NaN when /truth lacks them).
double oracle_r_squared(const Dataset& data, const std::string& target,
                        const std::vector<int>& trials,
                        const std::vector<Eigen::MatrixXd>& values) {
  if (!data.truth || data.truth->latents.empty() || !data.truth->continuous.count(target))
    return std::numeric_limits<double>::quiet_NaN();
  const ContinuousTruth& truth = data.truth->continuous.at(target);
  std::vector<Eigen::MatrixXd> predictions;
  for (int k : trials)
    predictions.push_back(
        (truth.W * data.truth->latents.at(static_cast<std::size_t>(k - data.first_trial)))
            .colwise() +
        truth.e);
  return r_squared(predictions, values);
}

// The values of /continuous/NAME for `trials` (file indices), channels x T_k each.
std::vector<Eigen::MatrixXd> modality_values(const Dataset& data, const std::string& name,
                                             const std::vector<int>& trials) {
  std::vector<Eigen::MatrixXd> values;
  for (int k : trials)
    values.push_back(data.continuous.at(name).at(static_cast<std::size_t>(k - data.first_trial)));
  return values;
}

std::vector<int> every_neuron(const Dataset& data) {
  std::vector<int> neurons(static_cast<std::size_t>(data.neurons));
  for (int n = 0; n < data.neurons; ++n) neurons[static_cast<std::size_t>(n)] = n;
  return neurons;
}

}  // namespace

int run_decode(const CommandContext& context) {
  DecodeOptions o;
  po::options_description options = decode_options(o);
  po::variables_map values;
  if (!parse_options("decode",
                     "Predicts the Gaussian modality /continuous/NAME of the test trials from "
                     "their spikes alone, through a readout refitted on the training trials' "
                     "latents from spikes (or the fit's own, --readout-from fit): "
                     "posterior-predictive mean and interval, R^2 and coverage, beside a lagged "
                     "ridge baseline.",
                     options, context, values))
    return 0;
  check_output_path("--out", o.out, o.overwrite);
  check_output_is_not_input("--out", o.out, "--data", o.data);
  check_output_is_not_input("--out", o.out, "--fit", o.fit);
  const FitModel fit = read_fit_model(o.fit);
  const Dataset data = read_dataset_for_fit(o.data, fit, o.fit);
  if (!data.split || data.split->test_trials.empty())
    throw InputError(o.data + ": /split/test_trials is needed to decode");
  if (!data.continuous.count(o.target))
    throw InputError(o.data + ": /continuous/" + o.target + " does not exist");
  if (o.readout_from != "spike-latents" && o.readout_from != "fit")
    throw ConfigError("--readout-from must be spike-latents or fit (got '" + o.readout_from + "')");
  const bool refit = o.readout_from == "spike-latents";
  const ContinuousReadout* fitted = refit ? nullptr : &target_modality(fit.globals, o);
  const std::vector<int>& test = data.split->test_trials;
  const std::vector<int> train = training_trials(data);
  const std::vector<Eigen::MatrixXd> observed = modality_values(data, o.target, test);
  if (fitted && observed.front().rows() != fitted->channels())
    throw InputError(o.data + ": /continuous/" + o.target + " has " +
                     std::to_string(observed.front().rows()) + " channels but the fit has " +
                     std::to_string(fitted->channels()));
  if (o.refine < 0) throw ConfigError("--refine must be >= 0 local steps");
  const std::optional<EncoderRecord> encoder = read_encoder(o.fit);
  if (!encoder && o.refine > 0)
    throw ConfigError("--refine applies to amortised fits only; " + o.fit + " has no /encoder");
  if (!context.comm->is_root()) return 0;

  // Latents from the spikes alone: the modality itself is not shown to the inference.
  const InferenceModel model = InferenceModel::of(fit.globals, fit.model);
  const auto spike_latents = [&](const std::vector<int>& trial_indices) {
    const std::vector<TrialCounts> trials = make_trial_counts(data, trial_indices);
    const std::vector<GaussMarkovState> states =
        encoder ? encode_latents(model, *encoder, trials, every_neuron(data), o.refine, o.local)
                : infer_latents(model, trials, o.local);
    std::vector<GaussianMoments> latents;
    for (const GaussMarkovState& state : states) latents.push_back(state.moments);
    return latents;
  };
  const ContinuousReadout modality =
      refit ? refit_modality_readout(o.target, modality_values(data, o.target, train),
                                     spike_latents(train), fit.globals.continuous_prior,
                                     fit.globals.noise_prior)
            : *fitted;
  const DecodedModality decoded = predict_modality(modality, spike_latents(test), o.level);
  const DecodingScores scores = score_decoding(decoded, observed);
  const double oracle = oracle_r_squared(data, o.target, test, observed);
  const std::vector<int> all_neurons = every_neuron(data);
  const LaggedRidge ridge =
      fit_lagged_ridge(select_trials_and_rows(data.counts, data.first_trial, train, all_neurons),
                       modality_values(data, o.target, train));
  const double ridge_r2 = r_squared(
      ridge.predict(select_trials_and_rows(data.counts, data.first_trial, test, all_neurons)),
      observed);

  DecodingRecord record{o.target,
                        o.level,
                        test,
                        data.bins,
                        decoded,
                        scores,
                        oracle,
                        ridge_r2,
                        ridge.ridge,
                        ridge.lags,
                        o.readout_from,
                        modality.variances,
                        provenance(context)};
  write_atomically(o.out, [&](const std::string& path) { write_decoding(path, record); });
  std::printf("spikevi decode: %s from spikes on %zu test trials (%.0f observed values)\n",
              o.target.c_str(), test.size(), scores.observed);
  std::printf("  readout of %s: %s\n", o.target.c_str(),
              refit ? "refitted on the training trials' latents from spikes alone"
                    : "the fit's own (fused) readout");
  std::printf("  R^2                                   %8.4f\n", scores.r_squared);
  if (std::isfinite(oracle))
    std::printf("  oracle R^2 (true latents and readout)  %8.4f\n", oracle);
  std::printf("  coverage of the %.0f%% interval          %8.4f\n", 100.0 * o.level,
              scores.coverage);
  std::printf(
      "  baseline: lagged ridge on raw counts   %8.4f   (R^2; bins t..t-%d of all neurons, "
      "ridge %.0e by %d-fold CV on %zu training trials)\n",
      ridge_r2, ridge.lags, ridge.ridge, LaggedRidgeSettings{}.folds, train.size());
  std::printf("  the fit %s the ridge baseline by %.4f R^2\n",
              scores.r_squared >= ridge_r2 ? "beats" : "trails",
              std::abs(scores.r_squared - ridge_r2));
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace spikevi::cli
