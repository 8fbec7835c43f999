#pragma once
// The pieces every subcommand shares: option parsing with --help and --config, output-path
// checks, provenance, and printing from rank 0 only.
#include <boost/program_options.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/output_files.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi::cli {

namespace po = boost::program_options;

struct CommandContext {
  std::vector<std::string> arguments;  // after the subcommand name
  std::string command_line;            // the whole command line, for provenance
  Communicator* comm = nullptr;
};

// Parses `arguments` against `options` (plus --help and --config FILE, whose keys are the long
// option names; the command line overrides the file). Returns false after printing help.
bool parse_options(const std::string& command, const std::string& summary,
                   po::options_description& options, const CommandContext& context,
                   po::variables_map& values);

// SIGTERM (SLURM's time limit, mpirun's kill) and SIGUSR1 (sbatch --signal) only set a flag:
// a fit then stops at the next iteration boundary with a checkpoint. main() installs this
// first thing, so that an early signal cannot kill a rank before it can checkpoint.
void install_stop_signals();
bool stop_was_requested();

// The exit status of an error, by its kind (the README's exit-status table).
int exit_status(const Error& error);

// Runs `work` on rank 0 only (printing, writing a small file) with one verdict for all ranks:
// an Error there is rethrown on rank 0 and every other rank throws PeerFailure with its status,
// so no rank is left waiting in a later collective.
void run_on_root(const CommandContext& context, const std::function<void()>& work);

// version, git revision, UTC date, ranks, command line.
std::map<std::string, std::string> provenance(const CommandContext& context);

// The option values as text, for the /config record of an output file.
std::map<std::string, std::string> option_values(const po::variables_map& values);

int run_simulate(const CommandContext& context);
int run_fit(const CommandContext& context);
int run_evaluate(const CommandContext& context);
int run_compare(const CommandContext& context);
int run_decode(const CommandContext& context);
int run_report(const CommandContext& context);
int run_import_nwb(const CommandContext& context);
int run_sbc(const CommandContext& context);
int run_family_check(const CommandContext& context);

}  // namespace spikevi::cli
