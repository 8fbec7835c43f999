#include "spikevi/driver/variational_fit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/error.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/global_step.hpp"
#include "spikevi/inference/initialisation.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/inference/mean_field.hpp"
#include "spikevi/parallel/reproducible_sum.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi {
namespace {

using Clock = std::chrono::steady_clock;

// The readout kernels of every modality under fixed globals, and a trial's views of them.
class ModalityKernels {
 public:
  // `cubature`: that of the MLP readout (--readout mlp), else null.
  ModalityKernels(const GlobalState& globals, const ObservationModel& spike_model,
                  const std::vector<GaussianObservation>& continuous_models,
                  const GaussianCubature* cubature = nullptr)
      : spike_model_(spike_model), spikes_(globals.spikes), continuous_models_(continuous_models) {
    for (const ContinuousReadout& modality : globals.continuous)
      continuous_.push_back(std::make_unique<ReadoutKernels>(modality.readout));
    if (cubature && globals.mlp.active())
      mlp_ = std::make_unique<MlpKernels>(globals.spikes, globals.mlp, *cubature);
  }
  const ReadoutKernels& spikes() const { return spikes_; }
  const MlpKernels* mlp() const { return mlp_.get(); }
  // `offset`: the trial's history offset (--history), else null.
  std::vector<ModalityView> views(const TrialCounts& trial, double spike_base_measure,
                                  const Eigen::ArrayXXd* offset = nullptr) const {
    std::vector<ModalityView> views{ModalityView{&spike_model_, &spikes_, &trial.counts,
                                                 spike_base_measure, mlp_.get(), offset}};
    for (std::size_t m = 0; m < continuous_.size(); ++m)
      views.push_back(
          ModalityView{&continuous_models_[m], continuous_[m].get(), &trial.continuous[m], 0.0});
    return views;
  }

 private:
  const ObservationModel& spike_model_;
  const ReadoutKernels spikes_;
  const std::vector<GaussianObservation>& continuous_models_;
  std::vector<std::unique_ptr<ReadoutKernels>> continuous_;
  std::unique_ptr<MlpKernels> mlp_;
};

// Sum over the listed local trials and over all ranks of a per-trial vector of `size` doubles,
// exact and independent of how trials are spread over ranks and threads (reproducible_sum.hpp).
template <class PerTrial>
Eigen::VectorXd sum_over_trials(std::size_t size, const std::vector<std::size_t>& members,
                                Communicator& comm, int threads, PerTrial&& per_trial) {
  std::vector<ReproducibleSum> partial(static_cast<std::size_t>(std::max(threads, 1)),
                                       ReproducibleSum(size));
  for_each_index(members.size(), threads, [&](std::size_t i, int thread) {
    const Eigen::VectorXd contribution = per_trial(members[i]);
    partial[static_cast<std::size_t>(thread)].add(
        std::span<const double>(contribution.data(), size));
  });
  ReproducibleSum sum(size);
  for (const ReproducibleSum& part : partial) sum.merge(part);
  sum.allreduce(comm);
  const std::vector<double> values = sum.values();
  return Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(size));
}

// One thread's scratch for the per-trial loops (threads.hpp): its own evaluator and estimator
// (they hold the factor and the workspace), a trial's statistics and its share of the sum.
struct TrialWorker {
  std::unique_ptr<FamilyEvaluator> evaluator;
  std::unique_ptr<Estimator> estimator;
  GlobalStatistics trial_stats;
  std::vector<double> packed;
  ReproducibleSum sum;
};

std::vector<std::size_t> every_trial(std::size_t count) {
  std::vector<std::size_t> all(count);
  for (std::size_t k = 0; k < count; ++k) all[k] = k;
  return all;
}

void validate(const std::vector<TrialCounts>& trials, const FitSettings& settings, int population) {
  if (settings.latents < 1) throw ConfigError("--latents must be >= 1");
  if (trials.empty()) throw ConfigError("fit: no trials to fit on this rank");
  settings.model.validate();
  for (const TrialCounts& trial : trials) {
    if (trial.inputs.rows() != trials.front().inputs.rows() ||
        (trial.inputs.rows() > 0 && trial.inputs.cols() != trial.counts.cols()))
      throw InputError("fit: trial " + std::to_string(trial.index) +
                       ": /inputs does not have one column per bin");
    if (trial.continuous.size() != settings.continuous_names.size())
      throw InputError("fit: trial " + std::to_string(trial.index) + " has " +
                       std::to_string(trial.continuous.size()) + " continuous modalities, not " +
                       std::to_string(settings.continuous_names.size()));
    for (std::size_t m = 0; m < trial.continuous.size(); ++m)
      if (trial.continuous[m].cols() != trial.counts.cols() ||
          trial.continuous[m].rows() != trials.front().continuous[m].rows())
        throw InputError("fit: trial " + std::to_string(trial.index) + ": /continuous/" +
                         settings.continuous_names[m] + " has the wrong shape");
  }
  if (settings.latents >= trials.front().counts.rows())
    throw ConfigError("--latents (" + std::to_string(settings.latents) +
                      ") must be smaller than the number of neurons (" +
                      std::to_string(trials.front().counts.rows()) + ")");
  settings.minibatch.validate(population);
  if (settings.model.readout == ReadoutKind::kMlp && !settings.minibatch.full_batch(population))
    throw ConfigError("--readout mlp is available in full batch only (no --minibatch)");
  if (settings.accelerate == Acceleration::kSquarem &&
      (!settings.minibatch.full_batch(population) ||
       settings.model.optimizer != OptimizerKind::kNatural ||
       settings.model.readout != ReadoutKind::kLinear))
    throw ConfigError(
        "--accelerate squarem extrapolates full-batch VB-EM: it needs no --minibatch, "
        "--optimizer natural and --readout linear");
  if (settings.history.active() && (settings.model.readout != ReadoutKind::kLinear ||
                                    settings.model.optimizer != OptimizerKind::kNatural ||
                                    settings.accelerate != Acceleration::kNone))
    throw ConfigError(
        "--history is available with --readout linear, --optimizer natural and --accelerate "
        "none only");
  if (settings.history.lags < 0)
    throw ConfigError("--history must be >= 0 (got " + std::to_string(settings.history.lags) + ")");
}

