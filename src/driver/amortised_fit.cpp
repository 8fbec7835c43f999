#include "spikevi/driver/amortised_fit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <span>
#include <string>

#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/error.hpp"
#include "spikevi/inference/amortised_inference.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/global_step.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/parallel/reproducible_sum.hpp"

namespace spikevi {

double AmortisedSettings::beta(int iteration) const {
  if (kl_warmup <= 0 || iteration > kl_warmup) return 1.0;
  return kl_beta0 + (1.0 - kl_beta0) * (iteration - 1) / static_cast<double>(kl_warmup);
}

void AmortisedSettings::validate() const {
  EncoderShape{.inputs = 1, .hidden = hidden, .window = window, .latents = 1}.validate();
  if (!(adam.learning_rate > 0) || !std::isfinite(adam.learning_rate))
    throw ConfigError("--encoder-rate must be finite and > 0");
  if (kl_warmup < 0) throw ConfigError("--kl-warmup must be >= 0 iterations");
  if (!(kl_beta0 > 0 && kl_beta0 <= 1))
    throw ConfigError("--kl-beta0 must be in (0, 1] (beta = 0 collapses q to a point)");
  if (!(free_bits >= 0) || !std::isfinite(free_bits))
    throw ConfigError("--free-bits must be finite and >= 0 nats per latent dimension and bin");
  if (initial_iterations < 1) throw ConfigError("the amortised fit needs >= 1 initial iteration");
}

Eigen::ArrayXXd encoder_input(const Eigen::ArrayXXd& counts, const std::vector<int>& rows) {
  if (rows.empty()) return counts;
  Eigen::ArrayXXd input(static_cast<Eigen::Index>(rows.size()), counts.cols());
  for (std::size_t r = 0; r < rows.size(); ++r)
    input.row(static_cast<Eigen::Index>(r)) = counts.row(rows[r]);
  return input;
}

namespace {

using Clock = std::chrono::steady_clock;

class AmortisedFit final : private FitProgress {
 public:
  AmortisedFit(const std::vector<TrialCounts>& trials, const FitSettings& settings,
               const AmortisedSettings& amortised, Communicator& comm,
               const std::vector<FitCallback*>& callbacks)
      : trials_(trials),
        settings_(settings),
        amortised_(amortised),
        comm_(comm),
        callbacks_(callbacks) {}

  AmortisedOutcome run(const FitState* resume);

 private:
  // FitProgress: the fit after `completed_` iterations.
  int iteration() const override { return completed_; }
  bool last() const override { return last_; }
  FitState state() const override;
  void resume(const FitState& state);
  int dim() const { return settings_.latents; }
  int neurons() const { return static_cast<int>(trials_.front().counts.rows()); }
  void phase(FitPhase which, Clock::time_point since) {
    const double seconds = std::chrono::duration<double>(Clock::now() - since).count();
    for (FitCallback* callback : callbacks_) callback->on_phase(which, seconds);
  }
  void initialise();
  void refresh_models();
  void build_history_basis();
  HistoryTerms history_terms_of(std::size_t k) const {
    if (history_offsets_.empty()) return {};
    return {&history_offsets_[k], &history_features_[k]};
  }
  std::vector<std::size_t> members_of_batch(int iteration) const;
  // Encodes the members at the current globals and reduces: stats, gradient, diagnostics.
  struct Pass {
    GlobalStatistics stats;
    Eigen::VectorXd gradient;             // of ELBO_beta
    Eigen::VectorXd likelihood_gradient;  // --free-bits: of ELBO_0 = E_q[ell] (else empty)
    double annealed_elbo = 0.0;
    double kl = 0.0;  // sum over the trials of KL(q(z) || p(z)) of the chain, = E_q[ell] - ELBO
    CollapseSums collapse;
  };
  Pass pass(const std::vector<std::size_t>& members, int iteration, double beta);
  bool iterate(int iteration);
  void fail(const std::string& message);
  void finish();

