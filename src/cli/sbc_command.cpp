// spikevi sbc: simulation-based calibration of the local posterior q(z) at fixed globals, or
// of q(z) q(A, b, Q) with the dynamics drawn from a prior (DESIGN.md §8, docs/commands.md#sbc),
// the replicates spread over the MPI ranks.
#include <chrono>
#include <cstdio>

#include "cli/command.hpp"
#include "cli/sbc_options.hpp"
#include "spikevi/error.hpp"

namespace spikevi::cli {

int run_sbc(const CommandContext& context) {
  SbcOptions o;
  po::options_description options("SBC options");
  add_sbc_options(options, o);
  double widen = 1.0, prior_scale = 0.01, prior_dof = 0.0;
  std::string dynamics = "fixed";
  // clang-format off
  options.add_options()
      ("family", po::value(&o.family)->default_value("gauss-markov"),
       "variational family that infers each replicate's latents: gauss-markov, mean-field")
      ("widen", po::value(&widen)->default_value(1.0),
       "draw from q with its covariance times this factor (a check of the check: 4 makes a "
       "calibrated posterior `too wide`)")
      ("dynamics", po::value(&dynamics)->default_value("fixed"),
       "fixed: every replicate uses theta's dynamics; prior: each draws A, b and Q from an "
       "MNIW prior centred on theta's, infers q(z) q(A, b, Q) by VB-EM and ranks them too "
       "(groups `dynamics` and `noise`)")
      ("dynamics-prior-scale", po::value(&prior_scale)->default_value(0.01, "0.01"),
       "with --dynamics prior: V0 = scale I, so an entry of A or b has prior variance "
       "scale x Q_ii")
      ("dynamics-prior-dof", po::value(&prior_dof)->default_value(0.0, "D + 20"),
       "with --dynamics prior: nu0 of the inverse-Wishart on Q (E[Q] = theta's Q); must exceed "
       "D + 1")
      ("dynamics-sweeps", po::value(&o.calibration.dynamics_sweeps)->default_value(200),
       "with --dynamics prior: most VB-EM sweeps (local step, then the MNIW update) per "
       "replicate");
  // clang-format on
  po::variables_map values;
  if (!parse_options("sbc",
                     "Simulation-based calibration (Talts et al. 2018): with theta fixed to a "
                     "fit's globals (--fit) or the data set's /truth, each of R replicates "
                     "simulates a trial's latents and spikes (and Gaussian modalities) from the "
                     "model, infers q(z) with --family and ranks the true latent coordinates at "
                     "the monitored bins among L draws from q; with --dynamics prior each "
                     "replicate also draws "
                     "its dynamics from a prior and their entries are ranked too. Writes --out "
                     "(SBC.h5: ranks, "
                     "chi-square test, ECDF difference with its simultaneous 95 % band and a "
                     "verdict per group; docs/output-files.md#sbc-file) and prints the table "
                     "(docs/commands.md#sbc). The replicates are dealt to the MPI ranks "
                     "with the same ranks on any rank count.",
                     options, context, values))
    return 0;
  o.calibration.family = parse_family(o.family);
  o.calibration.variance_inflation = widen;
  const auto start = std::chrono::steady_clock::now();
  SbcSetup setup = prepare_sbc(o, context);
  if (dynamics != "fixed" && dynamics != "prior")
    throw ConfigError("--dynamics must be fixed or prior (got '" + dynamics + "')");
  if (dynamics == "prior")
    o.calibration.dynamics_prior = setup.model.dynamics_prior(
        prior_scale,
        values["dynamics-prior-dof"].defaulted() ? setup.model.dim() + 20.0 : prior_dof);
  else if (!values["dynamics-prior-scale"].defaulted() ||
           !values["dynamics-prior-dof"].defaulted() || !values["dynamics-sweeps"].defaulted())
    throw ConfigError(
        "--dynamics-prior-scale, --dynamics-prior-dof and --dynamics-sweeps need "
        "--dynamics prior");
  Communicator& comm = *context.comm;
  const CalibrationSettings& c = o.calibration;
  if (comm.is_root()) {
    std::printf(
        "spikevi sbc: %d replicates of %d bins, family %s, %d draws, %zu monitored bins x D = "
        "%d, over %d rank(s); theta = %s\n",
        c.replicates, c.bins, o.family.c_str(), c.draws, c.monitored_bins.size(), setup.model.dim(),
        comm.size(), setup.source.c_str());
    if (c.dynamics_prior)
      std::printf(
          "dynamics drawn per replicate from MNIW(M0 = theta's [A b], V0 = %g I, nu0 = %g, "
          "E[Q] = theta's Q)\n",
          c.dynamics_prior->V(0, 0), c.dynamics_prior->nu);
    std::fflush(stdout);
  }
  ProgressLine progress("sbc " + o.family, c.replicates, comm.is_root() && !o.quiet);
  const auto replicates_start = std::chrono::steady_clock::now();
  const CalibrationResult result =
      run_calibration(setup.model, c, comm, [&](int done, int share) { progress(done, share); });
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  const double replicate_seconds = since(replicates_start);

  run_on_root(context, [&] {
    SbcRecord record;
    record.family = family_name(c.family);
    record.replicates = c.replicates;
    record.draws = c.draws;
    record.bins = o.ranks.bins;
    record.trial_bins = c.bins;
    record.seed = static_cast<double>(c.seed);
    record.variance_inflation = c.variance_inflation;
    record.alpha = o.ranks.alpha;
    const auto tests_start = std::chrono::steady_clock::now();
    record.groups.push_back(latent_group(result, o));
    if (c.dynamics_prior) {
      record.dynamics = "prior";
      record.dynamics_prior_scale = c.dynamics_prior->V(0, 0);
      record.dynamics_prior_dof = c.dynamics_prior->nu;
      record.groups.push_back(
          rank_group("dynamics", result.dynamics_ranks, result.dynamics_names, o));
      record.groups.push_back(rank_group("noise", result.noise_ranks, result.noise_names, o));
    }
    const double test_seconds = since(tests_start);
    record.seconds = since(start);
    record.provenance = provenance(context);
    record.configuration = option_values(values);
    write_atomically(o.out, [&](const std::string& path) { write_sbc(path, record); });
    if (result.unconverged_local_steps > 0)
      std::printf("warning: %d replicates' local steps stopped at --local-max-iterations\n",
                  result.unconverged_local_steps);
    if (result.non_monotone_dynamics > 0)
      std::printf(
          "note: in %d replicates a VB-EM sweep lowered the ELBO, by at most %.3g nats (roundoff "
          "where drawn dynamics explode; a large value would be a bug)\n",
          result.non_monotone_dynamics, result.largest_dynamics_decrease);
    if (result.unconverged_dynamics > 0)
      std::printf("warning: %d replicates' VB-EM stopped at --dynamics-sweeps\n",
                  result.unconverged_dynamics);
    if (c.dynamics_prior)
      std::printf(
          "%d of %d drawn A had spectral radius >= 1 (growing latents)%s\n",
          result.unstable_dynamics, c.replicates,
          result.unstable_dynamics > 0 ? "; a smaller --dynamics-prior-scale draws fewer" : "");
    print_sbc_table(record.groups);
    std::printf(
        "%.2f s (replicates %.2f s, rank tests %.2f s); replicates' CPU time %.2f s, at most "
        "%.2f s on one rank; wrote %s\n",
        record.seconds, replicate_seconds, test_seconds, result.cpu_seconds_total,
        result.cpu_seconds_max, o.out.c_str());
    std::fflush(stdout);
  });
  return 0;
}

}  // namespace spikevi::cli
