// spikevi fit: read a data set, fit on its training trials, write FIT.h5.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "command.hpp"
#include "spikevi/dataset.hpp"
#include "spikevi/error.hpp"
#include "spikevi/fit_file.hpp"
#include "spikevi/gauge.hpp"
#include "spikevi/sharding.hpp"
#include "spikevi/variational_fit.hpp"

namespace spikevi::cli {
namespace {

struct FitOptions {
  std::string data, out;
  std::uint64_t seed = 1;
  bool overwrite = false, quiet = false;
  FitSettings settings;
};

po::options_description fit_options(FitOptions& o) {
  FitSettings& s = o.settings;
  po::options_description options("Fit options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "input data set (HDF5, DATA_FORMAT.md)")
      ("out", po::value(&o.out)->required(), "results file to write (HDF5)")
      ("latents", po::value(&s.latents)->default_value(4), "number of latent dimensions D")
      ("iterations", po::value(&s.iterations)->default_value(100), "maximum number of iterations")
      ("tolerance", po::value(&s.tolerance)->default_value(1e-6),
       "stop when the relative ELBO change falls below this; 0 runs exactly --iterations")
      ("seed", po::value(&o.seed)->default_value(1),
       "key of the counter-based random streams (minibatches, Monte Carlo draws); the "
       "full-batch closed-form Poisson fit is deterministic and draws nothing")
      ("local-tolerance", po::value(&s.local.tolerance)->default_value(1e-6),
       "per-trial local step: stop when an accepted step gains less (nats)")
      ("local-max-iterations", po::value(&s.local.max_iterations)->default_value(100),
       "per-trial local step: most natural-gradient steps per iteration")
      ("prior-readout-precision", po::value(&s.priors.readout_weight_precision)->default_value(1.0),
       "prior precision pc of each loading c_n (c_n ~ N(0, I/pc))")
      ("prior-offset-precision", po::value(&s.priors.readout_offset_precision)->default_value(0.01),
       "prior precision pd of each log-rate offset d_n")
      ("prior-dynamics-variance", po::value(&s.priors.dynamics_column_variance)->default_value(10.0),
       "MNIW prior column variance v0 of [A b]")
      ("prior-process-noise", po::value(&s.priors.process_noise)->default_value(0.1),
       "MNIW prior mean of the process noise variance, E[Q] = q0 I")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out")
      ("quiet", po::bool_switch(&o.quiet), "no per-iteration progress lines");
  // clang-format on
  return options;
}

void validate(const FitOptions& o) {
  const FitSettings& s = o.settings;
  if (s.latents < 1)
    throw ConfigError("--latents must be >= 1 (got " + std::to_string(s.latents) + ")");
  if (s.iterations < 1)
    throw ConfigError("--iterations must be >= 1 (got " + std::to_string(s.iterations) + ")");
  if (!(s.tolerance >= 0)) throw ConfigError("--tolerance must be >= 0");
  if (!(s.local.tolerance > 0)) throw ConfigError("--local-tolerance must be > 0");
  if (s.local.max_iterations < 1) throw ConfigError("--local-max-iterations must be >= 1");
  for (double p : {s.priors.readout_weight_precision, s.priors.readout_offset_precision,
                   s.priors.dynamics_column_variance, s.priors.process_noise})
    if (!(p > 0) || !std::isfinite(p)) throw ConfigError("prior settings must be finite and > 0");
  check_output_path("--out", o.out, o.overwrite);
}

// Ascending, so that each rank's share is one contiguous block of the file.
std::vector<int> training_trials(const Dataset& data) {
  std::vector<int> trials;
  if (data.split && !data.split->train_trials.empty()) {
    trials = data.split->train_trials;
    std::sort(trials.begin(), trials.end());
  } else {
    for (int k = 0; k < data.trials; ++k) trials.push_back(k);
  }
  return trials;
}

// Reads only the block of the file that holds this rank's share of the training trials.
Dataset read_share(const std::string& path, const std::vector<int>& share_trials,
                   Communicator& comm) {
  ReadOptions options{.first_trial = share_trials.front(),
                      .trial_count = share_trials.back() - share_trials.front() + 1,
                      .read_truth = false};
  return read_dataset_on_every_rank(path, options, comm);
}

void print_progress(const IterationRecord& r) {
  std::printf("iter %4d  elbo %.6e  elbo/spike %+.6f  rel.change %+.3e  %.3f s\n", r.iteration,
              r.elbo, r.elbo_per_spike, r.relative_change, r.seconds);
  std::fflush(stdout);
}

}  // namespace

int run_fit(const CommandContext& context) {
  FitOptions o;
  po::options_description options = fit_options(o);
  po::variables_map values;
  if (!parse_options("fit",
                     "Fits a Poisson latent linear dynamical system (Gauss-Markov "
                     "variational family, natural-gradient VB-EM) to /split/train_trials "
                     "(all trials without a split).",
                     options, context, values))
    return 0;
  validate(o);
  const bool root = context.comm->is_root();
  const auto start = std::chrono::steady_clock::now();

  Communicator& comm = *context.comm;
  const Dataset metadata = read_dataset_on_every_rank(
      o.data, ReadOptions{.trial_count = 0, .read_truth = false, .read_continuous = false}, comm);
  const std::vector<int> trials = training_trials(metadata);
  if (trials.size() < static_cast<std::size_t>(comm.size()))
    throw ConfigError("more MPI ranks (" + std::to_string(comm.size()) +
                      ") than training trials (" + std::to_string(trials.size()) + ")");
  const Share share = rank_share(trials.size(), comm.rank(), comm.size());
  const std::vector<int> local(trials.begin() + static_cast<std::ptrdiff_t>(share.begin),
                               trials.begin() + static_cast<std::ptrdiff_t>(share.end));
  if (root)
    std::printf("spikevi fit: %s: %zu training trials, %d neurons, D = %d, %d rank(s)\n",
                o.data.c_str(), trials.size(), metadata.neurons, o.settings.latents, comm.size());
  const Dataset data = read_share(o.data, local, comm);
  const FitOutcome outcome =
      fit_variational(make_trial_counts(data, local), o.settings, comm,
                      root && !o.quiet ? ProgressCallback(print_progress) : ProgressCallback{});

  std::vector<GaussianMoments> local_latents;
  for (const GaussMarkovState& state : outcome.posteriors) local_latents.push_back(state.moments);
  std::vector<int> lengths;
  for (int trial : trials)
    lengths.push_back(metadata.trial_lengths[static_cast<std::size_t>(trial)]);
  const std::vector<GaussianMoments> latents =
      allgather_moments(local_latents, share, lengths, o.settings.latents, comm);
  if (!root) return 0;  // the gathering above was the last collective

  const AffineGauge gauge = AffineGauge::canonical(outcome.globals.spikes, latents);
  FitRecord record;
  record.globals = gauge.apply(outcome.globals);
  record.trace = outcome.trace;
  record.termination =
      outcome.termination == Termination::kConverged ? "converged" : "iteration limit";
  record.evidence_laplace = outcome.evidence_laplace;
  record.spike_count = outcome.spike_count;
  record.trials = trials;
  for (const GaussianMoments& q : latents) record.latents.push_back(gauge.apply(q));
  record.padded_bins = metadata.bins;
  record.configuration = option_values(values);
  record.provenance = provenance(context);
  record.provenance["data"] = o.data;
  write_atomically(o.out, [&](const std::string& path) { write_fit(path, record); });

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "spikevi fit: %s after %zu iterations: elbo %.6e (%.6f per spike), "
      "evidence_laplace %.6e; %.1f s; wrote %s\n",
      record.termination.c_str(), outcome.trace.size(), outcome.trace.back().elbo,
      outcome.trace.back().elbo_per_spike, outcome.evidence_laplace, seconds, o.out.c_str());
  return 0;
}

}  // namespace spikevi::cli