// The readout (and the spike model at its row parameters) whose per-row objective a local pass
// records under each trial's previous q, for the full-batch row check; none when null.
struct RowCheck {
  const Readout* readout = nullptr;
  const ObservationModel* model = nullptr;
};

// One fit: the state every rank keeps, and the steps of DESIGN.md §3-4. It is the FitProgress
// its callbacks see.
class VariationalFit final : private FitProgress {
 public:
  VariationalFit(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                 Communicator& comm, const std::vector<FitCallback*>& callbacks)
      : trials_(trials), settings_(settings), comm_(comm), callbacks_(callbacks) {}

  FitOutcome run(const FitState* resume);

 private:
  // FitProgress: the fit after `completed_` iterations.
  int iteration() const override { return completed_; }
  bool last() const override { return last_; }
  FitState state() const override {
    return state_after(completed_, stats_, pending_, previous_elbo_, converged_);
  }

  int dim() const { return settings_.latents; }
  int neurons() const { return static_cast<int>(trials_.front().counts.rows()); }
  bool full_batch() const { return settings_.minibatch.full_batch(population_); }
  int threads() const { return static_cast<int>(workers_.size()); }

  // Adds the wall time of `work` to `phase` (FitCallback::on_phase).
  template <class Work>
  auto timed(FitPhase phase, Work&& work);
  void start(const FitState* resume);
  void initialise();
  void refresh_models();
  void build_history_basis();
  // The trial's history offset, or null without history terms.
  const Eigen::ArrayXXd* offset_of(std::size_t k) const {
    return history_offsets_.empty() ? nullptr : &history_offsets_[k];
  }
  HistoryTerms history_terms_of(std::size_t k) const {
    if (history_offsets_.empty()) return {};
    return {&history_offsets_[k], &history_features_[k]};
  }
  void resume(const FitState& state);
  FitState state_after(int iteration, const GlobalStatistics& stats, GlobalStepSize pending,
                       double elbo, bool converged) const;
  void initial_readout_steps(const GlobalStatistics& stats);
  GlobalStatistics statistics_at_current_moments();
  std::vector<std::size_t> members_of_batch(int iteration) const;
  GlobalStatistics local_pass(const std::vector<std::size_t>& members, RowCheck check,
                              int iteration, bool keep_sites);
  // --accelerate squarem: replaces the plain step's globals by an extrapolation when one is
  // due; returns the plain step's globals then (to fall back to), else nothing.
  std::optional<GlobalState> extrapolate(IterationRecord& record);
  bool extrapolation_rose(const GlobalStatistics& stats) const;
  void fall_back_to_plain_step(const std::vector<std::size_t>& members, GlobalState plain,
                               int iteration);
  GlobalStatistics reduce(ReproducibleSum sum);
  void global_step(const GlobalStatistics& stats, GlobalStepSize step);
  int undo_rows_that_dropped(const GlobalStatistics& stats, const GlobalStatistics& previous);
  IterationRecord record_of(int iteration, const GlobalStatistics& stats, double scale) const;
  // One iteration; false when the fit ends with it (converged, stopped, limit or failure).
  bool iterate(int iteration);
  std::string local_failure(const GlobalStatistics& stats, int iteration) const;
  // Ends the fit after a failed iteration with the state before it (and tells the callbacks).
  bool fail(int iteration, const std::string& message);
  void remember_state();
  void restore_state();
  bool any_stop_requested();
  void finish();
  void finish_stochastic();

  const std::vector<TrialCounts>& trials_;
  const FitSettings& settings_;
  Communicator& comm_;
  const std::vector<FitCallback*>& callbacks_;
  ModelLayout layout_;
  std::unique_ptr<ObservationModel> model_;             // spikes, at the current row parameters
  std::vector<GaussianObservation> continuous_models_;  // at the current variances
  std::unique_ptr<FamilyEvaluator> evaluator_;
  std::unique_ptr<Estimator> estimator_;        // of the local steps (closed form, quadrature, MC)
  std::unique_ptr<Optimizer> optimizer_;        // natural gradients or Adam, with its state
  std::vector<double> spike_base_measures_;     // per local trial, under model_
  int population_ = 0;                          // K: trials on all ranks
  std::size_t buffer_size_ = 0;                 // doubles in a packed GlobalStatistics
  std::unique_ptr<GaussianCubature> cubature_;  // --readout mlp: its expectations
  FitOutcome outcome_;
  Readout readout_before_step_;  // full batch: to undo rows whose step dropped the objective
  RowParameters row_parameters_before_step_;
  HistoryCoupling history_before_step_;
  Eigen::VectorXd row_damping_;       // full batch: halved for a row whose step was undone
  std::unique_ptr<Squarem> squarem_;  // --accelerate squarem
  std::unique_ptr<ObservationModel> plain_model_;  // spikes at the plain step's row parameters
  bool tentative_pass_ = false;  // an extrapolation's local pass: failures are not printed
  // --history: per local trial, its offset B f_t under the current globals (refresh_models).
  std::vector<Eigen::ArrayXXd> history_offsets_;
  std::vector<Eigen::MatrixXd> history_features_;  // per local trial, F x T (fixed)

  // The loop: the statistics of the last completed iteration and the step they call for.
  GlobalStatistics stats_;
  GlobalStepSize pending_;
  double previous_elbo_ = std::numeric_limits<double>::quiet_NaN();
  int completed_ = 0;
  bool last_ = false, converged_ = false;
  // What an iteration changes, kept to undo it when it fails: globals, optimiser, damping and
  // (in local_pass) the sites of the batch's trials.
  GlobalState globals_before_;
  std::unique_ptr<Optimizer> optimizer_before_;
  Eigen::VectorXd damping_before_;
  std::vector<Sites> sites_before_;
  std::vector<std::size_t> members_;
  std::vector<TrialWorker> workers_;  // one per thread (LocalStepSettings::threads)
  LocalStepSettings local_settings_;  // of local_pass: settings_.local, or its exact E-step
  int first_failed_trial_ = std::numeric_limits<int>::max();  // this rank's, file index
};

template <class Work>
auto VariationalFit::timed(FitPhase phase, Work&& work) {
  struct ReportOnExit {
    const std::vector<FitCallback*>& callbacks;
    FitPhase phase;
    Clock::time_point start = Clock::now();
    ~ReportOnExit() {
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      for (FitCallback* callback : callbacks) callback->on_phase(phase, seconds);
    }
  } report{callbacks_, phase};
  return work();
}

