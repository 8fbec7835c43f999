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
#include "spikevi/driver/fit_job.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/checkpoint.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/model/gauge.hpp"
#include "spikevi/parallel/sharding.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi::cli {
namespace {

struct FitOptions {
  std::string data, out;
  std::string observation = "poisson", link = "exp", family = "gauss-markov", expectations,
              optimizer = "natural", readout = "linear", accelerate = "none";
  bool ignore_continuous = false;
  double epochs = 0.0;  // > 0: sets the iteration count from passes over the data
  int checkpoint_every = 10;
  bool overwrite = false, quiet = false, restart = false;
  FitSettings settings;
  std::string inference = "iterative";  // or amortised (amortised_fit.hpp)
  AmortisedSettings amortised;
};

// Exit status of a fit stopped by SIGTERM/SIGUSR1 after writing its checkpoint (EX_TEMPFAIL
// of sysexits.h: try again). Documented in the README; jobs/fit.slurm requeues on it.
constexpr int kStoppedBySignal = 75;

po::options_description fit_options(FitOptions& o) {
  FitSettings& s = o.settings;
  po::options_description options("Fit options");
  // clang-format off
  options.add_options()
      ("data", po::value(&o.data)->required(), "input data set (HDF5, docs/input-format.md)")
      ("out", po::value(&o.out)->required(), "results file to write (HDF5)")
      ("latents", po::value(&s.latents)->default_value(4), "number of latent dimensions D")
      ("link", po::value(&o.link)->default_value("exp"),
       "exp or softplus: the link of the spike model (softplus: rate log(1 + e^eta), linear "
       "rather than exponential in the latents; needs a NAME-softplus model, e.g. poisson)")
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
       "the most Gauss-Hermite nodes per expectation (fewer where the site's variance is small "
       "enough for the same accuracy)")
      ("fixed-quadrature", po::bool_switch(&s.model.fixed_quadrature),
       "use --quadrature-nodes nodes at every site")
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
      ("readout", po::value(&o.readout)->default_value("linear"),
       "linear or mlp: the spike readout; mlp: log-rate c'z + d + a'tanh(W z + b) with a hidden "
       "layer shared by all neurons (\"The MLP readout\" in docs/model-and-inference.md)")
      ("hidden", po::value(&s.model.hidden)->default_value(8),
       "--readout mlp: hidden units H")
      ("mlp-rate", po::value(&s.model.mlp_adam.learning_rate)->default_value(0.02, "0.02"),
       "--readout mlp: Adam learning rate of the MLP weights (A, W, b)")
      ("cubature-points", po::value(&s.model.cubature_points)->default_value(0),
       "--readout mlp: 0 = spherical-radial cubature (2D nodes), n = n^D Gauss-Hermite nodes")
      ("cubature-rotations", po::value(&s.model.cubature_rotations)->default_value(256),
       "--readout mlp: the cubature's nodes are turned per bin by one of this many random "
       "rotations; 0 = the same nodes in every bin")
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
      ("local-steps", po::value(&s.local.steps)->default_value(0),
       "per-trial local step: at most this many accepted natural-gradient steps per iteration "
       "(a partial E-step, warm-started; full batch falls back to the exact E-step when the "
       "objective drops); 0: to --local-tolerance (the exact E-step); default 0, 1 with "
       "--readout mlp")
      ("accelerate", po::value(&o.accelerate)->default_value("none"),
       "none or squarem: full batch, extrapolate the globals every third iteration (SQUAREM, "
       "Varadhan & Roland 2008), kept only where the ELBO rises (\"Accelerated VB-EM\" in "
       "docs/model-and-inference.md)")
      ("threads", po::value(&s.local.threads)->default_value(0),
       "threads over this rank's trials (0: OMP_NUM_THREADS, else 1); any count gives the "
       "same bits")
      ("history", po::value(&s.history.lags)->default_value(0),
       "K: coupling/history terms b_n' f_t from the held-in neurons' previous K bins (all "
       "neurons without /split/heldout_neurons), projected on --history-components principal "
       "directions (\"History terms\" in docs/model-and-inference.md); 0: none")
      ("history-components", po::value(&s.history.components)->default_value(0),
       "--history: P principal directions of the held-in counts per lag; 0: min(4, held-in)")
      ("history-prior", po::value(&s.history.prior_precision)->default_value(1.0),
       "--history: prior precision lambda of each history weight (b_n ~ N(0, I/lambda))")
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

// --inference amortised and its encoder / annealing options (DESIGN.md §6).
po::options_description amortised_options(FitOptions& o) {
  AmortisedSettings& a = o.amortised;
  po::options_description options(
      "Amortised inference (docs/model-and-inference.md#amortised-inference)");
  // clang-format off
  options.add_options()
      ("inference", po::value(&o.inference)->default_value("iterative"),
       "iterative: per-trial local steps; amortised: train an encoder network (1-D temporal "
       "convolution over the held-in neurons' log1p counts, tanh hidden layer) that outputs each "
       "trial's Gauss-Markov sites, jointly with the decoder (writes /encoder and /trace/beta, "
       "/trace/kl_per_dimension, /trace/active_units)")
      ("encoder-hidden", po::value(&a.hidden)->default_value(32), "amortised: hidden units H")
      ("encoder-window", po::value(&a.window)->default_value(5),
       "amortised: bins of the temporal convolution (odd, centred on each bin)")
      ("encoder-rate", po::value(&a.adam.learning_rate)->default_value(0.01, "0.01"),
       "amortised: Adam learning rate of the encoder's weights")
      ("kl-warmup", po::value(&a.kl_warmup)->default_value(0),
       "amortised: iterations over which beta rises linearly from --kl-beta0 to 1 (0: beta = 1)")
      ("kl-beta0", po::value(&a.kl_beta0)->default_value(0.01, "0.01"),
       "amortised: the first beta of the warm-up, in (0, 1]")
      ("free-bits", po::value(&a.free_bits)->default_value(0.0),
       "amortised: free bits lambda, nats per latent dimension and bin (one group: the KL's "
       "weight is 0 in an iteration whose minibatch KL per bin is below D lambda; 0: off)")
      ("initial-iterations", po::value(&a.initial_iterations)->default_value(1),
       "amortised: full-batch VB-EM iterations of the iterative engine that start the decoder");
  // clang-format on
  return options;
}

// The model options as settings (ConfigError naming a bad value).
void apply_model_options(FitOptions& o) {
  ModelSettings& model = o.settings.model;
  model.spikes = builtin_spike_models().with_link(o.observation, o.link);
  model.family = parse_family(o.family);
  model.expectations = o.expectations.empty() ? default_expectations(*model.spikes)
                                              : parse_expectations(o.expectations);
  model.seed = o.settings.minibatch.seed;
  model.optimizer = parse_optimizer(o.optimizer);
  model.readout = parse_readout(o.readout);
  model.mlp_seed = o.settings.minibatch.seed;
  if (!(model.mlp_adam.learning_rate > 0)) throw ConfigError("--mlp-rate must be > 0");
  if (model.cubature_points < 0) throw ConfigError("--cubature-points must be >= 0");
  if (model.cubature_rotations < 0) throw ConfigError("--cubature-rotations must be >= 0");
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
  if (s.local.steps < 0) throw ConfigError("--local-steps must be >= 0");
  resolve_thread_count(s.local.threads);  // ConfigError for a bad --threads or OMP_NUM_THREADS
  for (double p : {s.priors.readout_weight_precision, s.priors.readout_offset_precision,
                   s.priors.dynamics_column_variance, s.priors.process_noise})
    if (!(p > 0) || !std::isfinite(p)) throw ConfigError("prior settings must be finite and > 0");
  if (o.checkpoint_every < 0) throw ConfigError("--checkpoint-every must be >= 0");
  if (s.history.lags < 0 || s.history.components < 0 || !(s.history.prior_precision > 0) ||
      !std::isfinite(s.history.prior_precision))
    throw ConfigError("--history and --history-components must be >= 0 and --history-prior > 0");
  check_output_path("--out", o.out, true);  // the folder; an existing file is checked later
  check_output_is_not_input("--out", o.out, "--data", o.data);
  const std::string checkpoint = checkpoint_path(o.out);
  for (const std::string& written : {checkpoint, previous_checkpoint_path(checkpoint)})
    check_output_is_not_input("--out", written, "--data", o.data);
}

// What a checkpoint must share with the fit that continues it, beyond the data (the job adds
// it): every setting that changes the iterations (not --iterations, --tolerance, output or
// printing).
std::map<std::string, std::string> checkpoint_identity(const po::variables_map& values) {
  const std::map<std::string, std::string> options = option_values(values);
  std::map<std::string, std::string> identity;
  for (const char* key : {"latents",
                          "observation",
                          "link",
                          "family",
                          "expectations",
                          "quadrature-nodes",
                          "samples",
                          "ignore-continuous",
                          "optimizer",
                          "readout",
                          "hidden",
                          "mlp-rate",
                          "cubature-points",
                          "adam-local-rate",
                          "adam-global-rate",
                          "minibatch",
                          "step-tau",
                          "step-kappa",
                          "seed",
                          "local-tolerance",
                          "local-max-iterations",
                          "local-steps",
                          "prior-readout-precision",
                          "prior-offset-precision",
                          "prior-dynamics-variance",
                          "prior-process-noise"})
    if (options.count(key)) identity[key] = options.at(key);
  // An MLP fit's cubature nodes turned per bin (its identity before the rotated rule had none).
  if (options.count("readout") && options.at("readout") == "mlp" &&
      options.count("cubature-rotations"))
    identity["cubature-rotations"] = options.at("cubature-rotations");
  // A fit with history terms holds their weights (a fit without keeps its identity).
  if (options.count("history") && options.at("history") != "0")
    for (const char* key : {"history", "history-components", "history-prior"})
      if (options.count(key)) identity[key] = options.at(key);
  // An amortised fit's checkpoint also holds its encoder and per-iteration diagnostics (sized
  // by --iterations); an iterative fit's identity stays as it was.
  if (options.count("inference") && options.at("inference") == "amortised")
    for (const char* key :
         {"inference", "encoder-hidden", "encoder-window", "encoder-rate", "kl-warmup", "kl-beta0",
          "free-bits", "initial-iterations", "iterations"})
      if (options.count(key)) identity[key] = options.at(key);
  // Likewise an accelerated fit's, which holds the SQUAREM cycle.
  if (options.count("accelerate") && options.at("accelerate") != "none")
    identity["accelerate"] = options.at("accelerate");
  return identity;
}

void print_progress(const IterationRecord& r) {
  std::printf("iter %4d  elbo %.6e  elbo/spike %+.6f  rel.change %+.3e  %.3f s", r.iteration,
              r.elbo, r.elbo_per_spike, r.relative_change, r.seconds);
  if (r.rho < 1.0) std::printf("  batch %d  rho %.4f", r.batch_trials, r.rho);
  if (r.rejected_readout_rows > 0)
    std::printf("  (%d readout rows undone)", r.rejected_readout_rows);
  if (r.squarem_alpha < -1.0)
    std::printf("  squarem alpha %.3g%s", r.squarem_alpha,
                r.squarem_rejected ? " rejected: plain step" : "");
  std::printf("\n");
  std::fflush(stdout);
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
  options.add(amortised_options(o));
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
  // The MLP readout's cubature makes an exact E-step take 3-5x the local steps of the linear
  // readout for nothing (docs/model-and-inference.md#the-mlp-readout, "Cost"): unless asked
  // otherwise its fits take partial local steps.
  if (o.settings.model.readout == ReadoutKind::kMlp && values["local-steps"].defaulted())
    o.settings.local.steps = kMlpDefaultLocalSteps;
  o.settings.accelerate = parse_acceleration(o.accelerate);
  if (o.settings.accelerate != Acceleration::kNone && o.inference != "iterative")
    throw ConfigError("--accelerate squarem needs --inference iterative");
  Communicator& comm = *context.comm;
  const bool root = comm.is_root();

  FitJobSettings job;
  job.data = o.data;
  job.out = o.out;
  job.fit = o.settings;
  job.use_continuous = !o.ignore_continuous;
  job.epochs = o.epochs;
  job.checkpoint_every = o.checkpoint_every;
  job.restart = o.restart;
  job.overwrite = o.overwrite;
  job.identity = checkpoint_identity(values);
  job.configuration = option_values(values);
  job.provenance = provenance(context);
  if (o.inference != "iterative" && o.inference != "amortised")
    throw ConfigError("--inference must be iterative or amortised (got '" + o.inference + "')");
  if (o.inference == "amortised") {
    o.amortised.validate();
    if (root && !o.quiet)
      o.amortised.on_diagnostics = [](int iteration, double beta, const Eigen::VectorXd& kl,
                                      int active) {
        std::printf("iter %4d  beta %.4f  active units %d  KL per dimension", iteration, beta,
                    active);
        for (Eigen::Index d = 0; d < kl.size(); ++d) std::printf(" %.4f", kl(d));
        std::printf("\n");
      };
    job.amortised = o.amortised;
  }
  IterationPrinter progress(print_progress);
  StopRequest stop(stop_was_requested);
  std::vector<FitCallback*> callbacks{&stop};
  if (root && !o.quiet) callbacks.push_back(&progress);
  const JobNote note = [root](const std::string& line) {
    if (root) std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const FitJobResult result = run_fit_job(job, comm, callbacks, note);
  const FitOutcome& outcome = result.outcome;
  if (outcome.termination == Termination::kStopped) {
    if (root)
      std::printf(
          "spikevi fit: stopped by a signal after iteration %d; checkpoint %s written; "
          "run the same command again (or with --restart) to continue\n",
          outcome.trace.empty() ? 0 : outcome.trace.back().iteration, result.checkpoint.c_str());
    return kStoppedBySignal;
  }
  if (outcome.termination == Termination::kNumericalFailure)
    throw NumericalError(
        "the fit failed: " + outcome.message +
        (outcome.trace.empty() ? std::string() : " (written to " + result.checkpoint + ")"));
  if (!root) return 0;

  const FitRecord& record = result.record;
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
  if (o.settings.accelerate == Acceleration::kSquarem) {
    const auto tried =
        std::count_if(outcome.trace.begin(), outcome.trace.end(),
                      [](const IterationRecord& r) { return r.squarem_alpha < -1.0; });
    const auto kept = std::count_if(outcome.trace.begin(), outcome.trace.end(), [](auto& r) {
      return r.squarem_alpha < -1.0 && !r.squarem_rejected;
    });
    std::printf("squarem: %td of %td extrapolations kept (this process's iterations)\n", kept,
                tried);
  }
  if (outcome.unconverged_local_steps > 0)
    std::printf("warning: %d local steps stopped at --local-max-iterations before converging\n",
                outcome.unconverged_local_steps);
  if (result.amortised) {
    std::printf(
        "amortised: %d of %d latent dimensions active (posterior-mean variance > 0.01); "
        "KL per dimension",
        result.amortised->final_active_units, o.settings.latents);
    for (Eigen::Index d = 0; d < result.amortised->final_kl_per_dimension.size(); ++d)
      std::printf(" %.4f", result.amortised->final_kl_per_dimension(d));
    std::printf(" nats per bin\n");
  }
  print_timing(result.timing_record());
  return 0;
}

}  // namespace spikevi::cli
