// spikevi fit: read a data set, fit on its training trials, write FIT.h5.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/command.hpp"
#include "spikevi/io/checkpoint.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/model/gauge.hpp"
#include "spikevi/parallel/sharding.hpp"
#include "spikevi/driver/variational_fit.hpp"

namespace spikevi::cli {
namespace {

struct FitOptions {
  std::string data, out;
  std::string observation = "poisson", family = "gauss-markov", expectations, optimizer = "natural";
  bool ignore_continuous = false;
  double epochs = 0.0;  // > 0: sets the iteration count from passes over the data
  int checkpoint_every = 10;
  bool overwrite = false, quiet = false, restart = false;
  FitSettings settings;
};

// Exit status of a fit stopped by SIGTERM/SIGUSR1 after writing its checkpoint (EX_TEMPFAIL
// of sysexits.h: try again). Documented in the README; jobs/fit.slurm requeues on it.
constexpr int kStoppedBySignal = 75;

std::string checkpoint_path(const std::string& out) { return out + ".checkpoint.h5"; }

po::options_description fit_options(FitOptions& o) {
  FitSettings& s = o.settings;
  po::options_description options("Fit options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "input data set (HDF5, DATA_FORMAT.md)")
      ("out", po::value(&o.out)->required(), "results file to write (HDF5)")
      ("latents", po::value(&s.latents)->default_value(4), "number of latent dimensions D")
      ("observation", po::value(&o.observation)->default_value("poisson"),
       ("spike model: " + builtin_spike_models().choices() +
        " (negbin: negative binomial, per-neuron shapes learned; bernoulli: binary bins, logit "
        "link)").c_str())
      ("family", po::value(&o.family)->default_value("gauss-markov"),
       "variational family of each trial's latents: gauss-markov (structured) or mean-field")
      ("expectations", po::value(&o.expectations),
       "closed-form (Poisson only; the default there), quadrature (Gauss-Hermite; the "
       "default otherwise) or monte-carlo (reparameterized draws of the latent path)")
      ("quadrature-nodes", po::value(&s.model.quadrature_nodes)->default_value(20),
       "Gauss-Hermite nodes per expectation")
      ("samples", po::value(&s.model.samples)->default_value(16),
       "--expectations monte-carlo: draws per trial and local step")
      ("optimizer", po::value(&o.optimizer)->default_value("natural"),
       "natural: natural-gradient steps (CVI sites, VON readouts, Newton shapes); adam: Adam "
       "on the Euclidean gradients of the sites, readout rows and log shapes instead (a "
       "baseline; dynamics and Gaussian readouts keep their closed-form updates)")
      ("adam-local-rate", po::value(&s.model.local_adam.learning_rate)->default_value(0.05, "0.05"),
       "--optimizer adam: learning rate of the sites")
      ("adam-global-rate",
       po::value(&s.model.global_adam.learning_rate)->default_value(0.02, "0.02"),
       "--optimizer adam: learning rate of the readout rows and log shapes")
      ("ignore-continuous", po::bool_switch(&o.ignore_continuous),
       "fit the spikes only, even when the file has /continuous modalities")
      ("iterations", po::value(&s.iterations)->default_value(100), "maximum number of iterations")
      ("tolerance", po::value(&s.tolerance)->default_value(1e-6, "1e-6"),
       "stop when the relative ELBO change falls below this; 0 runs exactly --iterations")
      ("minibatch", po::value(&s.minibatch.size)->default_value(0),
       "trials per iteration (stochastic VI, statistics scaled by K/|B|); 0 = full batch "
       "(exact VB-EM)")
      ("step-tau", po::value(&s.minibatch.tau)->default_value(1.0),
       "minibatch step size rho_i = (i + tau)^-kappa: tau >= 1")
      ("step-kappa", po::value(&s.minibatch.kappa)->default_value(0.7, "0.7"),
       "minibatch step size rho_i = (i + tau)^-kappa: kappa in (0.5, 1]")
      ("epochs", po::value(&o.epochs)->default_value(0.0),
       "with --minibatch: run ceil(epochs K / |B|) iterations (replaces --iterations)")
      ("seed", po::value(&s.minibatch.seed)->default_value(1),
       "key of the counter-based random streams (minibatch choice, Monte Carlo draws); the "
       "full-batch closed-form Poisson fit is deterministic and draws nothing")
      ("local-tolerance", po::value(&s.local.tolerance)->default_value(1e-6, "1e-6"),
       "per-trial local step: stop when an accepted step gains less (nats)")
      ("local-max-iterations", po::value(&s.local.max_iterations)->default_value(100),
       "per-trial local step: most natural-gradient steps per iteration")
      ("prior-readout-precision", po::value(&s.priors.readout_weight_precision)->default_value(1.0),
       "prior precision pc of each loading c_n (c_n ~ N(0, I/pc))")
      ("prior-offset-precision", po::value(&s.priors.readout_offset_precision)->default_value(0.01),
       "prior precision pd of each log-rate offset d_n")
      ("prior-dynamics-variance", po::value(&s.priors.dynamics_column_variance)->default_value(10.0),
       "MNIW prior column variance v0 of [A b]")
      ("prior-process-noise", po::value(&s.priors.process_noise)->default_value(0.1, "0.1"),
       "MNIW prior mean of the process noise variance, E[Q] = q0 I")
      ("checkpoint-every", po::value(&o.checkpoint_every)->default_value(10),
       "write OUT.checkpoint.h5 every this many iterations (0: only at the end and on a "
       "signal); the previous one is kept as OUT.checkpoint.h5.prev")
      ("restart", po::bool_switch(&o.restart),
       "continue from the newest valid checkpoint of --out (an error if there is none); "
       "without --overwrite a fit that finds one continues from it anyway, and --overwrite "
       "alone starts afresh. --iterations counts from the fit's start")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out")
      ("quiet", po::bool_switch(&o.quiet), "no per-iteration progress lines");
  // clang-format on
  return options;
}

// The model options as settings (ConfigError naming a bad value).
void apply_model_options(FitOptions& o) {
  ModelSettings& model = o.settings.model;
  model.spikes = builtin_spike_models().get(o.observation);
  model.family = parse_family(o.family);
  model.expectations = o.expectations.empty() ? default_expectations(*model.spikes)
                                              : parse_expectations(o.expectations);
  model.seed = o.settings.minibatch.seed;
  model.optimizer = parse_optimizer(o.optimizer);
  if (!(model.local_adam.learning_rate > 0) || !(model.global_adam.learning_rate > 0))
    throw ConfigError("--adam-local-rate and --adam-global-rate must be > 0");
  model.validate();
}

void validate(const FitOptions& o) {
  const FitSettings& s = o.settings;
  if (s.latents < 1)
    throw ConfigError("--latents must be >= 1 (got " + std::to_string(s.latents) + ")");
  if (s.iterations < 1)
    throw ConfigError("--iterations must be >= 1 (got " + std::to_string(s.iterations) + ")");
  if (!(o.epochs >= 0) || !std::isfinite(o.epochs))
    throw ConfigError("--epochs must be finite and >= 0");
  if (o.epochs > 0 && s.minibatch.size <= 0)
    throw ConfigError("--epochs needs --minibatch (a full-batch iteration is one epoch)");
  if (o.data.empty()) throw ConfigError("--data must name the data set to fit");
  if (!(s.tolerance >= 0))
    throw ConfigError("--tolerance must be >= 0 (got " + std::to_string(s.tolerance) + ")");
  if (!(s.local.tolerance > 0)) throw ConfigError("--local-tolerance must be > 0");
  if (s.local.max_iterations < 1) throw ConfigError("--local-max-iterations must be >= 1");
  for (double p : {s.priors.readout_weight_precision, s.priors.readout_offset_precision,
                   s.priors.dynamics_column_variance, s.priors.process_noise})
    if (!(p > 0) || !std::isfinite(p)) throw ConfigError("prior settings must be finite and > 0");
  if (o.checkpoint_every < 0) throw ConfigError("--checkpoint-every must be >= 0");
  check_output_path("--out", o.out, true);  // the folder; an existing file is checked later
}

// What a checkpoint must share with the fit that continues it: the data and every setting
// that changes the iterations (not --iterations, --tolerance, output or printing).
CheckpointIdentity checkpoint_identity(const po::variables_map& values, const Dataset& metadata,
                                       const std::vector<int>& trials, const std::string& content,
                                       long inputs) {
  const std::map<std::string, std::string> options = option_values(values);
  CheckpointIdentity identity;
  for (const char* key : {"latents",
                          "observation",
                          "family",
                          "expectations",
                          "quadrature-nodes",
                          "samples",
                          "ignore-continuous",
                          "optimizer",
                          "adam-local-rate",
                          "adam-global-rate",
                          "minibatch",
                          "step-tau",
                          "step-kappa",
                          "seed",
                          "local-tolerance",
                          "local-max-iterations",
                          "prior-readout-precision",
                          "prior-offset-precision",
                          "prior-dynamics-variance",
                          "prior-process-noise"})
    if (options.count(key)) identity[key] = options.at(key);
  std::ostringstream data;
  data << metadata.trials << " trials x " << metadata.bins << " bins x " << metadata.neurons
       << " neurons, " << trials.size() << " training trials";
  identity["data"] = data.str();
  identity["data content"] = content;  // data_fingerprint: the counts themselves
  identity["known inputs"] = std::to_string(inputs);
  return identity;
}

// Reads only the block of the file that holds this rank's share of the training trials.
Dataset read_share(const std::string& path, const std::vector<int>& share_trials,
                   Communicator& comm) {
  ReadOptions options{.first_trial = share_trials.front(),
                      .trial_count = share_trials.back() - share_trials.front() + 1,
                      .read_truth = false,
                      .collective = true};
  return read_dataset_on_every_rank(path, options, comm);
}

void print_progress(const IterationRecord& r) {
  std::printf("iter %4d  elbo %.6e  elbo/spike %+.6f  rel.change %+.3e  %.3f s", r.iteration,
              r.elbo, r.elbo_per_spike, r.relative_change, r.seconds);
  if (r.rho < 1.0) std::printf("  batch %d  rho %.4f", r.batch_trials, r.rho);
  if (r.rejected_readout_rows > 0)
    std::printf("  (%d readout rows undone)", r.rejected_readout_rows);
  std::printf("\n");
  std::fflush(stdout);
}

// Under srun, an MPI without PMI support starts N singletons that each think they are alone.
void check_slurm_tasks(const Communicator& comm) {
  const char* tasks = std::getenv("SLURM_NTASKS");
  if (tasks == nullptr || *tasks == '\0') return;
  char* end = nullptr;
  const long expected = std::strtol(tasks, &end, 10);
  if (*end == '\0' && expected > 0 && expected != comm.size())
    throw ConfigError("SLURM_NTASKS is " + std::string(tasks) + " but MPI started " +
                      std::to_string(comm.size()) +
                      " rank(s): launch with srun --mpi=pmix (or mpirun) so the ranks see each "
                      "other");
}

// The solver's time split (rank 0's view) and the spread over ranks, as /timing records it.
std::map<std::string, double> timing_record(const FitTiming& t, double io, double total,
                                            double peak_rss, int ranks, int iterations) {
  return {{"seconds_total", total},
          {"seconds_local", t.local},
          {"seconds_global", t.global},
          {"seconds_allreduce", t.allreduce},
          {"seconds_initialisation", t.initialisation},
          {"seconds_io", io},
          {"seconds_other", total - t.local - t.global - t.allreduce - t.initialisation - io},
          {"load_imbalance", t.load_imbalance},
          {"peak_rss_bytes", peak_rss},
          {"ranks", ranks},
          {"iterations", iterations}};
}

void print_timing(const std::map<std::string, double>& t) {
  const double total = t.at("seconds_total");
  auto share = [&](const char* key) { return 100.0 * t.at(key) / std::max(total, 1e-12); };
  std::printf(
      "time %.2f s: local steps %.2f s (%.0f%%), global steps %.2f s (%.0f%%), allreduce "
      "%.2f s (%.0f%%), I/O %.2f s (%.0f%%), initialisation %.2f s (%.0f%%), other %.2f s; "
      "load imbalance (max/mean local time) %.3f; peak memory per rank %.1f MiB (max)\n",
      total, t.at("seconds_local"), share("seconds_local"), t.at("seconds_global"),
      share("seconds_global"), t.at("seconds_allreduce"), share("seconds_allreduce"),
      t.at("seconds_io"), share("seconds_io"), t.at("seconds_initialisation"),
      share("seconds_initialisation"), t.at("seconds_other"), t.at("load_imbalance"),
      t.at("peak_rss_bytes") / 1048576.0);
}

}  // namespace

int run_fit(const CommandContext& context) {
  FitOptions o;
  po::options_description options = fit_options(o);
  po::variables_map values;
  if (!parse_options("fit",
                     "Fits a latent linear dynamical system (Poisson, negative-binomial or "
                     "Bernoulli spikes, plus the Gaussian modalities of /continuous) by "
                     "natural-gradient variational inference to /split/train_trials (all "
                     "trials without a split).",
                     options, context, values))
    return 0;
  validate(o);
  apply_model_options(o);
  const bool root = context.comm->is_root();
  const auto start = std::chrono::steady_clock::now();
  double io_seconds = 0.0;
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };

  Communicator& comm = *context.comm;
  check_slurm_tasks(comm);
  const Dataset metadata = read_dataset_on_every_rank(
      o.data, ReadOptions{.trial_count = 0, .read_truth = false, .read_continuous = false}, comm);
  const std::vector<int> trials = training_trials(metadata);
  if (trials.size() < static_cast<std::size_t>(comm.size()))
    throw ConfigError("more MPI ranks (" + std::to_string(comm.size()) +
                      ") than training trials (" + std::to_string(trials.size()) + ")");
  const int population = static_cast<int>(trials.size());
  o.settings.minibatch.validate(population);
  if (o.epochs > 0)
    o.settings.iterations = static_cast<int>(
        std::ceil(o.epochs * population / std::min(o.settings.minibatch.size, population)));
  const Share share = rank_share(trials.size(), comm.rank(), comm.size());
  const std::vector<int> local(trials.begin() + static_cast<std::ptrdiff_t>(share.begin),
                               trials.begin() + static_cast<std::ptrdiff_t>(share.end));
  if (root)
    std::printf(
        "spikevi fit: %s: %zu training trials, %d neurons, D = %d, %d rank(s); %s spikes, %s "
        "family, %s expectations\n",
        o.data.c_str(), trials.size(), metadata.neurons, o.settings.latents, comm.size(),
        o.settings.model.spikes->name().c_str(),
        family_name(o.settings.model.family).c_str(),
        expectations_name(o.settings.model.expectations).c_str());
  const auto read_start = std::chrono::steady_clock::now();
  Dataset data = read_share(o.data, local, comm);
  if (!o.ignore_continuous)
    for (const auto& [name, values] : data.continuous) o.settings.continuous_names.push_back(name);
  io_seconds += seconds_since(read_start);
  double independent = data.counts_read_collectively ? 0.0 : 1.0;  // on any rank
  comm.allreduce_max(std::span<double>(&independent, 1));
  if (root)
    std::printf("read /counts: %s parallel-HDF5 read of each rank's block (%.2f s)\n",
                independent == 0.0 ? "collective" : "independent (not collective) on some rank",
                io_seconds);
  const std::vector<TrialCounts> counts = make_trial_counts(
      data, local, {}, static_cast<int>(share.begin), o.settings.continuous_names);
  data = Dataset{};  // the solver's copy is all it needs: do not hold the block twice

