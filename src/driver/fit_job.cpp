#include "spikevi/driver/fit_job.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/io/checkpoint.hpp"
#include "spikevi/io/encoder_file.hpp"
#include "spikevi/io/memory_limit.hpp"
#include "spikevi/io/output_files.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/gauge.hpp"
#include "spikevi/parallel/sharding.hpp"

namespace spikevi {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The largest resident set size this process has had (getrusage), in bytes.
double peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // Linux reports kilobytes
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

// Reads only the block of the file that holds this rank's share of the training trials.
Dataset read_share(const std::string& path, const std::vector<int>& share_trials,
                   Communicator& comm) {
  ReadOptions options{.first_trial = share_trials.front(),
                      .trial_count = share_trials.back() - share_trials.front() + 1,
                      .read_truth = false,
                      .collective = comm.is_mpi()};
  return read_dataset_on_every_rank(path, options, comm);
}

// Copies of the per-neuron model state a fit holds at once (the globals, the state a failed
// iteration goes back to, the statistics and their reduction), each (D + 1)^2 + D + 1 values.
constexpr double kNeuronStateCopies = 4.0;

// Refuses, before the data are read, a model that cannot be held: the per-neuron state of
// `neurons` rows and `latents` latents against the memory available (memory_limit.hpp).
void check_model_memory(const std::string& data, int neurons, int latents) {
  const double p = latents + 1.0;
  const double bytes = kNeuronStateCopies * 8.0 * neurons * (p * p + p);
  const MemoryLimit limit = available_memory();
  if (bytes <= limit.bytes) return;
  throw InputError(
      data + ": /counts declares " + std::to_string(neurons) + " neurons: a model of them with " +
      std::to_string(latents) + " latents needs about " + format_bytes(bytes) +
      " of memory on each rank, more than the " + format_bytes(limit.bytes) + " " + limit.source);
}

void say(const JobNote& note, const std::string& line) {
  if (note) note(line);
}

std::string format(const char* pattern, auto... values) {
  char text[512];
  std::snprintf(text, sizeof text, pattern, values...);
  return text;
}

// The encoder section of an amortised fit's file (encoder_file.hpp), in the file's gauge.
EncoderRecord encoder_record(const AmortisedOutcome& outcome, const AffineGauge& gauge) {
  EncoderRecord record;
  record.encoder = outcome.encoder;
  record.input_neurons = outcome.input_neurons;
  record.moments = outcome.encoder_moments;
  record.gauge = gauge;
  record.beta = outcome.beta;
  record.kl_per_dimension = outcome.kl_per_dimension;
  record.active_units = outcome.active_units;
  record.final_kl_per_dimension = outcome.final_kl_per_dimension;
  record.final_mean_variance = outcome.final_mean_variance;
  record.final_active_units = outcome.final_active_units;
  return record;
}

// One job: the shard of the fitted trials this rank holds and what the steps share.
class FitJob {
 public:
  FitJob(const FitJobSettings& settings, Communicator& comm, const JobNote& note)
      : job_(settings), settings_(settings.fit), comm_(comm), note_(note) {}

  FitJobResult from_file(const std::vector<FitCallback*>& callbacks);
  FitJobResult in_memory(const Dataset& data, const std::vector<int>& trials,
                         const std::vector<FitCallback*>& callbacks);

 private:
  void plan(const Dataset& metadata, const std::vector<int>& trials);
  CheckpointLayout checkpoint_layout(const std::vector<TrialCounts>& counts) const;
  CheckpointIdentity checkpoint_identity(const std::vector<TrialCounts>& counts) const;
  std::optional<LoadedCheckpoint> find_checkpoint(const CheckpointLayout& layout,
                                                  const CheckpointIdentity& identity);
  void iterate(const std::vector<TrialCounts>& counts, const FitState* resume,
               std::vector<FitCallback*> callbacks, FitJobResult& result);
  void gather_and_gauge(FitJobResult& result);
  // The job's amortised settings with the encoder reading the held-in neurons of the split.
  std::optional<AmortisedSettings> amortised_settings() const;