// ---- Initialisation ----

// Sum over all trials of their statistics at the current q (no local step): the start.
GlobalStatistics VariationalFit::statistics_at_current_moments() {
  for (TrialWorker& worker : workers_) {
    worker.trial_stats = GlobalStatistics::zero(dim(), neurons(), layout_);
    worker.sum = ReproducibleSum(buffer_size_);
  }
  for_each_index(trials_.size(), threads(), [&](std::size_t k, int thread) {
    TrialWorker& worker = workers_[static_cast<std::size_t>(thread)];
    GlobalStatistics& trial = worker.trial_stats;
    trial.clear();
    const GaussianMoments& q = outcome_.posteriors[k].moments;
    trial.add_trial(q, outcome_.globals.spikes, *model_, trials_[k].counts, 0.0,
                    trials_[k].inputs_or_null(), nullptr, history_terms_of(k));
    for (std::size_t m = 0; m < trials_[k].continuous.size(); ++m)
      trial.add_continuous(m, trials_[k].continuous[m], q);
    trial.pack_into(worker.packed);
    worker.sum.add(worker.packed);
  });
  ReproducibleSum sum(buffer_size_);
  for (const TrialWorker& worker : workers_) sum.merge(worker.sum);
  return reduce(std::move(sum));
}

// Newton has converged when no loading or offset moved by more than 1e-10 of its size.
bool readout_converged(const Readout& before, const Readout& after) {
  const double largest = std::max(before.C.cwiseAbs().maxCoeff(), before.d.cwiseAbs().maxCoeff());
  const double moved = std::max((after.C - before.C).cwiseAbs().maxCoeff(),
                                (after.d - before.d).cwiseAbs().maxCoeff());
  return moved <= 1e-10 * (1.0 + largest);
}

// The local trials (indices into trials_) among `count` positions spread evenly over all K.
std::vector<std::size_t> evenly_spaced_sample(const std::vector<TrialCounts>& trials,
                                              int population, int count) {
  if (count >= population) return every_trial(trials.size());
  std::vector<int> positions;
  for (int j = 0; j < count; ++j)
    positions.push_back(static_cast<int>(static_cast<long>(j) * population / count));
  std::vector<std::size_t> members;
  for (std::size_t k = 0; k < trials.size(); ++k)
    if (std::binary_search(positions.begin(), positions.end(), trials[k].position))
      members.push_back(k);
  return members;
}

// The Poisson GLM of the readouts on the PCA latents: Newton steps backtracked per row on the
// exact objective (of a sample of trials, scaled to K). Runs once, so its extra reductions per
// step do not matter.
void VariationalFit::initial_readout_steps(const GlobalStatistics& stats) {
  const int sample_size = std::min(settings_.initialisation.readout_trials, population_);
  const std::vector<std::size_t> sample = evenly_spaced_sample(trials_, population_, sample_size);
  const double scale = statistics_scale(population_, sample_size);
  const auto rows = static_cast<std::size_t>(neurons());
  const ReadoutObjective objective = [&](const Readout& candidate, const std::vector<int>& wanted) {
    if (wanted.size() == rows) {
      const ReadoutKernels kernels(candidate);
      return Eigen::VectorXd(scale *
                             sum_over_trials(rows, sample, comm_, threads(), [&](std::size_t k) {
                               return row_log_likelihood(kernels, *model_, trials_[k].counts,
                                                         outcome_.posteriors[k].moments);
                             }));
    }
    // A backtracking round after the first: only the rows not yet accepted, with their own
    // readout rows, counts and spike model (row parameters); the others stay 0.
    const Readout subset = candidate.select_rows(wanted);
    const ReadoutKernels kernels(subset);
    const std::unique_ptr<ObservationModel> subset_model =
        settings_.model.spike_observation(outcome_.globals.spike_parameters.select_rows(wanted));
    const Eigen::VectorXd values =
        scale * sum_over_trials(wanted.size(), sample, comm_, threads(), [&](std::size_t k) {
          return row_log_likelihood(kernels, *subset_model, trials_[k].counts(wanted, Eigen::all),
                                    outcome_.posteriors[k].moments);
        });
    Eigen::VectorXd all_rows = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(rows));
    for (std::size_t i = 0; i < wanted.size(); ++i)
      all_rows(wanted[i]) = values(static_cast<Eigen::Index>(i));
    return all_rows;
  };
  GlobalState& globals = outcome_.globals;
  ReadoutStatistics readout_stats = stats.spikes;
  for (int step = 0; step < settings_.initialisation.readout_newton_steps; ++step) {
    // The statistics at the moved readout (and, for a sample, at the start too).
    if (step > 0 || sample_size < population_) {
      const int p = dim() + 1;
      const std::size_t size = rows * static_cast<std::size_t>(p * (p + 1));
      const Eigen::VectorXd summed =
          sum_over_trials(size, sample, comm_, threads(), [&](std::size_t k) {
            ReadoutStatistics trial = ReadoutStatistics::zero(neurons(), dim());
            trial.add_trial(globals.spikes, *model_, trials_[k].counts,
                            outcome_.posteriors[k].moments);
            Eigen::VectorXd packed(static_cast<Eigen::Index>(size));
            packed << trial.gradient.reshaped(), trial.hessian.reshaped();
            return packed;
          });
      const Eigen::Index gradient_size = p * neurons();
      readout_stats.gradient = summed.head(gradient_size).reshaped(p, neurons());
      readout_stats.hessian = summed.tail(gradient_size * p).reshaped(p, neurons() * p);
    }
    const Readout before = globals.spikes;
    globals.spikes = readout_natural_gradient_step(before, globals.spikes_prior, readout_stats,
                                                   scale, 1.0, objective);
    if (readout_converged(before, globals.spikes)) break;
  }
}

