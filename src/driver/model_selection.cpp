#include "spikevi/driver/model_selection.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "spikevi/driver/fit_job.hpp"
#include "spikevi/error.hpp"
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/io/trial_counts.hpp"

namespace spikevi {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double per_spike(double value, double spikes) { return spikes > 0 ? value / spikes : kNaN; }

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

// Fit `candidate` to `fitted`, score it on `heldout` (held-out ELBO and log-likelihood, and
// co-smoothing with `data`'s held-out neurons). `data.split` must name those neurons.
FoldOutcome run_task(Dataset& data, const std::vector<int>& fitted, const std::vector<int>& heldout,
                     const Candidate& candidate, const CrossValidationSettings& settings) {
  FitJobSettings job;
  job.fit = candidate_settings(settings.fit, candidate);
  job.use_continuous = candidate.use_continuous;
  const FitOutcome fit = run_fit_job(data, fitted, job).outcome;
  if (fit.termination == Termination::kNumericalFailure) throw NumericalError(fit.message);

  const ModelSettings& model = job.fit.model;
  const std::uint64_t seed = settings.fit.minibatch.seed;
  const HeldoutScores held = heldout_scores(fit.globals, model, make_trial_counts(data, heldout),
                                            settings.scoring, settings.samples, seed);
  data.split->test_trials = heldout;
  const CosmoothingResult cosmoothing =
      cosmooth(InferenceModel::of(fit.globals, model), data, settings.scoring);

  FoldOutcome outcome;
  outcome.scores.train_elbo_per_spike = per_spike(fit.elbo, fit.spike_count);
  outcome.scores.heldout_elbo_per_spike = per_spike(held.elbo, held.spike_count);
  outcome.scores.heldout_ll_per_spike = per_spike(held.log_likelihood, held.spike_count);
  outcome.scores.heldout_ll_mc_se_per_spike = per_spike(held.log_likelihood_se, held.spike_count);
  outcome.scores.cobps = cosmoothing.bits_per_spike;
  outcome.iterations = static_cast<int>(fit.trace.size());
  outcome.converged = fit.termination == Termination::kConverged;
  outcome.unconverged_local_steps = fit.unconverged_local_steps;
  if (settings.family_check && candidate.family == FamilyKind::kGaussMarkov)
    outcome.variance_ratio = family_variance_ratio(
        fit.globals, model, make_trial_counts(data, fitted), settings.scoring);
  return outcome;
}

// The table's observation column: "NAME", "NAME+mlp", "NAME+history5".
std::string row_observation(const Candidate& candidate) {
  std::string name = candidate.observation->name();
  if (candidate.readout == ReadoutKind::kMlp) name += "+mlp";
  if (candidate.history > 0) name += "+history" + std::to_string(candidate.history);
  return name;
}

FoldOutcome failed_outcome() {
  FoldOutcome outcome;
  outcome.failed = true;
  FoldScores& s = outcome.scores;
  s.train_elbo_per_spike = s.heldout_elbo_per_spike = s.heldout_ll_per_spike = kNaN;
  s.heldout_ll_mc_se_per_spike = s.cobps = kNaN;
  return outcome;
}

// A task's outcome as the numbers the ranks sum (every other rank contributes zeros).
constexpr std::size_t kWordsPerOutcome = 11;

void pack(const FoldOutcome& o, double* out) {
  const FoldScores& s = o.scores;
  const double words[kWordsPerOutcome] = {s.train_elbo_per_spike,
                                          s.heldout_elbo_per_spike,
                                          s.heldout_ll_per_spike,
                                          s.heldout_ll_mc_se_per_spike,
                                          s.cobps,
                                          s.seconds,
                                          o.variance_ratio,
                                          double(o.iterations),
                                          o.converged ? 1.0 : 0.0,
                                          double(o.unconverged_local_steps),
                                          o.failed ? 1.0 : 0.0};
  std::copy(words, words + kWordsPerOutcome, out);
}

FoldOutcome unpack(const double* in) {
  FoldOutcome o;
  o.scores = FoldScores{in[0], in[1], in[2], in[3], in[4], in[5]};
  o.variance_ratio = in[6];
  o.iterations = static_cast<int>(in[7]);
  o.converged = in[8] != 0.0;
  o.unconverged_local_steps = static_cast<int>(in[9]);
  o.failed = in[10] != 0.0;
  return o;
}

}  // namespace

std::string describe(const Candidate& candidate, bool data_has_continuous) {
  std::string text = candidate.observation->name() + " / " + family_name(candidate.family) +
                     " / D = " + std::to_string(candidate.latents);
  if (data_has_continuous)
    text += candidate.use_continuous ? " / continuous used" : " / continuous ignored";
  if (candidate.readout == ReadoutKind::kMlp)
    text += " / mlp readout (H = " + std::to_string(candidate.hidden) + ")";
  if (candidate.history > 0) text += " / history K = " + std::to_string(candidate.history);
  return text;
}

std::vector<Candidate> candidate_grid(
    const std::vector<std::shared_ptr<const SpikeModel>>& observations,
    const std::vector<FamilyKind>& families, const std::vector<int>& latents,
    const std::vector<bool>& continuous, const std::vector<ReadoutKind>& readouts, int hidden,
    const std::vector<int>& history) {
  std::vector<Candidate> grid;
  for (const auto& observation : observations)
    for (FamilyKind family : families)
      for (int d : latents)
        for (bool use : continuous)
          for (ReadoutKind readout : readouts)
            for (int lags : history)
              grid.push_back(Candidate{observation, family, d, use, readout, hidden, lags});
  return grid;
}

