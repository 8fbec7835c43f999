#include "spikevi/variational_fit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "spikevi/error.hpp"
#include "spikevi/global_statistics.hpp"
#include "spikevi/initialisation.hpp"

namespace spikevi {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The spike modality of one trial under the given readout kernels.
std::vector<ModalityView> spike_modality(const PoissonObservation& model,
                                         const ReadoutKernels& kernels, const TrialCounts& trial) {
  return {ModalityView{&model, &kernels, &trial.counts, trial.log_base_measure}};
}

// Per-row sum over trials (and ranks) of E_q[log p(x_n | w, z)] at a candidate readout: the
// objective the readout step backtracks on (DESIGN.md §3, full batch).
Eigen::VectorXd readout_objective(const Readout& candidate, const std::vector<TrialCounts>& trials,
                                  const std::vector<GaussMarkovState>& states,
                                  const PoissonObservation& model, Communicator& comm) {
  const ReadoutKernels kernels(candidate);
  LikelihoodWorkspace work;
  Eigen::VectorXd per_row = Eigen::VectorXd::Zero(candidate.rows());
  for (std::size_t k = 0; k < trials.size(); ++k) {
    kernels.eta_moments(states[k].moments, work.mu, work.s2);
    model.expected_log_likelihood(trials[k].counts, work.mu, work.s2, work.ell, work.g, work.G);
    per_row += work.ell.rowwise().sum().matrix();
  }
  comm.allreduce_sum(std::span<double>(per_row.data(), per_row.size()));
  return per_row;
}

// Sums this rank's statistics and allreduces them: the one collective of an iteration.
GlobalStatistics reduce_statistics(const GlobalState& globals,
                                   const std::vector<TrialCounts>& trials,
                                   const std::vector<GaussianMoments>& moments,
                                   const std::vector<double>& elbos,
                                   const PoissonObservation& model, Communicator& comm) {
  GlobalStatistics stats = GlobalStatistics::zero(globals.dim(), globals.spikes.rows());
  for (std::size_t k = 0; k < trials.size(); ++k)
    stats.add_trial(moments[k], globals.spikes, model, trials[k].counts, elbos[k]);
  std::vector<double> buffer = stats.pack();
  comm.allreduce_sum(buffer);
  stats.unpack(buffer);
  return stats;
}

// Full-batch global step (rho = 1): conjugate MNIW update, M-step for (mu0, Sigma0), and one
// backtracked natural-gradient step per readout row (DESIGN.md §3).
void global_step(GlobalState& globals, const GlobalStatistics& stats,
                 const std::vector<TrialCounts>& trials,
                 const std::vector<GaussMarkovState>& states, const PoissonObservation& model,
                 Communicator& comm, int readout_steps) {
  globals.dynamics = MatrixNormalInverseWishart::blend(globals.dynamics, globals.dynamics_prior,
                                                       stats.transitions, 1.0, 1.0);
  globals.mu0 = stats.initial_mean_sum / stats.trials;
  const Eigen::MatrixXd second = stats.initial_second_moment_sum / stats.trials;
  globals.Sigma0 = second - globals.mu0 * globals.mu0.transpose();
  globals.Sigma0 = 0.5 * (globals.Sigma0 + globals.Sigma0.transpose()).eval();

  const ReadoutObjective objective = [&](const Readout& candidate) {
    return readout_objective(candidate, trials, states, model, comm);
  };
  ReadoutStatistics readout_stats = stats.spikes;
  for (int step = 0; step < readout_steps; ++step) {
    if (step > 0) {  // later Newton steps need the statistics at the moved readout
      readout_stats = ReadoutStatistics::zero(globals.spikes.rows(), globals.dim());
      for (std::size_t k = 0; k < trials.size(); ++k)
        readout_stats.add_trial(globals.spikes, model, trials[k].counts, states[k].moments);
      comm.allreduce_sum(
          std::span<double>(readout_stats.gradient.data(), readout_stats.gradient.size()));
      comm.allreduce_sum(
          std::span<double>(readout_stats.hessian.data(), readout_stats.hessian.size()));
    }
    globals.spikes = readout_natural_gradient_step(globals.spikes, globals.spikes_prior,
                                                   readout_stats, 1.0, 1.0, objective);
  }
}

// Local steps of every trial under the current globals, warm-started from their sites.
// Returns the largest number of CVI iterations any trial needed.
int local_steps(const GlobalState& globals, const std::vector<TrialCounts>& trials,
                std::vector<GaussMarkovState>& states, const PoissonObservation& model,
                const LocalStepSettings& settings) {
  const LatentPrior latent_prior = LatentPrior::from(globals);
  const ReadoutKernels kernels(globals.spikes);
  GaussMarkovEvaluator evaluator;
  int most_iterations = 0;
  for (std::size_t k = 0; k < trials.size(); ++k) {
    const int bins = static_cast<int>(trials[k].counts.cols());
    const PriorBlocks prior =
        prior_blocks(latent_prior.dynamics, latent_prior.mu0, latent_prior.Sigma0, bins);
    const auto modalities = spike_modality(model, kernels, trials[k]);
    GaussMarkovState& state = states[k];
    const Sites warm_sites = state.sites;
    evaluator.evaluate(prior, modalities, warm_sites, state);
    const LocalStepReport report =
        gauss_markov_local_step(prior, modalities, state, evaluator, settings);
    most_iterations = std::max(most_iterations, report.iterations);
  }
  return most_iterations;
}

std::vector<GaussianMoments> moments_of(const std::vector<GaussMarkovState>& states) {
  std::vector<GaussianMoments> moments;
  moments.reserve(states.size());
  for (const GaussMarkovState& state : states) moments.push_back(state.moments);
  return moments;
}

// PCA latents, then a global step from them; the initial sites are the CVI targets at the
// PCA q(z), so the first local step starts near the data.
GlobalState initialise(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                       std::vector<GaussMarkovState>& states, const PoissonObservation& model,
                       Communicator& comm) {
  const int neurons = static_cast<int>(trials.front().counts.rows());
  GlobalState globals = make_prior_state(settings.latents, neurons, settings.priors);
  const std::vector<GaussianMoments> start =
      pca_latents(trials, settings.latents, settings.initialisation, comm);

  Eigen::VectorXd mean_counts = Eigen::VectorXd::Zero(neurons + 1);
  for (const TrialCounts& trial : trials) {
    mean_counts.head(neurons) += trial.counts.rowwise().sum().matrix();
    mean_counts(neurons) += static_cast<double>(trial.counts.cols());
  }
  comm.allreduce_sum(std::span<double>(mean_counts.data(), mean_counts.size()));
  globals.spikes.d =
      (mean_counts.head(neurons) / mean_counts(neurons)).array().max(1e-3).log().matrix();

  states.assign(trials.size(), GaussMarkovState{});
  for (std::size_t k = 0; k < trials.size(); ++k) states[k].moments = start[k];
  const std::vector<double> no_elbo(trials.size(), 0.0);
  const GlobalStatistics stats = reduce_statistics(globals, trials, start, no_elbo, model, comm);
  global_step(globals, stats, trials, states, model, comm,
              settings.initialisation.readout_newton_steps);

  const ReadoutKernels kernels(globals.spikes);
  LikelihoodWorkspace work;
  for (std::size_t k = 0; k < trials.size(); ++k)
    expected_log_likelihood(spike_modality(model, kernels, trials[k]), start[k], work,
                            &states[k].sites);
  return globals;
}

void validate(const std::vector<TrialCounts>& trials, const FitSettings& settings) {
  if (trials.empty()) throw ConfigError("fit: no trials to fit on this rank");
  if (settings.latents < 1) throw ConfigError("--latents must be >= 1");
  if (settings.latents >= trials.front().counts.rows())
    throw ConfigError("--latents (" + std::to_string(settings.latents) +
                      ") must be smaller than the number of neurons (" +
                      std::to_string(trials.front().counts.rows()) + ")");
}

}  // namespace