// PCA latents, then a global step from them; the initial sites are the CVI targets at the
// PCA q(z), so the first local step starts near the data.
void VariationalFit::initialise() {
  GlobalState& globals = outcome_.globals;
  globals = make_prior_state(dim(), neurons(), settings_.priors, layout_);
  const std::vector<GaussianMoments> start =
      pca_latents(trials_, dim(), settings_.initialisation, comm_);

  const auto rows = static_cast<std::size_t>(neurons());
  const Eigen::VectorXd counts_and_bins =
      sum_over_trials(rows + 1, every_trial(trials_.size()), comm_, threads(), [&](std::size_t k) {
        Eigen::VectorXd sums(neurons() + 1);
        sums << trials_[k].counts.rowwise().sum().matrix(),
            static_cast<double>(trials_[k].counts.cols());
        return sums;
      });
  const Eigen::ArrayXd mean_count =
      (counts_and_bins.head(neurons()) / counts_and_bins(neurons())).array().max(1e-3);
  // The offset that reproduces each row's mean under the model's link.
  globals.spikes.d = settings_.model.spikes->offsets_for_means(mean_count);
  refresh_models();

  outcome_.posteriors.assign(trials_.size(), GaussMarkovState{});
  for (std::size_t k = 0; k < trials_.size(); ++k) outcome_.posteriors[k].moments = start[k];
  const GlobalStatistics stats = statistics_at_current_moments();
  update_dynamics(globals, stats, GlobalStepSize{});
  initial_readout_steps(stats);
  update_continuous(globals, stats, GlobalStepSize{});
  refresh_models();

  const ModalityKernels kernels(globals, *model_, continuous_models_, cubature_.get());
  std::vector<LikelihoodWorkspace> work(workers_.size());
  for_each_index(trials_.size(), threads(), [&](std::size_t k, int thread) {
    expected_log_likelihood(kernels.views(trials_[k], spike_base_measures_[k], offset_of(k)),
                            start[k], work[static_cast<std::size_t>(thread)],
                            &outcome_.posteriors[k].sites);
  });
  row_damping_ = Eigen::VectorXd::Ones(neurons());
}

// The observation models at the current globals (shapes, noise variances).
void VariationalFit::refresh_models() {
  const GlobalState& globals = outcome_.globals;
  model_ = settings_.model.spike_observation(globals.spike_parameters);
  continuous_models_.clear();
  for (const ContinuousReadout& modality : globals.continuous)
    continuous_models_.emplace_back(modality.variances);
  if (globals.history.active()) {
    history_offsets_.resize(trials_.size());
    for (std::size_t k = 0; k < trials_.size(); ++k)
      history_offsets_[k] = globals.history.offset(history_features_[k]);
  }
}

// --history: the basis from the held-in counts of every training trial and each trial's features.
void VariationalFit::build_history_basis() {
  layout_.history = training_history_basis(trials_, settings_.history, comm_);
  layout_.history_prior_precision = settings_.history.prior_precision;
  history_features_.clear();
  for (const TrialCounts& trial : trials_)
    history_features_.push_back(layout_.history.features(trial.counts));
}

// ---- Iterations ----

// This rank's trials (indices into trials_) in minibatch `iteration` (0-based).
std::vector<std::size_t> VariationalFit::members_of_batch(int iteration) const {
  if (full_batch()) return every_trial(trials_.size());
  const std::vector<int> batch =
      draw_minibatch(settings_.minibatch.seed, static_cast<std::uint64_t>(iteration), population_,
                     settings_.minibatch.size);
  std::vector<std::size_t> members;
  for (std::size_t k = 0; k < trials_.size(); ++k)
    if (std::binary_search(batch.begin(), batch.end(), trials_[k].position)) members.push_back(k);
  return members;
}

GlobalStatistics VariationalFit::reduce(ReproducibleSum sum) {
  timed(FitPhase::kAllreduce, [&] { sum.allreduce(comm_); });
  GlobalStatistics stats = GlobalStatistics::zero(dim(), neurons(), layout_);
  stats.unpack(sum.values());
  return stats;
}

// Local steps of the members under the current globals, warm-started from their sites, and
// the one reduction of their statistics. With a `check` readout, each trial first adds its
// E_q log p(x | w) per row under its previous q at that readout (the newly proposed one). With
// `keep_sites`, the members' sites are kept first, to undo the pass if the iteration fails.
GlobalStatistics VariationalFit::local_pass(const std::vector<std::size_t>& members, RowCheck check,
                                            int iteration, bool keep_sites) {
  ReproducibleSum sum(buffer_size_);
  if (keep_sites) members_ = members;
  timed(FitPhase::kLocal, [&] {
    const GlobalState& globals = outcome_.globals;
    const LatentPrior latent_prior = LatentPrior::from(globals);
    const ModalityKernels kernels(globals, *model_, continuous_models_, cubature_.get());
    std::optional<ReadoutKernels> other_readout;  // an extrapolation checks the plain step's
    if (check.readout && check.readout != &globals.spikes) other_readout.emplace(*check.readout);
    const ReadoutKernels& check_kernels = other_readout ? *other_readout : kernels.spikes();
    for (TrialWorker& worker : workers_) {
      worker.trial_stats = GlobalStatistics::zero(dim(), neurons(), layout_);
      worker.sum = ReproducibleSum(buffer_size_);
    }
    // Each trial writes only its own posterior and its thread's accumulator (threads.hpp).
    for_each_index(members.size(), threads(), [&](std::size_t i, int thread) {
      const std::size_t k = members[i];
      TrialWorker& worker = workers_[static_cast<std::size_t>(thread)];
      GlobalStatistics& trial_stats = worker.trial_stats;
      const TrialCounts& trial = trials_[k];
      GaussMarkovState& state = outcome_.posteriors[k];
      if (keep_sites) sites_before_[k] = state.sites;
      trial_stats.clear();
      worker.estimator->begin(RandomCounter{static_cast<std::uint64_t>(iteration),
                                            static_cast<std::uint64_t>(trial.position), 0});
      bool checked = false;
      try {
        if (check.readout) {
          trial_stats.candidate_log_likelihood = row_log_likelihood(
              check_kernels, *check.model, trial.counts, state.moments, offset_of(k));
          checked = true;
        }
        const PriorBlocks prior =
            latent_prior.blocks(static_cast<int>(trial.counts.cols()), trial.inputs_or_null());
        const auto modalities = kernels.views(trial, spike_base_measures_[k], offset_of(k));
        const LocalStepReport report =
            warm_local_step(LocalProblem{prior, modalities, *worker.evaluator, *worker.estimator},
                            state, local_settings_, *optimizer_);
        if (!std::isfinite(state.elbo))
          throw NumericalError("its ELBO is " + std::to_string(state.elbo) +
                               " after the local step");
        trial_stats.add_trial(state.moments, globals.spikes, *model_, trial.counts, state.elbo,
                              trial.inputs_or_null(), kernels.mlp(), history_terms_of(k));
        for (std::size_t m = 0; m < trial.continuous.size(); ++m)
          trial_stats.add_continuous(m, trial.continuous[m], state.moments);
        trial_stats.local_iterations = report.iterations;
        trial_stats.unconverged_trials = report.converged ? 0.0 : 1.0;
        trial_stats.restarted_trials = report.restarted ? 1.0 : 0.0;
      } catch (const std::exception& error) {
        // Every rank must still reach the reduction: report here, count it, stop after.
#pragma omp critical(spikevi_local_failure)
        if (!tentative_pass_) {
          std::cerr << "spikevi: rank " << comm_.rank() << ": trial " << trial.index << ": "
                    << error.what() << std::endl;
          first_failed_trial_ = std::min(first_failed_trial_, trial.index);
        }
        const Eigen::VectorXd candidate = trial_stats.candidate_log_likelihood;
        trial_stats.clear();
        trial_stats.failed_trials = 1.0;
        // A failed extrapolation still leaves the plain step's row check to be done: keep its
        // candidates (NaN, every row undone, where even they failed).
        if (tentative_pass_ && check.readout)
          trial_stats.candidate_log_likelihood =
              checked ? candidate
                      : Eigen::VectorXd::Constant(candidate.size(),
                                                  std::numeric_limits<double>::quiet_NaN());
      }
      trial_stats.pack_into(worker.packed);
      worker.sum.add(worker.packed);
    });
    for (const TrialWorker& worker : workers_) sum.merge(worker.sum);
    if (any_stop_requested()) {
      GlobalStatistics& trial_stats = workers_.front().trial_stats;
      trial_stats.clear();
      trial_stats.stop_requests = 1.0;
      trial_stats.pack_into(workers_.front().packed);
      sum.add(workers_.front().packed);
    }
  });
  return reduce(std::move(sum));
}