  const std::vector<TrialCounts>& trials_;
  const FitSettings& settings_;
  const AmortisedSettings& amortised_;
  Communicator& comm_;
  const std::vector<FitCallback*>& callbacks_;
  ModelLayout layout_;
  AmortisedOutcome out_;
  std::unique_ptr<ObservationModel> model_;
  std::vector<GaussianObservation> continuous_models_;
  std::unique_ptr<FamilyEvaluator> evaluator_;
  std::unique_ptr<Estimator> estimator_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<double> base_measures_;
  std::vector<Eigen::ArrayXXd> inputs_;  // encoder inputs per local trial
  // --history: per local trial, its features f_t (F x T, fixed) and its offset B f_t under the
  // current globals (refresh_models); empty without history terms.
  std::vector<Eigen::MatrixXd> history_features_;
  std::vector<Eigen::ArrayXXd> history_offsets_;
  int population_ = 0;
  std::size_t stats_size_ = 0;
  int completed_ = 0;
  bool last_ = false;
};

void AmortisedFit::refresh_models() {
  model_ = settings_.model.spike_observation(out_.fit.globals.spike_parameters);
  continuous_models_.clear();
  for (const ContinuousReadout& modality : out_.fit.globals.continuous)
    continuous_models_.emplace_back(modality.variances);
  if (out_.fit.globals.history.active()) {
    history_offsets_.resize(trials_.size());
    for (std::size_t k = 0; k < trials_.size(); ++k)
      history_offsets_[k] = out_.fit.globals.history.offset(history_features_[k]);
  }
}

// --history: the basis the initialisation's fit_variational builds (the same function of the
// same trials, so the same bits), and each trial's features.
void AmortisedFit::build_history_basis() {
  layout_.history = training_history_basis(trials_, settings_.history, comm_);
  layout_.history_prior_precision = settings_.history.prior_precision;
  for (const TrialCounts& trial : trials_)
    history_features_.push_back(layout_.history.features(trial.counts));
}

// The iterative engine's start (PCA latents, GLM readout, dynamics) and its first full-batch
// iterations give the decoder; the encoder starts from random weights keyed by the seed.
void AmortisedFit::initialise() {
  const auto start = Clock::now();
  FitSettings first = settings_;
  first.iterations = amortised_.initial_iterations;
  first.minibatch.size = 0;
  first.tolerance = 0.0;
  FitOutcome initial = fit_variational(trials_, first, comm_);
  if (initial.termination == Termination::kNumericalFailure)
    throw NumericalError("the amortised fit's initialisation failed: " + initial.message);
  out_.fit.globals = std::move(initial.globals);
  refresh_models();
  phase(FitPhase::kInitialisation, start);
}

std::vector<std::size_t> AmortisedFit::members_of_batch(int iteration) const {
  std::vector<std::size_t> members;
  if (settings_.minibatch.full_batch(population_)) {
    for (std::size_t k = 0; k < trials_.size(); ++k) members.push_back(k);
    return members;
  }
  const std::vector<int> batch =
      draw_minibatch(settings_.minibatch.seed, static_cast<std::uint64_t>(iteration - 1),
                     population_, settings_.minibatch.size);
  for (std::size_t k = 0; k < trials_.size(); ++k)
    if (std::binary_search(batch.begin(), batch.end(), trials_[k].position)) members.push_back(k);
  return members;
}

AmortisedFit::Pass AmortisedFit::pass(const std::vector<std::size_t>& members, int iteration,
                                      double beta) {
  const auto local_start = Clock::now();
  // The buffer: [stats | gradient | ELBO_beta | KL | collapse sums | (free bits) ELBO_0's gradient]
  const Eigen::Index weights = out_.encoder.parameters().size();
  const bool free_bits = amortised_.free_bits > 0;
  const std::size_t collapse_size = 3 * static_cast<std::size_t>(dim()) + 1;
  const std::size_t at_kl = stats_size_ + static_cast<std::size_t>(weights) + 1;
  const std::size_t at_free = at_kl + 1 + collapse_size;
  const std::size_t total = at_free + (free_bits ? static_cast<std::size_t>(weights) : 0);
  ReproducibleSum sum(total);
  std::vector<double> buffer(total), packed;
  const GlobalState& globals = out_.fit.globals;
  const LatentPrior latent_prior = LatentPrior::from(globals);
  const ReadoutKernels spike_kernels(globals.spikes);
  std::vector<std::unique_ptr<ReadoutKernels>> continuous_kernels;
  for (const ContinuousReadout& modality : globals.continuous)
    continuous_kernels.push_back(std::make_unique<ReadoutKernels>(modality.readout));
  GlobalStatistics trial_stats = GlobalStatistics::zero(dim(), neurons(), layout_);
  Eigen::VectorXd gradient(weights), likelihood_gradient(free_bits ? weights : 0);
  EncoderPass encoder_pass;
  for (std::size_t k : members) {
    const TrialCounts& trial = trials_[k];
    GaussMarkovState& state = out_.fit.posteriors[k];
    trial_stats.clear();
    gradient.setZero();
    likelihood_gradient.setZero();
    double annealed = 0.0, kl = 0.0;
    CollapseSums collapse = CollapseSums::zero(dim());
    estimator_->begin(RandomCounter{static_cast<std::uint64_t>(iteration),
                                    static_cast<std::uint64_t>(trial.position), 0});
    try {
      const PriorBlocks prior =
          latent_prior.blocks(static_cast<int>(trial.counts.cols()), trial.inputs_or_null());
      const HistoryTerms history = history_terms_of(k);
      std::vector<ModalityView> views{ModalityView{model_.get(), &spike_kernels, &trial.counts,
                                                   base_measures_[k], nullptr, history.offset}};
      for (std::size_t m = 0; m < continuous_kernels.size(); ++m)
        views.push_back(ModalityView{&continuous_models_[m], continuous_kernels[m].get(),
                                     &trial.continuous[m], 0.0});
      const LocalProblem problem{prior, views, *evaluator_, *estimator_};
      annealed = amortised_trial(problem, out_.encoder, inputs_[k], beta, state, gradient,
                                 encoder_pass, free_bits ? &likelihood_gradient : nullptr);
      if (!std::isfinite(annealed) || !std::isfinite(state.elbo))
        throw NumericalError("its ELBO is not finite");
      kl = state.expected_log_lik - state.elbo;
      collapse = collapse_sums(prior, state.moments);
      trial_stats.add_trial(state.moments, globals.spikes, *model_, trial.counts, state.elbo,
                            trial.inputs_or_null(), nullptr, history);
      for (std::size_t m = 0; m < trial.continuous.size(); ++m)
        trial_stats.add_continuous(m, trial.continuous[m], state.moments);
      trial_stats.local_iterations = 1.0;
    } catch (const std::exception& error) {
      std::cerr << "spikevi: rank " << comm_.rank() << ": trial " << trial.index
                << ": the encoder's posterior failed: " << error.what() << std::endl;
      trial_stats.clear();
      trial_stats.failed_trials = 1.0;
      gradient.setZero();
      likelihood_gradient.setZero();
      annealed = kl = 0.0;
      collapse = CollapseSums::zero(dim());
    }
    trial_stats.pack_into(packed);
    std::copy(packed.begin(), packed.end(), buffer.begin());
    std::copy(gradient.data(), gradient.data() + weights, buffer.begin() + stats_size_);
    buffer[stats_size_ + weights] = annealed;
    buffer[at_kl] = kl;
    collapse.pack_into(buffer.data() + at_kl + 1);
    std::copy(likelihood_gradient.data(), likelihood_gradient.data() + likelihood_gradient.size(),
              buffer.begin() + static_cast<std::ptrdiff_t>(at_free));
    sum.add(buffer);
  }
  bool stop = false;
  for (FitCallback* callback : callbacks_) stop = callback->stop_requested() || stop;
  if (stop) {
    trial_stats.clear();
    trial_stats.stop_requests = 1.0;
    trial_stats.pack_into(packed);
    std::fill(buffer.begin(), buffer.end(), 0.0);
    std::copy(packed.begin(), packed.end(), buffer.begin());
    sum.add(buffer);
  }
  phase(FitPhase::kLocal, local_start);
  const auto reduce_start = Clock::now();
  sum.allreduce(comm_);
  phase(FitPhase::kAllreduce, reduce_start);
  const std::vector<double> values = sum.values();
  Pass result{GlobalStatistics::zero(dim(), neurons(), layout_),
              Eigen::VectorXd(weights),
              Eigen::VectorXd(),
              0.0,
              0.0,
              CollapseSums::zero(dim())};
  result.stats.unpack(std::span<const double>(values.data(), stats_size_));
  result.gradient = Eigen::Map<const Eigen::VectorXd>(values.data() + stats_size_, weights);
  if (free_bits)
    result.likelihood_gradient =
        Eigen::Map<const Eigen::VectorXd>(values.data() + at_free, weights);
  result.annealed_elbo = values[stats_size_ + weights];
  result.kl = values[at_kl];
  result.collapse = CollapseSums::unpack(values.data() + at_kl + 1, dim());
  return result;
}

void AmortisedFit::fail(const std::string& message) {
  out_.fit.termination = Termination::kNumericalFailure;
  out_.fit.message = message;
  last_ = true;
  for (FitCallback* callback : callbacks_) callback->on_failure(message, *this);
}

bool AmortisedFit::iterate(int iteration) {
  const auto iteration_start = Clock::now();
  const double scheduled = amortised_.beta(iteration);
  const Pass result = pass(members_of_batch(iteration), iteration, scheduled);
  if (result.stats.failed_trials > 0 || !std::isfinite(result.stats.elbo_sum)) {
    fail("the encoder's posterior failed on " +
         std::to_string(static_cast<long>(result.stats.failed_trials)) + " trial(s) at iteration " +
         std::to_string(iteration) +
         " (each rank printed its reasons); the fit keeps the state after iteration " +
         std::to_string(iteration - 1));
    return false;
  }
  const double scale = statistics_scale(population_, static_cast<int>(result.stats.trials));
  const double rho = std::pow(iteration - 1 + settings_.minibatch.tau, -settings_.minibatch.kappa);
  IterationRecord record;
  record.iteration = iteration;
  record.elbo = scale * result.stats.elbo_sum + out_.fit.globals.global_terms();
  record.elbo_per_spike = record.elbo / std::max(scale * result.stats.spike_count, 1.0);
  record.batch_trials = static_cast<int>(result.stats.trials);
  record.local_iterations = 1.0;
  record.rho = rho;
  record.relative_change = out_.fit.trace.empty()
                               ? std::numeric_limits<double>::quiet_NaN()
                               : (record.elbo - out_.fit.trace.back().elbo) / std::abs(record.elbo);

  // The same updates on every rank from the same reduced numbers. --free-bits (one group):
  // the encoder ascends E_q[ell] - beta max(D lambda, KL per bin) bins, so the KL's weight is
  // 0 in an iteration whose batch KL per bin is below D lambda.
  const double kl_per_bin = result.kl / std::max(result.collapse.bins, 1.0);
  const bool kl_free = amortised_.free_bits > 0 && kl_per_bin < dim() * amortised_.free_bits;
  const double beta = kl_free ? 0.0 : scheduled;
  const auto global_start = Clock::now();
  const Eigen::VectorXd ascent = scale * (kl_free ? result.likelihood_gradient : result.gradient);
  const Eigen::ArrayXXd step =
      out_.encoder_moments.step(ascent.array(), amortised_.adam, amortised_.adam.learning_rate);
  const GlobalState globals_before = out_.fit.globals;
  try {
    checked_global_step(out_.fit.globals, result.stats, GlobalStepSize{rho, scale},
                        Eigen::VectorXd::Ones(neurons()), optimizer_);
  } catch (const NumericalError& error) {
    out_.fit.globals = globals_before;
    fail(std::string("the global step after iteration ") + std::to_string(iteration) +
         " failed: " + error.what());
    return false;
  }
  out_.encoder.set_parameters(out_.encoder.parameters() + step.matrix());
  refresh_models();
  phase(FitPhase::kGlobal, global_start);

  record.seconds = std::chrono::duration<double>(Clock::now() - iteration_start).count();
  out_.fit.trace.push_back(record);
  out_.beta.push_back(beta);
  out_.kl_per_bin.push_back(kl_per_bin);
  const Eigen::VectorXd kl = result.collapse.kl_per_dimension();
  out_.kl_per_dimension.conservativeResize(iteration, dim());
  out_.kl_per_dimension.row(iteration - 1) = kl.transpose();
  out_.active_units.push_back(result.collapse.active_units());
  const bool stop = result.stats.stop_requests > 0;
  last_ = stop || iteration == settings_.iterations;
  if (stop) {
    out_.fit.termination = Termination::kStopped;
    out_.fit.message = "stopped on request after iteration " + std::to_string(iteration) +
                       " (the amortised fit writes no checkpoint to continue from)";
  } else if (last_) {
    out_.fit.termination = Termination::kIterationLimit;
    out_.fit.message = "reached the iteration limit (" + std::to_string(iteration) + ")";
  }
  completed_ = iteration;
  for (FitCallback* callback : callbacks_) callback->on_iteration(record, *this);
  if (amortised_.on_diagnostics)
    amortised_.on_diagnostics(iteration, beta, kl, out_.active_units.back());
  return !last_;
}

// The encoder's q of every trial at the final state (beta = 1): posteriors, the exact
// objective and the final collapse diagnostics.
void AmortisedFit::finish() {
  if (out_.fit.termination == Termination::kIterationLimit) {
    std::vector<std::size_t> all(trials_.size());
    for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
    const Pass result = pass(all, settings_.iterations + 1, 1.0);
    if (result.stats.failed_trials > 0 || !std::isfinite(result.stats.elbo_sum)) {
      fail("the final pass of the encoder over all trials failed");
    } else {
      out_.fit.elbo = result.stats.elbo_sum + out_.fit.globals.global_terms();
      out_.fit.spike_count = result.stats.spike_count;
      out_.final_kl_per_dimension = result.collapse.kl_per_dimension();
      out_.final_mean_variance = result.collapse.mean_variance();
      out_.final_active_units = result.collapse.active_units();
    }
  }
  if (out_.fit.termination != Termination::kIterationLimit)
    out_.fit.elbo = out_.fit.trace.empty() ? std::numeric_limits<double>::quiet_NaN()
                                           : out_.fit.trace.back().elbo;
  try {
    out_.fit.evidence_laplace = out_.fit.elbo + out_.fit.globals.laplace_correction();
  } catch (const NumericalError&) {
    out_.fit.evidence_laplace = std::numeric_limits<double>::quiet_NaN();
  }
  for (FitCallback* callback : callbacks_) callback->on_end(out_.fit);
}

AmortisedOutcome AmortisedFit::run(const FitState* resume_from) {
  amortised_.validate();
  if (trials_.empty()) throw ConfigError("fit: no trials to fit on this rank");
  if (settings_.model.family != FamilyKind::kGaussMarkov)
    throw ConfigError("--inference amortised needs --family gauss-markov (its q is the chain)");
  if (settings_.model.optimizer != OptimizerKind::kNatural)
    throw ConfigError(
        "--inference amortised trains the encoder by Adam and the decoder by the "
        "natural-gradient global step: use it without --optimizer adam");
  for (int row : amortised_.encoder_rows)
    if (row < 0 || row >= neurons())
      throw ConfigError("the encoder's input neuron " + std::to_string(row) + " is not in /counts");
  double local_trials = static_cast<double>(trials_.size());
  comm_.allreduce_sum(std::span<double>(&local_trials, 1));
  population_ = static_cast<int>(local_trials);
  settings_.minibatch.validate(population_);

  layout_.row_parameters = settings_.model.spikes->row_parameters();
  layout_.continuous_names = settings_.continuous_names;
  layout_.inputs = static_cast<int>(trials_.front().inputs.rows());
  for (const Eigen::ArrayXXd& values : trials_.front().continuous)
    layout_.continuous_channels.push_back(static_cast<int>(values.rows()));
  if (settings_.history.active()) build_history_basis();
  stats_size_ = GlobalStatistics::zero(dim(), neurons(), layout_).pack().size();
  evaluator_ = make_family_evaluator(FamilyKind::kGaussMarkov);
  estimator_ = make_estimator(settings_.model);
  optimizer_ = make_optimizer(settings_.model, dim(), neurons(),
                              static_cast<int>(layout_.row_parameters.size()));
  out_.input_neurons = amortised_.encoder_rows;
  if (out_.input_neurons.empty())
    for (int n = 0; n < neurons(); ++n) out_.input_neurons.push_back(n);
  for (const TrialCounts& trial : trials_)
    inputs_.push_back(encoder_input(trial.counts, amortised_.encoder_rows));
  const EncoderShape shape{.inputs = static_cast<int>(inputs_.front().rows()),
                           .hidden = amortised_.hidden,
                           .window = amortised_.window,
                           .latents = dim()};
  out_.encoder = SiteEncoder(shape, settings_.minibatch.seed);
  out_.fit.posteriors.assign(trials_.size(), GaussMarkovState{});
  out_.fit.termination = Termination::kIterationLimit;
  if (resume_from) {
    const auto start = Clock::now();
    resume(*resume_from);
    phase(FitPhase::kInitialisation, start);
  } else {
    initialise();
  }
  for (const TrialCounts& trial : trials_)
    base_measures_.push_back(model_->log_base_measure(trial.counts));
  for (int iteration = completed_ + 1; iteration <= settings_.iterations && !last_; ++iteration)
    if (!iterate(iteration)) break;
  finish();
  return std::move(out_);
}

// The state at this boundary: what resume() needs, in the checkpoint's FitState.
FitState AmortisedFit::state() const {
  FitState s;
  s.iteration = completed_;
  s.globals = out_.fit.globals;
  s.statistics = GlobalStatistics::zero(dim(), neurons(), layout_).pack();
  s.row_damping = Eigen::VectorXd::Ones(neurons());
  s.optimizer_state = optimizer_->state();
  const Eigen::Index weights = out_.encoder.parameters().size();
  s.optimizer_state["encoder_weights"] = out_.encoder.parameters().array();
  const bool moments = out_.encoder_moments.first.size() == weights;
  s.optimizer_state["encoder_adam_first"] =
      moments ? out_.encoder_moments.first : Eigen::ArrayXXd::Zero(weights, 1);
  s.optimizer_state["encoder_adam_second"] =
      moments ? out_.encoder_moments.second : Eigen::ArrayXXd::Zero(weights, 1);
  s.optimizer_state["encoder_adam_steps"] =
      Eigen::ArrayXXd::Constant(1, 1, out_.encoder_moments.steps);
  Eigen::ArrayXXd diagnostics = Eigen::ArrayXXd::Zero(settings_.iterations, dim() + 3);
  for (int i = 0; i < completed_ && i < settings_.iterations; ++i) {
    diagnostics(i, 0) = out_.beta[static_cast<std::size_t>(i)];
    diagnostics(i, 1) = out_.active_units[static_cast<std::size_t>(i)];
    diagnostics(i, 2) = out_.kl_per_bin[static_cast<std::size_t>(i)];
    diagnostics.row(i).tail(dim()) = out_.kl_per_dimension.row(i).array();
  }
  s.optimizer_state["encoder_diagnostics"] = diagnostics;
  s.previous_elbo = out_.fit.trace.empty() ? 0.0 : out_.fit.trace.back().elbo;
  s.trace = out_.fit.trace;
  for (std::size_t k = 0; k < trials_.size(); ++k) {
    const auto bins = static_cast<int>(trials_[k].counts.cols());
    const Sites& sites = out_.fit.posteriors[k].sites;
    s.sites.push_back(sites.bins() == bins ? sites : Sites::zero(dim(), bins));
  }
  return s;
}

// Continues from a checkpoint: globals (priors from this fit's settings, as the iterative
// fit does), encoder, Adam's moments and the diagnostics so far.
void AmortisedFit::resume(const FitState& state) {
  const auto entry = [&](const char* name) -> const Eigen::ArrayXXd& {
    const auto found = state.optimizer_state.find(name);
    if (found == state.optimizer_state.end())
      throw InputError(std::string("checkpoint: no amortised state ") + name +
                       " (not written by an amortised fit)");
    return found->second;
  };
  out_.fit.globals = state.globals;
  const GlobalState priors = make_prior_state(dim(), neurons(), settings_.priors, layout_);
  out_.fit.globals.continuous_prior = priors.continuous_prior;
  out_.fit.globals.noise_prior = priors.noise_prior;
  out_.fit.globals.history.basis = priors.history.basis;  // recomputed from the data
  out_.fit.globals.history.prior_precision = priors.history.prior_precision;
  for (std::size_t p = 0; p < out_.fit.globals.spike_parameters.count(); ++p)
    out_.fit.globals.spike_parameters.parameters[p].spec =
        priors.spike_parameters.parameters[p].spec;
  refresh_models();
  out_.encoder.set_parameters(entry("encoder_weights").matrix().reshaped());
  out_.encoder_moments.steps = static_cast<int>(entry("encoder_adam_steps")(0, 0));
  if (out_.encoder_moments.steps > 0) {
    out_.encoder_moments.first = entry("encoder_adam_first");
    out_.encoder_moments.second = entry("encoder_adam_second");
  }
  const Eigen::ArrayXXd& diagnostics = entry("encoder_diagnostics");
  if (diagnostics.rows() < state.iteration || diagnostics.cols() != dim() + 3)
    throw InputError("checkpoint: the amortised diagnostics do not cover its iterations");
  completed_ = state.iteration;
  out_.fit.trace = state.trace;
  out_.kl_per_dimension.resize(completed_, dim());
  for (int i = 0; i < completed_; ++i) {
    out_.beta.push_back(diagnostics(i, 0));
    out_.active_units.push_back(static_cast<int>(diagnostics(i, 1)));
    out_.kl_per_bin.push_back(diagnostics(i, 2));
    out_.kl_per_dimension.row(i) = diagnostics.row(i).tail(dim()).matrix();
  }
  if (completed_ >= settings_.iterations) last_ = true;
}

}  // namespace

AmortisedOutcome fit_amortised(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                               const AmortisedSettings& amortised, Communicator& comm,
                               const std::vector<FitCallback*>& callbacks, const FitState* resume) {
  return AmortisedFit(trials, settings, amortised, comm, callbacks).run(resume);
}

OptimizerState amortised_state_template(const AmortisedSettings& amortised, int inputs, int latents,
                                        int iterations) {
  const Eigen::Index weights = EncoderShape{.inputs = inputs,
                                            .hidden = amortised.hidden,
                                            .window = amortised.window,
                                            .latents = latents}
                                   .parameter_count();
  return {{"encoder_weights", Eigen::ArrayXXd::Zero(weights, 1)},
          {"encoder_adam_first", Eigen::ArrayXXd::Zero(weights, 1)},
          {"encoder_adam_second", Eigen::ArrayXXd::Zero(weights, 1)},
          {"encoder_adam_steps", Eigen::ArrayXXd::Zero(1, 1)},
          {"encoder_diagnostics", Eigen::ArrayXXd::Zero(iterations, latents + 3)}};
}

}  // namespace spikevi