  const FitJobSettings& job_;
  FitSettings settings_;  // the job's, with the modalities found and the iteration count
  Communicator& comm_;
  JobNote note_;
  Clock::time_point start_ = Clock::now();
  Dataset metadata_;
  std::vector<int> trials_;  // all fitted trials, ascending
  Share share_;
};

// The fitted trials over all ranks, this rank's share, and the iteration count.
void FitJob::plan(const Dataset& metadata, const std::vector<int>& trials) {
  trials_ = trials;
  if (trials_.size() < static_cast<std::size_t>(comm_.size()))
    throw ConfigError("more MPI ranks (" + std::to_string(comm_.size()) +
                      ") than training trials (" + std::to_string(trials_.size()) + ")");
  const int population = static_cast<int>(trials_.size());
  settings_.minibatch.validate(population);
  if (job_.epochs > 0)
    settings_.iterations = static_cast<int>(
        std::ceil(job_.epochs * population / std::min(settings_.minibatch.size, population)));
  share_ = rank_share(trials_.size(), comm_.rank(), comm_.size());
  metadata_.trials = metadata.trials;
  metadata_.split = metadata.split;
  metadata_.bins = metadata.bins;
  metadata_.neurons = metadata.neurons;
  metadata_.trial_lengths = metadata.trial_lengths;
  // --history reads the held-in neurons only (all of them without held-out neurons).
  if (settings_.history.active()) {
    settings_.history.rows.clear();
    if (metadata.split && !metadata.split->heldout_neurons.empty())
      settings_.history.rows = metadata.split->heldin_neurons();
    else
      for (int n = 0; n < metadata.neurons; ++n) settings_.history.rows.push_back(n);
  }
}

CheckpointLayout FitJob::checkpoint_layout(const std::vector<TrialCounts>& counts) const {
  CheckpointLayout layout{static_cast<int>(share_.begin),
                          static_cast<int>(trials_.size()),
                          metadata_.bins,
                          {},
                          settings_.latents,
                          metadata_.neurons,
                          {},
                          {}};
  layout.model.row_parameters = settings_.model.spikes->row_parameters();
  layout.model.continuous_names = settings_.continuous_names;
  for (const Eigen::ArrayXXd& values : counts.front().continuous)
    layout.model.continuous_channels.push_back(static_cast<int>(values.rows()));
  layout.model.inputs = static_cast<int>(counts.front().inputs.rows());
  layout.model.adam = settings_.model.optimizer == OptimizerKind::kAdam;
  layout.model.hidden = settings_.model.mlp_hidden();
  layout.model.mlp_seed = settings_.model.mlp_seed;
  layout.model.mlp_prior_precision = settings_.model.mlp_prior_precision;
  if (settings_.history.active()) layout.model.history = HistoryBasis::shaped(settings_.history);
  for (const TrialCounts& trial : counts)
    layout.bins.push_back(static_cast<int>(trial.counts.cols()));
  if (const std::optional<AmortisedSettings> amortised = amortised_settings()) {
    const int inputs = amortised->encoder_rows.empty()
                           ? metadata_.neurons
                           : static_cast<int>(amortised->encoder_rows.size());
    layout.extra_state =
        amortised_state_template(*amortised, inputs, settings_.latents, settings_.iterations);
  }
  if (settings_.accelerate == Acceleration::kSquarem) {
    const GlobalState shape =
        make_prior_state(settings_.latents, metadata_.neurons, PriorSettings{}, layout.model);
    layout.extra_state = Squarem::state_template(squarem_coordinates(shape).size());
  }
  return layout;
}

// The settings that change the iterations, and the data: its sizes and a fingerprint of the
// counts themselves (collective).
CheckpointIdentity FitJob::checkpoint_identity(const std::vector<TrialCounts>& counts) const {
  CheckpointIdentity identity(job_.identity.begin(), job_.identity.end());
  std::ostringstream data;
  data << metadata_.trials << " trials x " << metadata_.bins << " bins x " << metadata_.neurons
       << " neurons, " << trials_.size() << " training trials";
  identity["data"] = data.str();
  identity["data content"] = data_fingerprint(counts, comm_);
  identity["known inputs"] = std::to_string(counts.front().inputs.rows());
  return identity;
}

// A checkpoint of this fit to continue from: --overwrite without --restart starts afresh;
// otherwise a matching checkpoint is continued (DESIGN.md §5).
std::optional<LoadedCheckpoint> FitJob::find_checkpoint(const CheckpointLayout& layout,
                                                        const CheckpointIdentity& identity) {
  const std::string checkpoint = checkpoint_path(job_.out);
  std::optional<LoadedCheckpoint> loaded;
  if (job_.restart || !job_.overwrite) {
    try {
      loaded = read_checkpoint(checkpoint, layout, identity, comm_);
    } catch (const ConfigError&) {
      if (!job_.restart) check_output_path("--out", job_.out, false);  // the plainer complaint
      throw;
    }
  }
  if (job_.restart && !loaded)
    throw ConfigError("--restart: no valid checkpoint " + checkpoint + " (nor " +
                      previous_checkpoint_path(checkpoint) + ")");
  if (loaded)
    say(note_, format("continuing from %s: %d iterations done (written by %d rank(s))",
                      loaded->path.c_str(), loaded->state.iteration, loaded->ranks));
  if (loaded && loaded->state.iteration > settings_.iterations)
    say(note_, format("warning: the checkpoint already has %d iterations, more than "
                      "--iterations %d: none are run",
                      loaded->state.iteration, settings_.iterations));
  check_output_path("--out", job_.out, job_.overwrite || loaded.has_value());
  return loaded;
}

void FitJob::iterate(const std::vector<TrialCounts>& counts, const FitState* resume,
                     std::vector<FitCallback*> callbacks, FitJobResult& result) {
  PhaseTimer timer(comm_);
  callbacks.push_back(&timer);
  if (job_.amortised) {
    auto amortised = std::make_shared<AmortisedOutcome>(
        fit_amortised(counts, settings_, *amortised_settings(), comm_, callbacks, resume));
    result.outcome = amortised->fit;
    result.amortised = std::move(amortised);
  } else {
    result.outcome = fit_variational(counts, settings_, comm_, callbacks, resume);
  }
  result.timing = timer.timing();
}

FitJobResult FitJob::from_file(const std::vector<FitCallback*>& callbacks) {
  check_slurm_tasks(comm_);
  FitJobResult result;
  result.ranks = comm_.size();
  const Dataset metadata = read_dataset_on_every_rank(
      job_.data, ReadOptions{.trial_count = 0, .read_truth = false, .read_continuous = false},
      comm_);
  check_model_memory(job_.data, metadata.neurons, settings_.latents);
  plan(metadata, training_trials(metadata));
  const std::vector<int> local(trials_.begin() + static_cast<std::ptrdiff_t>(share_.begin),
                               trials_.begin() + static_cast<std::ptrdiff_t>(share_.end));
  say(note_,
      format("spikevi fit: %s: %zu training trials, %d neurons, D = %d, %d rank(s); %s "
             "spikes, %s family, %s expectations",
             job_.data.c_str(), trials_.size(), metadata.neurons, settings_.latents, comm_.size(),
             settings_.model.spikes->name().c_str(), family_name(settings_.model.family).c_str(),
             expectations_name(settings_.model.expectations).c_str()));
  const auto read_start = Clock::now();
  Dataset data = read_share(job_.data, local, comm_);
  if (job_.use_continuous)
    for (const auto& [name, values] : data.continuous) settings_.continuous_names.push_back(name);
  result.io_seconds += seconds_since(read_start);
  double independent = data.counts_read_collectively ? 0.0 : 1.0;  // on any rank
  comm_.allreduce_max(std::span<double>(&independent, 1));
  say(note_, format("read /counts: %s parallel-HDF5 read of each rank's block (%.2f s)",
                    independent == 0.0 ? "collective" : "independent (not collective) on some rank",
                    result.io_seconds));
  const std::vector<TrialCounts> counts = make_trial_counts(
      data, local, {}, static_cast<int>(share_.begin), settings_.continuous_names);
  data = Dataset{};  // the solver's copy is all it needs: do not hold the block twice

  const CheckpointLayout layout = checkpoint_layout(counts);
  const CheckpointIdentity identity = checkpoint_identity(counts);
  result.checkpoint = checkpoint_path(job_.out);
  const auto checkpoint_start = Clock::now();
  const std::optional<LoadedCheckpoint> loaded = find_checkpoint(layout, identity);
  result.io_seconds += seconds_since(checkpoint_start);

  // Until this fit has written one, a file at the checkpoint's name is valid only if loaded.
  bool checkpoint_is_valid = loaded && loaded->path == result.checkpoint;
  CheckpointSchedule schedule(job_.checkpoint_every, [&](const FitState& state) {
    const auto write_start = Clock::now();
    write_checkpoint(result.checkpoint, state, layout, identity, comm_, checkpoint_is_valid);
    checkpoint_is_valid = true;
    result.io_seconds += seconds_since(write_start);
  });
  std::vector<FitCallback*> all = callbacks;
  all.push_back(&schedule);
  iterate(counts, loaded ? &loaded->state : nullptr, all, result);
  const Termination ended = result.outcome.termination;
  if (ended == Termination::kStopped || ended == Termination::kNumericalFailure) {
    result.total_seconds = seconds_since(start_);
    return result;
  }
  gather_and_gauge(result);
  if (!comm_.is_root()) return result;  // the reductions above were the last collectives
  const auto write_start = Clock::now();
  result.total_seconds = seconds_since(start_);
  // The file records the time up to its own writing.
  result.record.timing = result.timing_record();
  write_atomically(job_.out, [&](const std::string& path) {
    write_fit(path, result.record);
    if (result.amortised) write_encoder(path, encoder_record(*result.amortised, result.gauge));
  });
  result.io_seconds += seconds_since(write_start);
  result.total_seconds = seconds_since(start_);
  return result;
}

FitJobResult FitJob::in_memory(const Dataset& data, const std::vector<int>& trials,
                               const std::vector<FitCallback*>& callbacks) {
  FitJobResult result;
  plan(data, trials);
  if (job_.use_continuous)
    for (const auto& [name, values] : data.continuous) settings_.continuous_names.push_back(name);
  const std::vector<TrialCounts> counts =
      make_trial_counts(data, trials_, {}, 0, settings_.continuous_names);
  iterate(counts, nullptr, callbacks, result);
  const Termination ended = result.outcome.termination;
  if (ended != Termination::kStopped && ended != Termination::kNumericalFailure)
    gather_and_gauge(result);
  result.total_seconds = seconds_since(start_);
  return result;
}

// Every rank's posterior moments on rank 0 (one reduction), the canonical gauge (gauge.hpp),
// and the record of the fit file.
void FitJob::gather_and_gauge(FitJobResult& result) {
  const FitOutcome& outcome = result.outcome;
  std::vector<GaussianMoments> local_latents;
  for (const GaussMarkovState& state : outcome.posteriors) local_latents.push_back(state.moments);
  std::vector<int> lengths;
  for (int trial : trials_)
    lengths.push_back(metadata_.trial_lengths[static_cast<std::size_t>(trial)]);
  const std::vector<GaussianMoments> latents =
      allgather_moments(local_latents, share_, lengths, settings_.latents, comm_);
  result.peak_rss_bytes = peak_resident_bytes();
  comm_.allreduce_max(std::span<double>(&result.peak_rss_bytes, 1));
  if (!comm_.is_root()) return;

  const AffineGauge gauge = AffineGauge::canonical(outcome.globals.spikes, latents);
  result.gauge = gauge;
  FitRecord& record = result.record;
  record.globals = gauge.apply(outcome.globals);
  record.trace = outcome.trace;
  record.termination = termination_name(outcome.termination);
  record.elbo = outcome.elbo;
  record.evidence_laplace = outcome.evidence_laplace;
  record.spike_count = outcome.spike_count;
  record.trials = trials_;
  for (const GaussianMoments& q : latents) record.latents.push_back(gauge.apply(q));
  record.padded_bins = metadata_.bins;
  record.model = settings_.model;
  record.configuration = job_.configuration;
  record.provenance = job_.provenance;
  record.provenance["data"] = job_.data;
}

std::optional<AmortisedSettings> FitJob::amortised_settings() const {
  std::optional<AmortisedSettings> amortised = job_.amortised;
  if (amortised && amortised->encoder_rows.empty() && metadata_.split &&
      !metadata_.split->heldout_neurons.empty())
    amortised->encoder_rows = metadata_.split->heldin_neurons();
  return amortised;
}

}  // namespace