void VariationalFit::global_step(const GlobalStatistics& stats, GlobalStepSize step) {
  timed(FitPhase::kGlobal, [&] {
    readout_before_step_ = outcome_.globals.spikes;
    row_parameters_before_step_ = outcome_.globals.spike_parameters;
    history_before_step_ = outcome_.globals.history;
    checked_global_step(outcome_.globals, stats, step, row_damping_, optimizer_);
    refresh_models();
  });
}

// Full batch: puts back the rows whose step lowered their objective (with q at the posteriors
// the step was proposed from) and halves their next step; the others may grow back to 1.
int VariationalFit::undo_rows_that_dropped(const GlobalStatistics& stats,
                                           const GlobalStatistics& previous) {
  Readout& readout = outcome_.globals.spikes;
  HistoryCoupling& history = outcome_.globals.history;
  // With history terms a row's objective also holds log p0(b_n): (c_n, d_n, b_n) step together.
  Eigen::VectorXd before = previous.spikes.log_likelihood, after = stats.candidate_log_likelihood;
  if (history.active()) {
    before += history_before_step_.row_log_prior();
    after += history.row_log_prior();
  }
  const std::vector<int> dropped = rows_that_dropped(outcome_.globals.spikes_prior,
                                                     readout_before_step_, before, readout, after);
  row_damping_ = (2.0 * row_damping_).cwiseMin(1.0);
  const int p = dim() + 1;
  for (int n : dropped) {
    readout.C.row(n) = readout_before_step_.C.row(n);
    readout.d(n) = readout_before_step_.d(n);
    readout.precision.middleCols(n * p, p) = readout_before_step_.precision.middleCols(n * p, p);
    outcome_.globals.spike_parameters.copy_row(row_parameters_before_step_, n);
    if (history.active()) history.copy_row(history_before_step_, n);
    row_damping_(n) = std::max(0.25 * row_damping_(n), std::ldexp(1.0, -30));
  }
  if (!dropped.empty()) refresh_models();
  return static_cast<int>(dropped.size());
}

// --accelerate squarem, once the plain step is taken: when a cycle is due, its extrapolation
// (squarem.hpp) becomes the globals and the plain step's are returned; `record` notes the alpha
// (-1: the extrapolation was the plain step itself).
std::optional<GlobalState> VariationalFit::extrapolate(IterationRecord& record) {
  if (!squarem_ || !squarem_->due()) return std::nullopt;
  std::optional<Squarem::Proposal> proposal = timed(FitPhase::kGlobal, [&] {
    try {
      return squarem_->propose(globals_before_, outcome_.globals);
    } catch (const NumericalError&) {  // no coordinates for a state: take the plain step
      return std::optional<Squarem::Proposal>();
    }
  });
  record.squarem_alpha = proposal ? proposal->alpha : -1.0;
  if (!proposal) return std::nullopt;
  GlobalState plain = std::exchange(outcome_.globals, std::move(proposal->globals));
  plain_model_ = settings_.model.spike_observation(plain.spike_parameters);
  refresh_models();
  return plain;
}

// The extrapolation is kept only if every trial's local step succeeded and the objective rose
// above the last iteration's (which keeps the accelerated fit monotone).
bool VariationalFit::extrapolation_rose(const GlobalStatistics& stats) const {
  return stats.failed_trials == 0 && std::isfinite(stats.elbo_sum) &&
         stats.elbo_sum + outcome_.globals.global_terms() > previous_elbo_;
}

// Undoes the extrapolation's local pass (the members' sites) and takes the plain step instead:
// the same state as a plain iteration, the rejected pass's sweeps counted in the record.
void VariationalFit::fall_back_to_plain_step(const std::vector<std::size_t>& members,
                                             GlobalState plain, int iteration) {
  const GlobalStatistics tried = std::move(stats_);
  for (std::size_t k : members) outcome_.posteriors[k].sites = sites_before_[k];
  outcome_.globals = std::move(plain);
  refresh_models();
  stats_ = local_pass(members, RowCheck{}, iteration, false);
  stats_.candidate_log_likelihood = tried.candidate_log_likelihood;  // under the q before
  stats_.local_iterations += tried.local_iterations;
  stats_.stop_requests += tried.stop_requests;
}