  // Checkpoints: continue from one for this --out if there is one (DESIGN.md §5).
  CheckpointLayout layout{static_cast<int>(share.begin),
                          population,
                          metadata.bins,
                          {},
                          o.settings.latents,
                          metadata.neurons,
                          {}};
  layout.model.row_parameters = o.settings.model.spikes->row_parameters();
  layout.model.continuous_names = o.settings.continuous_names;
  for (const Eigen::ArrayXXd& values : counts.front().continuous)
    layout.model.continuous_channels.push_back(static_cast<int>(values.rows()));
  layout.model.inputs = static_cast<int>(counts.front().inputs.rows());
  layout.model.adam = o.settings.model.optimizer == OptimizerKind::kAdam;
  for (const TrialCounts& trial : counts)
    layout.bins.push_back(static_cast<int>(trial.counts.cols()));
  const CheckpointIdentity identity =
      checkpoint_identity(values, metadata, trials, data_fingerprint(counts, comm),
                          static_cast<long>(counts.front().inputs.rows()));
  const std::string checkpoint = checkpoint_path(o.out);
  const auto checkpoint_start = std::chrono::steady_clock::now();
  // --overwrite without --restart starts afresh; otherwise a matching checkpoint is continued.
  std::optional<LoadedCheckpoint> loaded;
  if (o.restart || !o.overwrite) {
    try {
      loaded = read_checkpoint(checkpoint, layout, identity, comm);
    } catch (const ConfigError&) {
      if (!o.restart) check_output_path("--out", o.out, false);  // the plainer complaint first
      throw;
    }
  }
  io_seconds += seconds_since(checkpoint_start);
  if (o.restart && !loaded)
    throw ConfigError("--restart: no valid checkpoint " + checkpoint + " (nor " +
                      previous_checkpoint_path(checkpoint) + ")");
  if (loaded && root)
    std::printf("continuing from %s: %d iterations done (written by %d rank(s))\n",
                loaded->path.c_str(), loaded->state.iteration, loaded->ranks);
  if (loaded && root && loaded->state.iteration > o.settings.iterations)
    std::printf(
        "warning: the checkpoint already has %d iterations, more than --iterations %d: "
        "none are run\n",
        loaded->state.iteration, o.settings.iterations);
  check_output_path("--out", o.out, o.overwrite || loaded.has_value());

