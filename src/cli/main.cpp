// spikevi: variational inference for latent dynamics of neural populations.
// main() only dispatches; every subcommand lives in its own file.
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/version.hpp"

namespace {

constexpr const char* kUsage =
    "usage: spikevi COMMAND [options]   (spikevi COMMAND --help for its options)\n"
    "       spikevi --version\n\n"
    "commands:\n"
    "  simulate   write a simulated data set (with /truth and /split) in the input format\n"
    "  fit        fit a latent linear dynamical system to spikes (and behaviour) by VI\n"
    "  evaluate   co-smoothing score of a fit on the test trials, beside reference scores\n"
    "  compare    cross-validated comparison of spike models and variational families\n"
    "  decode     predict a Gaussian modality (behaviour) of the test trials from spikes\n"
    "  report     one self-contained HTML page of figures from a fit and its evaluations\n"
    "  import-nwb bin the sorted units of an NWB file into an input file (trials, split)\n"
    "  sbc        simulation-based calibration of the latent posterior at fixed globals\n"
    "  family-check Gauss-Markov against mean-field: ELBO gain, variance ratios, SBC\n";

int dispatch(const std::string& command, spikevi::cli::CommandContext& context) {
  if (command == "simulate") return spikevi::cli::run_simulate(context);
  if (command == "fit") return spikevi::cli::run_fit(context);
  if (command == "evaluate") return spikevi::cli::run_evaluate(context);
  if (command == "compare") return spikevi::cli::run_compare(context);
  if (command == "decode") return spikevi::cli::run_decode(context);
  if (command == "report") return spikevi::cli::run_report(context);
  if (command == "import-nwb") return spikevi::cli::run_import_nwb(context);
  if (command == "sbc") return spikevi::cli::run_sbc(context);
  if (command == "family-check") return spikevi::cli::run_family_check(context);
  throw spikevi::ConfigError("unknown command '" + command + "'\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) {
  spikevi::cli::install_stop_signals();
  spikevi::MpiSession mpi(&argc, &argv);
  auto comm = spikevi::make_world_communicator();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    if (comm->is_root()) std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    if (comm->is_root())
      std::cout << "spikevi " << spikevi::version() << " (git revision " << spikevi::git_revision()
                << ")\n";
    return 0;
  }
  spikevi::cli::CommandContext context;
  context.comm = comm.get();
  for (int i = 0; i < argc; ++i) {
    if (i >= 2) context.arguments.emplace_back(argv[i]);
    context.command_line += (i ? " " : "") + std::string(argv[i]);
  }
  try {
    return dispatch(argv[1], context);
  } catch (const spikevi::PeerFailure& failure) {
    return failure.status();  // the failing rank has printed the reason
  } catch (const spikevi::Error& error) {
    if (comm->is_root()) std::cerr << "spikevi: error: " << error.what() << std::endl;
    return spikevi::cli::exit_status(error);
  } catch (const std::exception& error) {
    std::cerr << "spikevi: internal error (rank " << comm->rank() << "): " << error.what()
              << std::endl;
    return 1;
  }
}