IterationRecord VariationalFit::record_of(int iteration, const GlobalStatistics& stats,
                                          double scale) const {
  IterationRecord record;
  record.iteration = iteration;
  record.elbo = scale * stats.elbo_sum + outcome_.globals.global_terms();
  record.elbo_per_spike = record.elbo / std::max(scale * stats.spike_count, 1.0);
  record.batch_trials = static_cast<int>(stats.trials);
  record.local_iterations = stats.local_iterations / std::max(stats.trials, 1.0);
  return record;
}

FitOutcome VariationalFit::run(const FitState* resume) {
  start(resume);
  const int first = completed_ + 1;
  for (int iteration = first; iteration <= settings_.iterations && !last_; ++iteration)
    if (!iterate(iteration)) break;
  finish();
  return std::move(outcome_);
}

// Validates, lays the model out, and initialises or continues from `resume`.
void VariationalFit::start(const FitState* resume_from) {
  double local_trials = static_cast<double>(trials_.size());
  comm_.allreduce_sum(std::span<double>(&local_trials, 1));  // exact: small integers
  population_ = static_cast<int>(local_trials);
  validate(trials_, settings_, population_);
  layout_.row_parameters = settings_.model.spikes->row_parameters();
  layout_.continuous_names = settings_.continuous_names;
  layout_.inputs = static_cast<int>(trials_.front().inputs.rows());
  layout_.adam = settings_.model.optimizer == OptimizerKind::kAdam;
  layout_.hidden = settings_.model.mlp_hidden();
  layout_.mlp_seed = settings_.model.mlp_seed;
  layout_.mlp_prior_precision = settings_.model.mlp_prior_precision;
  if (layout_.hidden > 0)
    cubature_ = std::make_unique<GaussianCubature>(settings_.model.cubature(dim()));
  layout_.continuous_channels.clear();
  for (const Eigen::ArrayXXd& values : trials_.front().continuous)
    layout_.continuous_channels.push_back(static_cast<int>(values.rows()));
  if (settings_.history.active()) build_history_basis();
  buffer_size_ = GlobalStatistics::zero(dim(), neurons(), layout_).pack().size();
  evaluator_ = make_family_evaluator(settings_.model.family);
  estimator_ = make_estimator(settings_.model);
  optimizer_ = make_optimizer(settings_.model, dim(), neurons(),
                              static_cast<int>(layout_.row_parameters.size()), layout_.hidden);
  model_ =
      settings_.model.spike_observation(RowParameters::at_prior(layout_.row_parameters, neurons()));
  spike_base_measures_.clear();
  for (const TrialCounts& trial : trials_) {
    try {
      spike_base_measures_.push_back(model_->log_base_measure(trial.counts));
    } catch (const InputError& error) {
      throw InputError("trial " + std::to_string(trial.index) + ": " + error.what());
    }
  }

  sites_before_.resize(trials_.size());
  local_settings_ = settings_.local;
  if (settings_.accelerate == Acceleration::kSquarem) squarem_ = std::make_unique<Squarem>();
  workers_.resize(static_cast<std::size_t>(std::clamp(resolve_thread_count(settings_.local.threads),
                                                      1, static_cast<int>(trials_.size()))));
  for (TrialWorker& worker : workers_) {
    worker.evaluator = make_family_evaluator(settings_.model.family);
    worker.estimator = make_estimator(settings_.model);
  }
  if (resume_from) {
    timed(FitPhase::kInitialisation, [&] { resume(*resume_from); });
    stats_ = GlobalStatistics::zero(dim(), neurons(), layout_);
    stats_.unpack(resume_from->statistics);
    pending_ = resume_from->pending;
    previous_elbo_ = resume_from->previous_elbo;
    completed_ = resume_from->iteration;
    if (resume_from->converged) {
      outcome_.termination = Termination::kConverged;
      outcome_.message = "the fit had converged after iteration " + std::to_string(completed_);
      converged_ = last_ = true;
    }
  } else {
    timed(FitPhase::kInitialisation, [&] { initialise(); });
  }
}