  FitControl control;
  control.resume = loaded ? &loaded->state : nullptr;
  control.checkpoint_every = o.checkpoint_every;
  // Until this fit has written one, a file at `checkpoint` is valid only if it was loaded.
  bool checkpoint_is_valid = loaded && loaded->path == checkpoint;
  control.checkpoint = [&](const FitState& state) {
    const auto write_start = std::chrono::steady_clock::now();
    write_checkpoint(checkpoint, state, layout, identity, comm, checkpoint_is_valid);
    checkpoint_is_valid = true;
    io_seconds += seconds_since(write_start);
  };
  control.stop_requested = stop_was_requested;
  const FitOutcome outcome = fit_variational(
      counts, o.settings, comm,
      root && !o.quiet ? ProgressCallback(print_progress) : ProgressCallback{}, control);
  if (outcome.termination == Termination::kStopped) {
    if (root)
      std::printf(
          "spikevi fit: stopped by a signal after iteration %d; checkpoint %s written; "
          "run the same command again (or with --restart) to continue\n",
          outcome.trace.empty() ? 0 : outcome.trace.back().iteration, checkpoint.c_str());
    return kStoppedBySignal;
  }

  std::vector<GaussianMoments> local_latents;
  for (const GaussMarkovState& state : outcome.posteriors) local_latents.push_back(state.moments);
  std::vector<int> lengths;
  for (int trial : trials)
    lengths.push_back(metadata.trial_lengths[static_cast<std::size_t>(trial)]);
  const std::vector<GaussianMoments> latents =
      allgather_moments(local_latents, share, lengths, o.settings.latents, comm);
  double peak_rss = peak_resident_bytes();
  comm.allreduce_max(std::span<double>(&peak_rss, 1));
  if (!root) return 0;  // the reductions above were the last collectives

