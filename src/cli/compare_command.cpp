// spikevi compare: k-fold cross-validated model selection over a grid of spike models,
// variational families, latent dimensions and the use of /continuous (DESIGN.md §7, §8
// "Family check"), spread over the MPI ranks; optionally refits the winner.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/command.hpp"
#include "spikevi/driver/fit_job.hpp"
#include "spikevi/driver/model_selection.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/model_comparison.hpp"
#include "spikevi/io/dataset.hpp"

namespace spikevi::cli {
namespace {

struct CompareOptions {
  std::string data, models, links, families, latents, continuous, table, best_out, select,
      readouts = "linear", history = "0";
  int folds = 5, hidden = 8;
  bool overwrite = false, quiet = false;
  CrossValidationSettings cross_validation;
};

po::options_description compare_options(CompareOptions& o) {
  FitSettings& s = o.cross_validation.fit;
  po::options_description options("Compare options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "input data set (HDF5, docs/input-format.md)")
      ("models", po::value(&o.models)->default_value("poisson,negbin"),
       "comma-separated spike models to compare")
      ("link", po::value(&o.links)->default_value("exp"),
       "comma-separated links of the spike models: exp, softplus (a model without a softplus "
       "variant is compared with exp only)")
      ("families", po::value(&o.families)->default_value("gauss-markov"),
       "comma-separated variational families (gauss-markov, mean-field); both adds the "
       "family check")
      ("latents", po::value(&o.latents)->default_value("4"),
       "comma-separated numbers of latent dimensions D, e.g. 2,4,8")
      ("continuous", po::value(&o.continuous)->default_value("ignore"),
       "use, ignore or use,ignore: whether the Gaussian modalities of /continuous are fitted "
       "with the spikes (they then shape the latents); scores always use the spikes alone")
      ("readout", po::value(&o.readouts)->default_value("linear"),
       "linear, mlp or linear,mlp: the spike readout (mlp: the MLP readout of fit --readout; its "
       "rows read NAME+mlp)")
      ("hidden", po::value(&o.hidden)->default_value(8), "--readout mlp: hidden units H")
      ("cubature-points", po::value(&s.model.cubature_points)->default_value(0),
       "--readout mlp: 0 = spherical-radial cubature (2D nodes), n = n^D Gauss-Hermite nodes")
      ("cubature-rotations", po::value(&s.model.cubature_rotations)->default_value(256),
       "--readout mlp: the cubature's nodes are turned per bin by one of this many random "
       "rotations; 0 = the same nodes in every bin")
      ("history", po::value(&o.history)->default_value("0"),
       "comma-separated history lags K of fit --history, e.g. 0,5 (rows NAME+historyK; the "
       "history terms read the held-in neurons only)")
      ("folds", po::value(&o.folds)->default_value(5),
       "number of cross-validation folds over the training trials")
      ("select", po::value(&o.select)->default_value("cobps"),
       "what picks the winner: cobps (co-smoothing bits/spike) or heldout-ll (held-out "
       "log-likelihood per spike), the mean over folds")
      ("best-out", po::value(&o.best_out),
       "refit the winner on all training trials and write it here as an ordinary fit file "
       "(docs/output-files.md#fit-file), with its checkpoint beside it")
      ("table", po::value(&o.table), "also write the table as CSV to this file")
      ("iterations", po::value(&s.iterations)->default_value(100),
       "maximum outer iterations per fit")
      ("tolerance", po::value(&s.tolerance)->default_value(1e-6, "1e-6"),
       "relative ELBO change at which a fit stops")
      ("seed", po::value(&s.minibatch.seed)->default_value(1),
       "seed of the initialisation and of the importance samples")
      ("samples", po::value(&o.cross_validation.samples)->default_value(64),
       "importance samples per held-out trial for the held-out log-likelihood")
      ("threads", po::value(&s.local.threads)->default_value(0),
       "threads over each rank's trials in every fit and score (0: OMP_NUM_THREADS, else 1)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --table / --best-out")
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

// Comma-separated whole numbers >= `least` of `option`.
std::vector<int> parse_counts(const std::string& option, const std::string& text, int least) {
  const std::string choices = "whole numbers >= " + std::to_string(least);
  return parse_list<int>(option, text, choices, [least](const std::string& name) {
    std::size_t used = 0;
    int d = 0;
    try {
      d = std::stoi(name, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != name.size() || d < least) throw ConfigError(name);
    return d;
  });
}

std::vector<int> parse_latents(const std::string& text) {
  return parse_counts("--latents", text, 1);
}

std::vector<bool> parse_continuous(const std::string& text) {
  return parse_list<bool>("--continuous", text, "use, ignore", [](const std::string& name) {
    if (name == "use") return true;
    if (name == "ignore") return false;
    throw ConfigError(name);
  });
}

// Each model with each link it has (with_link), in order, each model once; ConfigError when
// a link is unknown or no model has it.
std::vector<std::shared_ptr<const SpikeModel>> models_with_links(
    const std::vector<std::shared_ptr<const SpikeModel>>& models,
    const std::vector<std::string>& links) {
  std::vector<std::shared_ptr<const SpikeModel>> out;
  for (const std::string& link : links) {
    bool any = false;
    for (const auto& model : models) {
      std::shared_ptr<const SpikeModel> variant;
      try {
        variant = builtin_spike_models().with_link(model->name(), link);
      } catch (const ConfigError&) {
        if (link != "softplus") throw;
        continue;
      }
      any = true;
      if (std::find(out.begin(), out.end(), variant) == out.end()) out.push_back(variant);
    }
    if (!any) throw ConfigError("--link " + link + ": none of --models has this link");
  }
  return out;
}

void validate(const CompareOptions& o) {
  const FitSettings& s = o.cross_validation.fit;
  if (s.iterations < 1)
    throw ConfigError("--iterations must be >= 1 (got " + std::to_string(s.iterations) + ")");
  if (!(s.tolerance >= 0))
    throw ConfigError("--tolerance must be >= 0 (got " + std::to_string(s.tolerance) + ")");
  if (o.cross_validation.samples < 1)
    throw ConfigError("--samples must be >= 1 (got " + std::to_string(o.cross_validation.samples) +
                      ")");
  if (o.folds < 2) throw ConfigError("--folds must be >= 2 (got " + std::to_string(o.folds) + ")");
  if (s.model.cubature_points < 0) throw ConfigError("--cubature-points must be >= 0");
  if (s.model.cubature_rotations < 0) throw ConfigError("--cubature-rotations must be >= 0");
  if (!o.table.empty()) {
    check_output_path("--table", o.table, o.overwrite);
    check_output_is_not_input("--table", o.table, "--data", o.data);
  }
  if (!o.best_out.empty()) {
    check_output_path("--best-out", o.best_out, o.overwrite);
    check_output_is_not_input("--best-out", o.best_out, "--data", o.data);
  }
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

void print_task(const std::vector<Candidate>& candidates, bool has_continuous, int folds,
                const TaskProgress& p, const FoldOutcome& o) {
  const FoldScores& f = o.scores;
  std::printf(
      "[%3.0f%%, ~%.0f s left] %s, fold %d/%d (%d fitted, %d held out): ", 100.0 * p.done / p.total,
      p.seconds_left, describe(candidates[p.candidate], has_continuous).c_str(), p.fold + 1, folds,
      p.fitted_trials, p.heldout_trials);
  if (o.failed)
    std::printf("failed (see the warning); %.1f s\n", f.seconds);
  else
    std::printf(
        "%d iterations (%s); train ELBO/spike %+.4f, held-out ELBO/spike %+.4f, logp/spike "
        "%+.4f (MC se %.1e), co-bps %+.4f; %.1f s\n",
        o.iterations, o.converged ? "converged" : "iteration limit", f.train_elbo_per_spike,
        f.heldout_elbo_per_spike, f.heldout_ll_per_spike, f.heldout_ll_mc_se_per_spike, f.cobps,
        f.seconds);
  if (const double excess = elbo_excess_over_likelihood(f); !o.failed && excess > 0.0)
    std::printf(
        "  warning: the held-out ELBO lies %.3f nats/spike above the importance-sampled logp: "
        "its expectations are inaccurate for this fit (its ELBO is not to be trusted)\n",
        excess);
  if (o.unconverged_local_steps > 0)
    std::printf("  warning: %d local steps stopped at their iteration limit\n",
                o.unconverged_local_steps);
  std::fflush(stdout);
}

void write_table(const std::string& path, const std::vector<ComparisonRow>& rows) {
  write_atomically(path, [&](const std::string& temporary) {
    std::ofstream file(temporary);
    if (!file) throw OutputError(temporary + ": cannot open the file for writing");
    write_comparison_csv(file, rows);
    file.close();
    if (!file) throw OutputError(temporary + ": writing the table failed");
  });
}

// The winner refitted on every training trial over all ranks, written as a fit file whose
// /config names the selected settings the way `spikevi fit` would.
void refit_best(const CompareOptions& o, const Candidate& best, const ComparisonRow& row,
                const CommandContext& context, const po::variables_map& values) {
  const bool root = context.comm->is_root();
  FitJobSettings job;
  job.data = o.data;
  job.out = o.best_out;
  job.fit = candidate_settings(o.cross_validation.fit, best);
  job.use_continuous = best.use_continuous;
  job.overwrite = o.overwrite;
  const std::string ignore = best.use_continuous ? "false" : "true";
  job.identity = {{"latents", std::to_string(best.latents)},
                  {"observation", best.observation->name()},
                  {"family", family_name(best.family)},
                  {"ignore-continuous", ignore},
                  {"seed", std::to_string(o.cross_validation.fit.minibatch.seed)}};
  if (best.readout == ReadoutKind::kMlp) {
    job.identity["readout"] = "mlp";
    job.identity["hidden"] = std::to_string(best.hidden);
  }
  if (best.history > 0) job.identity["history"] = std::to_string(best.history);
  job.configuration = option_values(values);
  for (const auto& [key, value] : job.identity) job.configuration[key] = value;
  job.configuration["history"] = std::to_string(best.history);  // the winner's, not the list
  job.configuration["selected-by"] = o.select;
  job.provenance = provenance(context);
  if (root)
    std::printf("refitting the winner on all training trials: %s\n",
                describe(best, row.continuous != "none").c_str());
  std::fflush(stdout);
  const FitJobResult result = run_fit_job(job, *context.comm);
  if (result.outcome.termination == Termination::kNumericalFailure)
    throw NumericalError("the refit of the winner failed: " + result.outcome.message);
  if (root)
    std::printf("spikevi compare: wrote %s (%s after %zu iterations, elbo/spike %.6f)\n",
                o.best_out.c_str(), result.record.termination.c_str(), result.outcome.trace.size(),
                result.outcome.elbo / std::max(result.outcome.spike_count, 1.0));
}

}  // namespace

int run_compare(const CommandContext& context) {
  CompareOptions o;
  po::options_description options = compare_options(o);
  po::variables_map values;
  if (!parse_options("compare",
                     "Selects a model by k-fold cross-validation over the training trials "
                     "(/split/train_trials, all trials without a split): every combination of "
                     "--models, --families, --latents and --continuous is fitted on k-1 folds "
                     "and scored on the remaining one (held-out ELBO, importance-sampled "
                     "log-likelihood per spike, co-smoothing bits per spike). The fits are "
                     "dealt to the MPI ranks, so `mpirun -n P spikevi compare` runs P at once "
                     "with the same table; --best-out refits the winner.",
                     options, context, values))
    return 0;
  validate(o);
  o.cross_validation.scoring.threads = o.cross_validation.fit.local.threads;
  using Model = std::shared_ptr<const SpikeModel>;
  const std::vector<Model> observations = models_with_links(
      parse_list<Model>("--models", o.models, builtin_spike_models().choices(),
                        [](const std::string& name) { return builtin_spike_models().get(name); }),
      split_names("--link", o.links));
  const std::vector<FamilyKind> families =
      parse_list<FamilyKind>("--families", o.families, "gauss-markov, mean-field", parse_family);
  const SelectionCriterion criterion = parse_selection_criterion(o.select);
  const std::vector<ReadoutKind> readouts =
      parse_list<ReadoutKind>("--readout", o.readouts, "linear, mlp", parse_readout);
  const std::vector<int> history = parse_counts("--history", o.history, 0);
  std::vector<Candidate> candidates =
      candidate_grid(observations, families, parse_latents(o.latents),
                     parse_continuous(o.continuous), readouts, o.hidden, history);
  o.cross_validation.family_check = families.size() == 2;
  Communicator& comm = *context.comm;
  const bool root = comm.is_root();
  // Crossing the lists can make combinations no fit supports (e.g. the MLP readout with history
  // terms): those are left out with a line saying why; a grid with nothing left is refused.
  const auto leave_out_unsupported = [&](std::vector<Candidate>& grid) {
    std::optional<ConfigError> first_refusal;
    std::erase_if(grid, [&](const Candidate& candidate) {
      try {
        candidate_settings(o.cross_validation.fit, candidate);
        return false;
      } catch (const ConfigError& refusal) {
        if (root)
          std::printf("spikevi compare: left out %s: %s\n", describe(candidate, false).c_str(),
                      refusal.what());
        if (!first_refusal) first_refusal = refusal;
        return true;
      }
    });
    if (grid.empty() && first_refusal) throw *first_refusal;
  };
  leave_out_unsupported(candidates);

  const bool wants_continuous = std::any_of(candidates.begin(), candidates.end(),
                                            [](const Candidate& c) { return c.use_continuous; });
  Dataset data = read_dataset_on_every_rank(
      o.data, ReadOptions{.read_truth = false, .read_continuous = wants_continuous}, comm);
  const bool has_continuous = !data.continuous.empty();
  if (wants_continuous && !has_continuous) {
    // Without modalities "use" is "ignore": keep one of each pair.
    std::erase_if(candidates, [](const Candidate& c) { return c.use_continuous; });
    if (candidates.empty())
      for (const Candidate& c : candidate_grid(observations, families, parse_latents(o.latents),
                                               {false}, readouts, o.hidden, history))
        candidates.push_back(c);
    leave_out_unsupported(candidates);
  }
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

  if (root) {
    std::printf(
        "spikevi compare: %s: %zu training trials in %d folds of %zu-%zu, %d neurons; %zu "
        "candidate(s) x %d folds = %zu fits over %d rank(s); co-smoothing holds out %zu "
        "neurons (%s)\n",
        o.data.c_str(), trials.size(), o.folds, folds.back().size(), folds.front().size(),
        data.neurons, candidates.size(), o.folds, candidates.size() * folds.size(), comm.size(),
        data.split->heldout_neurons.size(),
        heldout_from_file ? "/split/heldout_neurons"
                          : "every 4th neuron: 3, 7, 11, ..., as the file names none");
    if (wants_continuous && !has_continuous)
      std::printf("the data set has no /continuous modalities: --continuous use is ignore\n");
    std::fflush(stdout);
  }
  TaskDone progress;
  if (root && !o.quiet)
    progress = [&](const TaskProgress& p, const FoldOutcome& outcome) {
      print_task(candidates, has_continuous, o.folds, p, outcome);
    };
  const std::vector<std::vector<FoldOutcome>> outcomes =
      cross_validate(data, folds, candidates, o.cross_validation, comm, progress);
  const std::vector<ComparisonRow> rows = comparison_rows(candidates, outcomes, has_continuous);
  const std::size_t best = best_row(rows, criterion);

  run_on_root(context, [&] {
    std::printf("\n%s", format_comparison_table(rows, o.folds).c_str());
    std::printf("selected by %s: %s (%+.4f ± %.4f)\n", o.select.c_str(),
                describe(candidates[best], has_continuous).c_str(),
                selection_score(rows[best], criterion),
                criterion == SelectionCriterion::kCosmoothing ? rows[best].cobps.se
                                                              : rows[best].heldout_ll_per_spike.se);
    if (!o.table.empty()) {
      write_table(o.table, rows);
      std::printf("wrote %s\n", o.table.c_str());
    }
    std::fflush(stdout);
  });
  if (!o.best_out.empty()) refit_best(o, candidates[best], rows[best], context, values);
  return 0;
}

}  // namespace spikevi::cli