bool VariationalFit::iterate(int iteration) {
  const auto iteration_start = Clock::now();
  // --readout mlp: no row check, as the network's step moves every row's objective too (the
  // check would undo rows for it and cost a second local pass); its rows' Newton steps go
  // unchecked, as in minibatch runs.
  const bool check_readout = full_batch() && iteration > 1 && !outcome_.globals.mlp.active();
  remember_state();
  if (iteration > 1) {
    try {
      global_step(stats_, pending_);
    } catch (const NumericalError& error) {
      return fail(iteration, error.what());
    }
  }
  IterationRecord record;
  std::optional<GlobalState> plain = iteration > 1 ? extrapolate(record) : std::nullopt;
  const std::vector<std::size_t> members = members_of_batch(iteration - 1);
  GlobalStatistics previous = std::move(stats_);
  RowCheck check;
  if (check_readout) {  // an extrapolation keeps the plain step's candidates, to fall back to
    check.readout = plain ? &plain->spikes : &outcome_.globals.spikes;
    check.model = plain ? plain_model_.get() : model_.get();
  }
  tentative_pass_ = plain.has_value();
  stats_ = local_pass(members, check, iteration, true);
  tentative_pass_ = false;
  if (plain && !extrapolation_rose(stats_)) {
    record.squarem_rejected = true;
    fall_back_to_plain_step(members, std::move(*plain), iteration);
    plain.reset();
  }
  int rejected = 0;
  if (check_readout && !plain && std::isfinite(stats_.elbo_sum)) {
    rejected = undo_rows_that_dropped(stats_, previous);
    if (rejected > 0) {  // q under the corrected readout; keep the stop requests
      const double stops = stats_.stop_requests;
      stats_ = local_pass(members, RowCheck{}, iteration, false);
      stats_.stop_requests += stops;
    }
  }
  if (full_batch() && iteration > 1 && local_settings_.steps > 0 &&
      std::isfinite(stats_.elbo_sum) &&
      stats_.elbo_sum + outcome_.globals.global_terms() <
          previous_elbo_ - 1e-12 * std::abs(previous_elbo_)) {
    // The partial local steps lowered the objective: finish them (the exact E-step), which is
    // what keeps VB-EM monotone (DESIGN.md §3).
    const double stops = stats_.stop_requests;
    local_settings_.steps = 0;
    stats_ = local_pass(members, RowCheck{}, iteration, false);
    local_settings_.steps = settings_.local.steps;
    stats_.stop_requests += stops;
  }
  if (const std::string problem = local_failure(stats_, iteration); !problem.empty()) {
    stats_ = std::move(previous);
    return fail(iteration, problem);
  }
  outcome_.unconverged_local_steps += static_cast<int>(stats_.unconverged_trials);

  const double scale = statistics_scale(population_, static_cast<int>(stats_.trials));
  pending_ = GlobalStepSize{settings_.minibatch.step_size(iteration - 1, population_), scale};
  const IterationRecord squarem_record = record;
  record = record_of(iteration, stats_, scale);
  record.squarem_alpha = squarem_record.squarem_alpha;
  record.squarem_rejected = squarem_record.squarem_rejected;
  record.rho = pending_.rho;
  record.rejected_readout_rows = rejected;
  record.relative_change = (record.elbo - previous_elbo_) / std::abs(record.elbo);
  record.seconds = std::chrono::duration<double>(Clock::now() - iteration_start).count();
  outcome_.trace.push_back(record);
  previous_elbo_ = record.elbo;
  completed_ = iteration;
  if (squarem_) {
    if (record.squarem_alpha != 0.0)
      squarem_->attempted(!record.squarem_rejected, record.squarem_alpha);
    else
      squarem_->plain_iteration(outcome_.globals);
  }
  // An extrapolation's change says nothing of how close the plain iteration has come.
  converged_ = full_batch() && settings_.tolerance > 0 && !plain &&
               std::abs(record.relative_change) < settings_.tolerance;
  const bool stop = stats_.stop_requests > 0;
  last_ = converged_ || stop || iteration == settings_.iterations;
  if (converged_) {
    outcome_.termination = Termination::kConverged;
    char text[160];
    std::snprintf(text, sizeof text,
                  "the relative ELBO change %.3g fell below the tolerance %.3g at iteration %d",
                  std::abs(record.relative_change), settings_.tolerance, iteration);
    outcome_.message = text;
  } else if (stop) {
    outcome_.termination = Termination::kStopped;
    outcome_.message = "stopped on request after iteration " + std::to_string(iteration);
  } else if (last_) {
    outcome_.termination = Termination::kIterationLimit;
    outcome_.message = "reached the iteration limit (" + std::to_string(iteration) + ")";
  }
  for (FitCallback* callback : callbacks_) callback->on_iteration(record, *this);
  return !last_;
}

// Why the local pass just reduced is no state to continue from ("" if it is): trials whose
// local step failed (each reported by its rank on stderr), or an ELBO that is not finite.
std::string VariationalFit::local_failure(const GlobalStatistics& stats, int iteration) const {
  if (stats.failed_trials > 0) {
    double first = -static_cast<double>(first_failed_trial_);  // the lowest index over ranks
    comm_.allreduce_max(std::span<double>(&first, 1));
    return "the local step failed on " + std::to_string(static_cast<long>(stats.failed_trials)) +
           " trial(s) at iteration " + std::to_string(iteration) + ", the first being trial " +
           std::to_string(static_cast<long>(-first)) +
           " (the rank holding each printed its reason on stderr)";
  }
  if (!std::isfinite(stats.elbo_sum))
    return "the ELBO summed over the trials is " + std::to_string(stats.elbo_sum) +
           " at iteration " + std::to_string(iteration) +
           " although every trial's is finite: the data's values exceed the range of double "
           "precision in the objective (look for absurd values in /continuous or /counts)";
  if (!std::isfinite(outcome_.globals.global_terms()))
    return "the global terms of the objective (priors and the KL of the dynamics) are not finite "
           "at iteration " +
           std::to_string(iteration);
  return "";
}

void VariationalFit::remember_state() {
  members_.clear();  // local_pass names the trials whose sites it keeps
  globals_before_ = outcome_.globals;
  optimizer_before_ = optimizer_->clone();
  damping_before_ = row_damping_;
}

// Back to the state before the failed iteration: globals, optimiser, damping and the sites of
// the trials its local pass touched.
void VariationalFit::restore_state() {
  outcome_.globals = globals_before_;
  optimizer_ = optimizer_before_->clone();
  row_damping_ = damping_before_;
  for (std::size_t k : members_) outcome_.posteriors[k].sites = sites_before_[k];
  refresh_models();
}

bool VariationalFit::fail(int iteration, const std::string& message) {
  restore_state();
  outcome_.termination = Termination::kNumericalFailure;
  outcome_.message =
      message + "; the fit keeps the state after iteration " + std::to_string(iteration - 1);
  last_ = true;
  for (FitCallback* callback : callbacks_) callback->on_failure(outcome_.message, *this);
  return false;
}

bool VariationalFit::any_stop_requested() {
  bool stop = false;
  for (FitCallback* callback : callbacks_) stop = callback->stop_requested() || stop;
  return stop;
}

// The objective at the end: the last iteration's (full batch), or that of a final pass over all
// trials at the final globals (minibatches).
void VariationalFit::finish() {
  const Termination ended = outcome_.termination;
  if (ended == Termination::kStopped || ended == Termination::kNumericalFailure) {
    outcome_.elbo = outcome_.trace.empty() ? std::numeric_limits<double>::quiet_NaN()
                                           : outcome_.trace.back().elbo;
  } else if (full_batch()) {
    outcome_.elbo = outcome_.trace.empty() ? stats_.elbo_sum + outcome_.globals.global_terms()
                                           : outcome_.trace.back().elbo;
    outcome_.spike_count = stats_.spike_count;
  } else {
    finish_stochastic();
  }
  try {
    outcome_.evidence_laplace = outcome_.elbo + outcome_.globals.laplace_correction();
  } catch (const NumericalError& error) {
    outcome_.evidence_laplace = std::numeric_limits<double>::quiet_NaN();
    outcome_.message += std::string("; evidence_laplace is undefined: ") + error.what();
  }
  for (FitCallback* callback : callbacks_) callback->on_end(outcome_);
}

