// spikevi compare: k-fold cross-validated comparison of observation models and variational
// families on the training trials (DESIGN.md §7, §8 "Family check").
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "cli/command.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/evaluation/model_comparison.hpp"
#include "spikevi/driver/fit_job.hpp"
#include "spikevi/inference/latent_inference.hpp"

namespace spikevi::cli {
namespace {

struct CompareOptions {
  std::string data, models, families, table;
  int folds = 5, samples = 64;
  bool overwrite = false, quiet = false;
  FitSettings settings;
  LocalStepSettings scoring{.tolerance = 1e-6, .max_iterations = 200};
};

po::options_description compare_options(CompareOptions& o) {
  FitSettings& s = o.settings;
  po::options_description options("Compare options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "input data set (HDF5, docs/input-format.md)")
      ("models", po::value(&o.models)->default_value("poisson,negbin"),
       "comma-separated spike models to compare: poisson, negbin, bernoulli")
      ("families", po::value(&o.families)->default_value("gauss-markov"),
       "comma-separated variational families: gauss-markov, mean-field (both: the family "
       "check, ELBO gap and posterior variance ratio)")
      ("folds", po::value(&o.folds)->default_value(5),
       "k of the k-fold cross-validation over the training trials (trial i of the sorted "
       "list is in fold i mod k)")
      ("table", po::value(&o.table), "also write the table as CSV to this file")
      ("latents", po::value(&s.latents)->default_value(4), "number of latent dimensions D")
      ("iterations", po::value(&s.iterations)->default_value(100),
       "maximum iterations of each fit")
      ("tolerance", po::value(&s.tolerance)->default_value(1e-6, "1e-6"),
       "stop a fit when the relative ELBO change falls below this; 0 runs exactly --iterations")
      ("seed", po::value(&s.minibatch.seed)->default_value(1),
       "key of the random streams (importance samples)")
      ("samples", po::value(&o.samples)->default_value(64),
       "importance samples per held-out trial for its log-likelihood")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --table")
      ("quiet", po::bool_switch(&o.quiet), "no per-fold progress lines");
  // clang-format on
  return options;
}

// The comma-separated names of `text`, blanks trimmed; ConfigError for an empty name or list.
std::vector<std::string> split_names(const std::string& option, const std::string& text) {
  std::vector<std::string> names;
  std::stringstream stream(text);
  std::string name;
  while (std::getline(stream, name, ',')) {
    const auto first = name.find_first_not_of(" \t");
    const auto last = name.find_last_not_of(" \t");
    if (first == std::string::npos)
      throw ConfigError(option + " '" + text + "' has an empty name; separate names by commas");
    names.push_back(name.substr(first, last - first + 1));
  }
  if (names.empty() || text.back() == ',')
    throw ConfigError(option + " '" + text + "' has an empty name; separate names by commas");
  return names;
}

template <class Kind, class Parse>
std::vector<Kind> parse_list(const std::string& option, const std::string& text,
                             const std::string& choices, Parse&& parse) {
  std::vector<Kind> kinds;
  for (const std::string& name : split_names(option, text)) {
    Kind kind;
    try {
      kind = parse(name);
    } catch (const ConfigError&) {
      throw ConfigError(option + ": unknown name '" + name + "' (choose from " + choices + ")");
    }
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end())
      throw ConfigError(option + " names '" + name + "' twice");
    kinds.push_back(kind);
  }
  return kinds;
}

void validate(const CompareOptions& o) {
  const FitSettings& s = o.settings;
  if (s.latents < 1)
    throw ConfigError("--latents must be >= 1 (got " + std::to_string(s.latents) + ")");
  if (s.iterations < 1)
    throw ConfigError("--iterations must be >= 1 (got " + std::to_string(s.iterations) + ")");
  if (!(s.tolerance >= 0))
    throw ConfigError("--tolerance must be >= 0 (got " + std::to_string(s.tolerance) + ")");
  if (o.samples < 1)
    throw ConfigError("--samples must be >= 1 (got " + std::to_string(o.samples) + ")");
  if (o.folds < 2) throw ConfigError("--folds must be >= 2 (got " + std::to_string(o.folds) + ")");
  if (o.table.empty()) return;
  check_output_path("--table", o.table, o.overwrite);
  check_output_is_not_input("--table", o.table, "--data", o.data);
}

// The split cosmooth works on: the file's held-out neurons, or every 4th neuron (3, 7, ...).
// Returns whether the file had them.
bool prepare_heldout_neurons(Dataset& data) {
  Split split = data.split.value_or(Split{});
  split.neurons = data.neurons;
  const bool from_file = !split.heldout_neurons.empty();
  if (!from_file) {
    if (data.neurons < 4)
      throw InputError(data.path + ": " + std::to_string(data.neurons) +
                       " neurons and no /split/heldout_neurons: co-smoothing needs at least 4 "
                       "neurons to hold every 4th out");
    for (int n = 3; n < data.neurons; n += 4) split.heldout_neurons.push_back(n);
  }
  data.split = split;
  return from_file;
}

ModelSettings model_settings(const std::shared_ptr<const SpikeModel>& observation,
                             FamilyKind family, std::uint64_t seed) {
  ModelSettings model = ModelSettings::for_model(observation, family);
  model.seed = seed;
  model.validate();
  return model;
}

// With the globals of a Gauss-Markov fit held fixed: q(z) of each training trial in both
// families, and the median over trials, bins and neurons of the ratio of the posterior
// variances of the log-rates, c_n' S_t c_n (Gauss-Markov / mean-field).
double family_variance_ratio(const GlobalState& globals, const ModelSettings& model,
                             const std::vector<TrialCounts>& trials,
                             const LocalStepSettings& settings) {
  std::vector<Eigen::ArrayXXd> variances[2];
  int slot = 0;
  for (FamilyKind family : {FamilyKind::kGaussMarkov, FamilyKind::kMeanField}) {
    InferenceModel inference = InferenceModel::of(globals, model);
    inference.model.family = family;
    std::vector<GaussianMoments> moments;
    for (const GaussMarkovState& state : infer_latents(inference, trials, settings))
      moments.push_back(state.moments);
    variances[slot++] = log_rate_variances(globals.spikes, moments);
  }
  return median_variance_ratio(variances[0], variances[1]);
}

double per_spike(double value, double spikes) {
  return spikes > 0 ? value / spikes : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

int run_compare(const CommandContext& context) {
  CompareOptions o;
  po::options_description options = compare_options(o);
  po::variables_map values;
  if (!parse_options("compare",
                     "Compares spike models (and variational families) by k-fold "
                     "cross-validation over the training trials (/split/train_trials, all "
                     "trials without a split): each configuration is fitted on k-1 folds and "
                     "scored on the remaining one (held-out ELBO and importance-sampled "
                     "log-likelihood per spike, co-smoothing bits per spike). Runs on one "
                     "process; under MPI only rank 0 works.",
                     options, context, values))
    return 0;
  validate(o);
  using Model = std::shared_ptr<const SpikeModel>;
  const std::vector<Model> observations =
      parse_list<Model>("--models", o.models, builtin_spike_models().choices(),
                        [](const std::string& name) { return builtin_spike_models().get(name); });
  const std::vector<FamilyKind> families =
      parse_list<FamilyKind>("--families", o.families, "gauss-markov, mean-field", parse_family);
  for (const Model& observation : observations)
    for (FamilyKind family : families)
      model_settings(observation, family, o.settings.minibatch.seed);
  if (!context.comm->is_root()) return 0;
  const auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };

  Dataset data = read_dataset(o.data, ReadOptions{.read_truth = false, .read_continuous = false});
  const std::vector<int> trials = training_trials(data);
  const std::vector<std::vector<int>> folds = assign_folds(trials, o.folds);
  // Fold 0 is the largest, so its complement is the smallest training set.
  const std::size_t smallest_training = trials.size() - folds.front().size();
  if (smallest_training < 2)
    throw ConfigError("--folds " + std::to_string(o.folds) + " on " +
                      std::to_string(trials.size()) + " training trials leaves " +
                      std::to_string(smallest_training) +
                      " trial(s) to fit on in a fold; a fit needs at least 2 (use fewer folds)");
  const bool heldout_from_file = prepare_heldout_neurons(data);
  const std::size_t heldout_neurons = data.split->heldout_neurons.size();

  std::printf(
      "spikevi compare: %s: %zu training trials in %d folds of %zu-%zu, %d neurons, D = %d; "
      "co-smoothing holds out %zu neurons (%s)\n",
      o.data.c_str(), trials.size(), o.folds, folds.back().size(), folds.front().size(),
      data.neurons, o.settings.latents, heldout_neurons,
      heldout_from_file ? "/split/heldout_neurons"
                        : "every 4th neuron: 3, 7, 11, ..., as the file names none");
  std::fflush(stdout);

  const bool family_check = families.size() == 2;
  std::vector<ComparisonRow> rows;
  for (const Model& observation : observations) {
    // Per family and fold: the training ELBO per spike; per fold, the median ratio of posterior
    // log-rate variances Gauss-Markov / mean-field with both families at the Gauss-Markov fit's
    // globals (one model, so the ratio shows the approximation alone, not two fits' globals).
    std::map<FamilyKind, std::vector<double>> train_elbo;
    std::vector<double> variance_ratios;
    for (FamilyKind family : families) {
      FitSettings settings = o.settings;
      settings.model = model_settings(observation, family, o.settings.minibatch.seed);
      std::vector<FoldScores> scores;
      for (int f = 0; f < o.folds; ++f) {
        const auto start = std::chrono::steady_clock::now();
        const std::vector<int>& heldout = folds[static_cast<std::size_t>(f)];
        const std::vector<int> fitted = training_trials_of(folds, f);
        FitJobSettings job;
        job.fit = settings;
        job.use_continuous = false;
        const FitOutcome outcome = run_fit_job(data, fitted, job).outcome;
        if (outcome.termination == Termination::kNumericalFailure)
          throw NumericalError(observation->name() + " / " + family_name(family) + ", fold " +
                               std::to_string(f + 1) + ": " + outcome.message);
        const std::vector<TrialCounts> training = make_trial_counts(data, fitted);
        const std::vector<TrialCounts> test = make_trial_counts(data, heldout);
        const HeldoutScores held = heldout_scores(outcome.globals, settings.model, test, o.scoring,
                                                  o.samples, o.settings.minibatch.seed);
        data.split->test_trials = heldout;
        const CosmoothingResult cosmoothing =
            cosmooth(InferenceModel::of(outcome.globals, settings.model), data, o.scoring);

        FoldScores fold;
        fold.train_elbo_per_spike = per_spike(outcome.elbo, outcome.spike_count);
        fold.heldout_elbo_per_spike = per_spike(held.elbo, held.spike_count);
        fold.heldout_ll_per_spike = per_spike(held.log_likelihood, held.spike_count);
        fold.heldout_ll_mc_se_per_spike = per_spike(held.log_likelihood_se, held.spike_count);
        fold.cobps = cosmoothing.bits_per_spike;
        fold.seconds = seconds_since(start);
        scores.push_back(fold);
        if (family_check) {
          train_elbo[family].push_back(fold.train_elbo_per_spike);
          if (family == FamilyKind::kGaussMarkov)
            variance_ratios.push_back(
                family_variance_ratio(outcome.globals, settings.model, training, o.scoring));
        }
        if (!o.quiet) {
          std::printf(
              "%s / %s, fold %d/%d (%zu fitted, %zu held out): %zu iterations (%s); train "
              "ELBO/spike %+.4f, held-out ELBO/spike %+.4f, logp/spike %+.4f (MC se %.1e), "
              "co-bps %+.4f; %.1f s\n",
              observation->name().c_str(), family_name(family).c_str(), f + 1, o.folds,
              training.size(), heldout.size(), outcome.trace.size(),
              outcome.termination == Termination::kConverged ? "converged" : "iteration limit",
              fold.train_elbo_per_spike, fold.heldout_elbo_per_spike, fold.heldout_ll_per_spike,
              fold.heldout_ll_mc_se_per_spike, fold.cobps, fold.seconds);
          if (outcome.unconverged_local_steps > 0)
            std::printf("  warning: %d local steps stopped at their iteration limit\n",
                        outcome.unconverged_local_steps);
          std::fflush(stdout);
        }
      }
      rows.push_back(summarise_folds(observation->name(), family_name(family), scores));
    }
    if (family_check) {
      // Fitted on the same training trials in each fold, so the trials line up.
      const FamilyKind gm = FamilyKind::kGaussMarkov, mf = FamilyKind::kMeanField;
      std::vector<double> gaps;
      for (int f = 0; f < o.folds; ++f) {
        const auto i = static_cast<std::size_t>(f);
        gaps.push_back(train_elbo[gm][i] - train_elbo[mf][i]);
      }
      const std::vector<double>& ratios = variance_ratios;
      for (ComparisonRow& row : rows)
        if (row.observation == observation->name() && row.family == family_name(mf)) {
          row.family_elbo_gap_per_spike = summarise(gaps).mean;
          row.variance_ratio = summarise(ratios).mean;
        }
    }
  }

  std::printf("\n%s", format_comparison_table(rows, o.folds).c_str());
  if (!o.table.empty()) {
    write_atomically(o.table, [&](const std::string& path) {
      std::ofstream file(path);
      if (!file) throw InputError(path + ": cannot open the file for writing");
      write_comparison_csv(file, rows);
      file.close();
      if (!file) throw InputError(path + ": writing the table failed");
    });
    std::printf("wrote %s\n", o.table.c_str());
  }
  return 0;
}

}  // namespace spikevi::cli
