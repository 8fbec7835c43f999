#pragma once
// The pieces every subcommand shares: option parsing with --help and --config, output-path
// checks, provenance, and printing from rank 0 only.
#include <boost/program_options.hpp>
#include <map>
#include <string>
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/error.hpp"

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

// Refuses an output path whose folder is missing, or that exists without --overwrite.
void check_output_path(const std::string& option, const std::string& path, bool overwrite);
// Writes through `write(temporary_path)` and renames into place, so a failure never leaves a
// half-written file under the final name (nor destroys an existing one).
template <class Write>
void write_atomically(const std::string& path, Write&& write);
void rename_into_place(const std::string& temporary, const std::string& path);
std::string temporary_path_for(const std::string& path);
void remove_quietly(const std::string& path);

// SIGTERM (SLURM's time limit, mpirun's kill) and SIGUSR1 (sbatch --signal) only set a flag:
// a fit then stops at the next iteration boundary with a checkpoint. main() installs this
// first thing, so that an early signal cannot kill a rank before it can checkpoint.
void install_stop_signals();
bool stop_was_requested();

// The largest resident set size this process has had (getrusage), in bytes.
double peak_resident_bytes();

// version, git revision, UTC date, ranks, command line.
std::map<std::string, std::string> provenance(const CommandContext& context);

// Per-trial rows x T_k matrices as one [trials, bins, rows] row-major array, NaN-padded to
// `bins` (the layout of /cosmoothing/rates, /decoded/mean and the like).
std::vector<double> padded_per_trial(const std::vector<Eigen::MatrixXd>& per_trial, int bins);

// The option values as text, for the /config record of an output file.
std::map<std::string, std::string> option_values(const po::variables_map& values);

// Thrown on the ranks that did not see an error another rank reported (and printed): they
// stop with the same exit status, silently, instead of waiting in a collective.
class PeerFailure : public Error {
 public:
  explicit PeerFailure(int status)
      : Error("stopped because another rank failed"), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// read_dataset on every rank, with one verdict: if any rank's read fails (each rank validates
// its own block of trials), the lowest failing rank prints its error and every rank throws
// PeerFailure, so no rank is left waiting in a later collective.
Dataset read_dataset_on_every_rank(const std::string& path, const ReadOptions& options,
                                   Communicator& comm);

int run_simulate(const CommandContext& context);
int run_fit(const CommandContext& context);
int run_evaluate(const CommandContext& context);
int run_compare(const CommandContext& context);
int run_decode(const CommandContext& context);

template <class Write>
void write_atomically(const std::string& path, Write&& write) {
  const std::string temporary = temporary_path_for(path);
  try {
    write(temporary);
  } catch (...) {
    remove_quietly(temporary);
    throw;
  }
  rename_into_place(temporary, path);
}

}  // namespace spikevi::cli