// The state at the end of `iteration`, for a checkpoint.
FitState VariationalFit::state_after(int iteration, const GlobalStatistics& stats,
                                     GlobalStepSize pending, double elbo, bool converged) const {
  FitState state;
  state.iteration = iteration;
  state.converged = converged;
  state.globals = outcome_.globals;
  state.statistics = stats.pack();
  state.pending = pending;
  state.row_damping = row_damping_;
  state.optimizer_state = optimizer_->state();
  if (squarem_)
    squarem_->add_state(state.optimizer_state, squarem_coordinates(outcome_.globals).size());
  state.previous_elbo = elbo;
  state.unconverged_local_steps = outcome_.unconverged_local_steps;
  state.trace = outcome_.trace;
  state.sites.reserve(outcome_.posteriors.size());
  for (const GaussMarkovState& posterior : outcome_.posteriors)
    state.sites.push_back(posterior.sites);
  return state;
}

// Continues from a checkpoint: its globals and sites, and q re-evaluated from them (the same
// bits the local step had left, since evaluation is deterministic).
void VariationalFit::resume(const FitState& state) {
  if (state.sites.size() != trials_.size())
    throw InputError("checkpoint: holds " + std::to_string(state.sites.size()) +
                     " trials for this rank, which has " + std::to_string(trials_.size()));
  outcome_.globals = state.globals;
  outcome_.trace = state.trace;
  outcome_.unconverged_local_steps = state.unconverged_local_steps;
  row_damping_ = state.row_damping;
  // The priors are configuration (the checkpoint identity holds them equal): take them from
  // this fit's settings rather than from the file's defaults.
  const GlobalState priors = make_prior_state(dim(), neurons(), settings_.priors, layout_);
  outcome_.globals.continuous_prior = priors.continuous_prior;
  outcome_.globals.noise_prior = priors.noise_prior;
  outcome_.globals.mlp_prior_precision = priors.mlp_prior_precision;
  outcome_.globals.history.basis = priors.history.basis;  // recomputed from the data
  outcome_.globals.history.prior_precision = priors.history.prior_precision;
  for (std::size_t p = 0; p < outcome_.globals.spike_parameters.count(); ++p)
    outcome_.globals.spike_parameters.parameters[p].spec =
        priors.spike_parameters.parameters[p].spec;
  // Adam's bias correction counts the global steps taken: one per iteration after the first.
  optimizer_->restore(state.optimizer_state, std::max(state.iteration - 1, 0));
  if (squarem_) squarem_->restore(state.optimizer_state);
  refresh_models();
  const LatentPrior latent_prior = LatentPrior::from(outcome_.globals);
  const ModalityKernels kernels(outcome_.globals, *model_, continuous_models_, cubature_.get());
  outcome_.posteriors.assign(trials_.size(), GaussMarkovState{});
  for (std::size_t k = 0; k < trials_.size(); ++k) {
    const PriorBlocks prior =
        prior_blocks(latent_prior.dynamics, latent_prior.mu0, latent_prior.Sigma0,
                     static_cast<int>(trials_[k].counts.cols()), trials_[k].inputs_or_null());
    outcome_.posteriors[k].sites = state.sites[k];
    try {  // only the full-batch readout check reads these moments, and there they are valid
      estimator_->begin(RandomCounter{static_cast<std::uint64_t>(state.iteration),
                                      static_cast<std::uint64_t>(trials_[k].position), 0});
      evaluator_->evaluate(prior, kernels.views(trials_[k], spike_base_measures_[k], offset_of(k)),
                           state.sites[k], *estimator_, outcome_.posteriors[k]);
    } catch (const NumericalError&) {
      // a minibatch trial's stale sites: its next warm local step restarts from the prior,
      // exactly as the uninterrupted fit does
    }
  }
}

// Minibatch runs: the last step, then the local steps of every trial at the final globals,
// which give the posteriors and the exact objective on all trials. If that fails, the fit
// keeps the state after its last iteration.
void VariationalFit::finish_stochastic() {
  remember_state();
  try {
    global_step(stats_, pending_);
  } catch (const NumericalError& error) {
    fail(completed_ + 1, std::string("the last global step failed: ") + error.what());
    return;
  }
  // The final pass draws its Monte Carlo samples as an iteration of its own.
  const GlobalStatistics all =
      local_pass(every_trial(trials_.size()), RowCheck{}, settings_.iterations + 1, true);
  if (const std::string problem = local_failure(all, settings_.iterations + 1); !problem.empty()) {
    fail(completed_ + 1, "the final pass over all trials: " + problem);
    outcome_.elbo = outcome_.trace.empty() ? std::numeric_limits<double>::quiet_NaN()
                                           : outcome_.trace.back().elbo;
    return;
  }
  outcome_.elbo = all.elbo_sum + outcome_.globals.global_terms();
  outcome_.spike_count = all.spike_count;
}

}  // namespace

std::string termination_name(Termination termination) {
  switch (termination) {
    case Termination::kConverged:
      return "converged";
    case Termination::kStopped:
      return "stopped";
    case Termination::kNumericalFailure:
      return "numerical failure";
    case Termination::kIterationLimit:
      break;
  }
  return "iteration limit";
}

// The moments of every training trial on every rank summed exactly, so that every rank and
// every rank count gets the same bits.
HistoryBasis training_history_basis(const std::vector<TrialCounts>& trials, HistorySettings history,
                                    Communicator& comm) {
  if (history.rows.empty())
    for (int n = 0; n < static_cast<int>(trials.front().counts.rows()); ++n)
      history.rows.push_back(n);
  history.components = history.resolved_components();
  const auto H = static_cast<Eigen::Index>(history.rows.size());
  const auto size = static_cast<std::size_t>(H + H * H + 1);
  const Eigen::VectorXd summed =
      sum_over_trials(size, every_trial(trials.size()), comm, 1, [&](std::size_t k) {
        const CountMoments moments = count_moments(trials[k].counts, history.rows);
        Eigen::VectorXd packed(static_cast<Eigen::Index>(size));
        packed << moments.sum, moments.second.reshaped(), moments.bins;
        return packed;
      });
  const CountMoments moments{summed.head(H), summed.segment(H, H * H).reshaped(H, H),
                             summed(H + H * H)};
  return make_history_basis(history, moments);
}

FitOutcome fit_variational(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                           Communicator& comm, const std::vector<FitCallback*>& callbacks,
                           const FitState* resume) {
  return VariationalFit(trials, settings, comm, callbacks).run(resume);
}

}  // namespace spikevi