  const AffineGauge gauge = AffineGauge::canonical(outcome.globals.spikes, latents);
  FitRecord record;
  record.globals = gauge.apply(outcome.globals);
  record.trace = outcome.trace;
  record.termination =
      outcome.termination == Termination::kConverged ? "converged" : "iteration limit";
  record.elbo = outcome.elbo;
  record.evidence_laplace = outcome.evidence_laplace;
  record.spike_count = outcome.spike_count;
  record.trials = trials;
  for (const GaussianMoments& q : latents) record.latents.push_back(gauge.apply(q));
  record.padded_bins = metadata.bins;
  record.model = o.settings.model;
  record.configuration = option_values(values);
  record.provenance = provenance(context);
  record.provenance["data"] = o.data;
  // The file records the time up to its own writing; the line printed below adds the write.
  const auto write_start = std::chrono::steady_clock::now();
  record.timing = timing_record(outcome.timing, io_seconds, seconds_since(start), peak_rss,
                                comm.size(), static_cast<int>(outcome.trace.size()));
  write_atomically(o.out, [&](const std::string& path) { write_fit(path, record); });
  io_seconds += seconds_since(write_start);

  std::printf(
      "spikevi fit: %s after %zu iterations: elbo %.6e (%.6f per spike), "
      "evidence_laplace %.6e; wrote %s\n",
      record.termination.c_str(), outcome.trace.size(), outcome.elbo,
      outcome.elbo / std::max(outcome.spike_count, 1.0), outcome.evidence_laplace, o.out.c_str());
  for (const RowParameter& parameter : record.globals.spike_parameters.parameters) {
    Eigen::VectorXd values = parameter.values;
    std::sort(values.begin(), values.end());
    const auto at = [&](double q) {
      return values(static_cast<Eigen::Index>(q * static_cast<double>(values.size() - 1)));
    };
    std::printf("%s (point estimates, /globals/%s): median %.3g, 10%%-90%% %.3g-%.3g\n",
                parameter.spec.label.c_str(), parameter.spec.name.c_str(), at(0.5), at(0.1),
                at(0.9));
  }
  for (const ContinuousReadout& modality : record.globals.continuous)
    std::printf("continuous modality %s: %d channels, noise variance R median %.3g\n",
                modality.name.c_str(), modality.channels(), [&] {
                  Eigen::VectorXd r = modality.variances;
                  std::sort(r.begin(), r.end());
                  return r(r.size() / 2);
                }());
  if (outcome.unconverged_local_steps > 0)
    std::printf("warning: %d local steps stopped at --local-max-iterations before converging\n",
                outcome.unconverged_local_steps);
  print_timing(timing_record(outcome.timing, io_seconds, seconds_since(start), peak_rss,
                             comm.size(), static_cast<int>(outcome.trace.size())));
  return 0;
}

}  // namespace spikevi::cli