FitSettings candidate_settings(const FitSettings& base, const Candidate& candidate) {
  FitSettings settings = base;
  settings.latents = candidate.latents;
  settings.model = ModelSettings::for_model(candidate.observation, candidate.family);
  settings.model.seed = base.minibatch.seed;
  settings.model.readout = candidate.readout;
  settings.model.hidden = candidate.hidden;
  settings.model.mlp_seed = base.minibatch.seed;
  settings.model.cubature_points = base.model.cubature_points;  // compare --cubature-points
  settings.model.cubature_rotations = base.model.cubature_rotations;
  // As `fit --readout mlp` without --local-steps (compare has no --local-steps).
  if (candidate.readout == ReadoutKind::kMlp && settings.local.steps == 0)
    settings.local.steps = kMlpDefaultLocalSteps;
  settings.history.lags = candidate.history;
  if (candidate.history > 0 && candidate.readout != ReadoutKind::kLinear)
    throw ConfigError(
        "--history with --readout mlp is not supported (history terms need the "
        "linear readout)");
  settings.model.validate();
  return settings;
}

std::vector<std::vector<FoldOutcome>> cross_validate(const Dataset& data,
                                                     const std::vector<std::vector<int>>& folds,
                                                     const std::vector<Candidate>& candidates,
                                                     const CrossValidationSettings& settings,
                                                     Communicator& comm, const TaskDone& on_done) {
  if (!data.split || data.split->heldout_neurons.empty())
    throw InputError(data.path + ": cross-validation needs the held-out neurons of co-smoothing");
  const std::size_t fold_count = folds.size();
  const std::size_t tasks = candidates.size() * fold_count;
  const auto rank = static_cast<std::size_t>(comm.rank());
  const auto ranks = static_cast<std::size_t>(comm.size());
  const int mine = static_cast<int>(tasks / ranks + (rank < tasks % ranks ? 1 : 0));

  Dataset scratch = data;  // its split's test trials become each fold's
  std::vector<double> words(tasks * kWordsPerOutcome, 0.0);
  const auto start = std::chrono::steady_clock::now();
  int done = 0;
  for (std::size_t task = rank; task < tasks; task += ranks) {
    const std::size_t c = task / fold_count;
    const int f = static_cast<int>(task % fold_count);
    const auto task_start = std::chrono::steady_clock::now();
    const std::vector<int>& heldout = folds[static_cast<std::size_t>(f)];
    const std::vector<int> fitted = training_trials_of(folds, f);
    FoldOutcome outcome;
    try {
      outcome = run_task(scratch, fitted, heldout, candidates[c], settings);
    } catch (const Error& error) {
      // Another rank may be fitting: report here and go on, so no rank waits for this one.
      std::fprintf(stderr, "spikevi compare: warning: %s, fold %d failed (rank %d): %s\n",
                   describe(candidates[c], !data.continuous.empty()).c_str(), f + 1, comm.rank(),
                   error.what());
      outcome = failed_outcome();
    }
    const auto now = std::chrono::steady_clock::now();
    outcome.scores.seconds = std::chrono::duration<double>(now - task_start).count();
    pack(outcome, &words[task * kWordsPerOutcome]);
    ++done;
    if (on_done) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      on_done(TaskProgress{c, f, static_cast<int>(fitted.size()), static_cast<int>(heldout.size()),
                           done, mine, elapsed / done * (mine - done)},
              outcome);
    }
  }
  comm.allreduce_sum(words);

  std::vector<std::vector<FoldOutcome>> outcomes(candidates.size());
  for (std::size_t task = 0; task < tasks; ++task)
    outcomes[task / fold_count].push_back(unpack(&words[task * kWordsPerOutcome]));
  return outcomes;
}

std::vector<ComparisonRow> comparison_rows(const std::vector<Candidate>& candidates,
                                           const std::vector<std::vector<FoldOutcome>>& outcomes,
                                           bool data_has_continuous) {
  std::vector<ComparisonRow> rows;
  // (observation, D, continuous) -> index of the Gauss-Markov candidate
  std::map<std::tuple<std::string, int, bool>, std::size_t> gauss_markov;
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    const Candidate& candidate = candidates[c];
    std::vector<FoldScores> scores;
    for (const FoldOutcome& o : outcomes[c]) scores.push_back(o.scores);
    const std::string observation = row_observation(candidate);
    ComparisonRow row = summarise_folds(observation, family_name(candidate.family), scores);
    row.latents = candidate.latents;
    row.continuous = !data_has_continuous ? "none" : candidate.use_continuous ? "use" : "ignore";
    const auto key = std::make_tuple(observation, candidate.latents, candidate.use_continuous);
    if (candidate.family == FamilyKind::kGaussMarkov) gauss_markov[key] = c;
    rows.push_back(row);
  }
  for (std::size_t c = 0; c < candidates.size(); ++c) {
    const Candidate& candidate = candidates[c];
    if (candidate.family != FamilyKind::kMeanField) continue;
    const auto found = gauss_markov.find(
        std::make_tuple(row_observation(candidate), candidate.latents, candidate.use_continuous));
    if (found == gauss_markov.end()) continue;
    // Both families were fitted to the same training trials in each fold, so folds line up.
    std::vector<double> gaps, ratios;
    for (std::size_t f = 0; f < outcomes[c].size(); ++f) {
      const FoldOutcome& gm = outcomes[found->second][f];
      gaps.push_back(gm.scores.train_elbo_per_spike - outcomes[c][f].scores.train_elbo_per_spike);
      ratios.push_back(gm.variance_ratio);
    }
    rows[c].family_elbo_gap_per_spike = summarise(gaps).mean;
    rows[c].variance_ratio = summarise(ratios).mean;
  }
  return rows;
}

}  // namespace spikevi