std::vector<TrialCounts> make_trial_counts(const Dataset& data,
                                           const std::vector<int>& trial_indices,
                                           const std::vector<int>& rows) {
  const PoissonObservation model;
  std::vector<TrialCounts> trials;
  trials.reserve(trial_indices.size());
  for (int index : trial_indices) {
    const Eigen::MatrixXd& all_rows = data.trial_counts(index);
    TrialCounts trial;
    trial.index = index;
    if (rows.empty()) {
      trial.counts = all_rows.array();
    } else {
      trial.counts.resize(static_cast<Eigen::Index>(rows.size()), all_rows.cols());
      for (std::size_t r = 0; r < rows.size(); ++r)
        trial.counts.row(static_cast<Eigen::Index>(r)) = all_rows.row(rows[r]).array();
    }
    trial.log_base_measure = model.log_base_measure(trial.counts);
    trials.push_back(std::move(trial));
  }
  return trials;
}

LatentPrior LatentPrior::from(const GlobalState& globals) {
  return LatentPrior{globals.dynamics.expectations(), globals.mu0, globals.Sigma0};
}

FitOutcome fit_variational(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                           Communicator& comm, const ProgressCallback& progress) {
  validate(trials, settings);
  const PoissonObservation model;
  FitOutcome outcome;
  outcome.globals = initialise(trials, settings, outcome.posteriors, model, comm);

  double previous = std::numeric_limits<double>::quiet_NaN();
  GlobalStatistics stats;
  for (int iteration = 1; iteration <= settings.iterations; ++iteration) {
    const auto start = Clock::now();
    if (iteration > 1)
      global_step(outcome.globals, stats, trials, outcome.posteriors, model, comm, 1);
    IterationRecord record;
    record.iteration = iteration;
    double most_local_steps =
        local_steps(outcome.globals, trials, outcome.posteriors, model, settings.local);
    comm.allreduce_max(std::span<double>(&most_local_steps, 1));
    record.local_iterations = static_cast<int>(most_local_steps);

    std::vector<double> elbos;
    for (const GaussMarkovState& state : outcome.posteriors) elbos.push_back(state.elbo);
    stats = reduce_statistics(outcome.globals, trials, moments_of(outcome.posteriors), elbos, model,
                              comm);
    record.elbo = stats.elbo_sum + outcome.globals.global_terms();
    record.elbo_per_spike = record.elbo / std::max(stats.spike_count, 1.0);
    record.relative_change = (record.elbo - previous) / std::abs(record.elbo);
    record.seconds = seconds_since(start);
    if (!std::isfinite(record.elbo))
      throw NumericalError("fit: the ELBO became non-finite at iteration " +
                           std::to_string(iteration));
    outcome.trace.push_back(record);
    outcome.spike_count = stats.spike_count;
    if (progress) progress(record);
    if (settings.tolerance > 0 && std::abs(record.relative_change) < settings.tolerance) {
      outcome.termination = Termination::kConverged;
      break;
    }
    previous = record.elbo;
  }
  outcome.evidence_laplace = outcome.trace.back().elbo + outcome.globals.laplace_correction();
  return outcome;
}

std::vector<GaussMarkovState> infer_latents(const LatentPrior& latent_prior, const Readout& readout,
                                            const std::vector<TrialCounts>& trials,
                                            const LocalStepSettings& settings) {
  const PoissonObservation model;
  const ReadoutKernels kernels(readout);
  GaussMarkovEvaluator evaluator;
  std::vector<GaussMarkovState> states(trials.size());
  for (std::size_t k = 0; k < trials.size(); ++k) {
    const int bins = static_cast<int>(trials[k].counts.cols());
    const int dim = static_cast<int>(latent_prior.mu0.size());
    const PriorBlocks prior =
        prior_blocks(latent_prior.dynamics, latent_prior.mu0, latent_prior.Sigma0, bins);
    const auto modalities = spike_modality(model, kernels, trials[k]);
    evaluator.evaluate(prior, modalities, Sites::zero(dim, bins), states[k]);
    gauss_markov_local_step(prior, modalities, states[k], evaluator, settings);
  }
  return states;
}

}  // namespace spikevi