std::string checkpoint_path(const std::string& out) { return out + ".checkpoint.h5"; }

std::map<std::string, double> FitJobResult::timing_record() const {
  const FitTiming& t = timing;
  return {{"seconds_total", total_seconds},
          {"seconds_local", t.local},
          {"seconds_global", t.global},
          {"seconds_allreduce", t.allreduce},
          {"seconds_initialisation", t.initialisation},
          {"seconds_io", io_seconds},
          {"seconds_other",
           total_seconds - t.local - t.global - t.allreduce - t.initialisation - io_seconds},
          {"load_imbalance", t.load_imbalance},
          {"peak_rss_bytes", peak_rss_bytes},
          {"ranks", static_cast<double>(ranks)},
          {"iterations", static_cast<double>(outcome.trace.size())}};
}

FitJobResult run_fit_job(const FitJobSettings& settings, Communicator& comm,
                         const std::vector<FitCallback*>& callbacks, const JobNote& note) {
  return FitJob(settings, comm, note).from_file(callbacks);
}

FitJobResult run_fit_job(const Dataset& data, const std::vector<int>& trials,
                         const FitJobSettings& settings,
                         const std::vector<FitCallback*>& callbacks) {
  SerialCommunicator serial;
  return FitJob(settings, serial, {}).in_memory(data, trials, callbacks);
}

}  // namespace spikevi
