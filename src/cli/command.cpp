#include "cli/command.hpp"

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <span>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/version.hpp"

namespace spikevi::cli {

namespace {

// Where a command's inputs, outputs and options are documented (docs/ in the repository).
std::string documentation_of(const std::string& command) {
  const std::string inputs = "inputs: docs/input-format.md";
  if (command == "simulate")
    return "outputs: docs/output-files.md#simulated-data-file (the input format, "
           "docs/input-format.md); options: docs/commands.md#simulate";
  if (command == "fit")
    return inputs +
           "; outputs: docs/output-files.md#fit-file and #checkpoint-file; options: "
           "docs/commands.md#fit; the model: docs/model-and-inference.md";
  if (command == "evaluate")
    return inputs +
           " and docs/output-files.md#fit-file; outputs: "
           "docs/output-files.md#evaluation-file; options: docs/commands.md#evaluate";
  if (command == "compare")
    return inputs +
           "; outputs: docs/output-files.md#comparison-table; options: "
           "docs/commands.md#compare";
  if (command == "decode")
    return inputs +
           " and docs/output-files.md#fit-file; outputs: "
           "docs/output-files.md#decode-file; options: docs/commands.md#decode";
  if (command == "report")
    return "inputs: docs/output-files.md#fit-file, docs/output-files.md#evaluation-file, "
           "docs/output-files.md#comparison-table; outputs: one HTML page, "
           "docs/commands.md#report; options: docs/commands.md#report";
  if (command == "import-nwb")
    return "inputs: an NWB 2.x file; outputs: the input format, docs/input-format.md; options "
           "and refusals: docs/commands.md#import-nwb";
  if (command == "sbc")
    return inputs +
           " and docs/output-files.md#fit-file; outputs: docs/output-files.md#sbc-file; "
           "options: docs/commands.md#sbc";
  if (command == "family-check")
    return inputs +
           " and docs/output-files.md#fit-file; outputs: "
           "docs/output-files.md#family-check-file; options: docs/commands.md#family-check";
  return "docs/commands.md";
}

}  // namespace

bool parse_options(const std::string& command, const std::string& summary,
                   po::options_description& options, const CommandContext& context,
                   po::variables_map& values) {
  po::options_description general("General");
  general.add_options()("help,h", "print this help and exit")(
      "config", po::value<std::string>(),
      "read options from an INI file whose keys are the long option names; options on the "
      "command line take precedence");
  po::options_description all;
  all.add(options).add(general);
  try {
    po::store(po::command_line_parser(context.arguments).options(all).run(), values);
    if (values.count("help")) {
      if (context.comm->is_root())
        std::cout << "usage: spikevi " << command << " [options]\n\n"
                  << summary << "\n\nDocumentation: " << documentation_of(command) << "\n\n"
                  << all << std::flush;
      return false;
    }
    if (values.count("config")) {
      const std::string path = values["config"].as<std::string>();
      std::ifstream file(path);
      if (!file) throw ConfigError("--config " + path + ": cannot open the file");
      po::store(po::parse_config_file(file, options), values);
    }
    po::notify(values);
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + " (see 'spikevi " + command + " --help')");
  }
  return true;
}

namespace {
volatile std::sig_atomic_t stop_signal = 0;
extern "C" void request_stop(int signal_number) { stop_signal = signal_number; }
}  // namespace

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  action.sa_flags = SA_RESTART;  // interrupted I/O system calls resume instead of failing
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

bool stop_was_requested() { return stop_signal != 0; }

int exit_status(const Error& error) {
  if (dynamic_cast<const ConfigError*>(&error)) return 2;
  if (dynamic_cast<const InputError*>(&error)) return 3;
  if (dynamic_cast<const NumericalError*>(&error)) return 4;
  if (dynamic_cast<const OutputError*>(&error)) return 5;
  if (const auto* peer = dynamic_cast<const PeerFailure*>(&error)) return peer->status();
  return 1;
}

void run_on_root(const CommandContext& context, const std::function<void()>& work) {
  Communicator& comm = *context.comm;
  double status = 0.0;
  std::exception_ptr failure;
  if (comm.is_root()) try {
      work();
    } catch (const Error& error) {
      status = exit_status(error);
      failure = std::current_exception();
    }
  comm.broadcast(std::span<double>(&status, 1), 0);
  if (failure) std::rethrow_exception(failure);
  if (status != 0.0) throw PeerFailure(static_cast<int>(status));
}

std::map<std::string, std::string> provenance(const CommandContext& context) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"version", version()},
          {"git_revision", git_revision()},
          {"date", date},
          {"ranks", std::to_string(context.comm->size())},
          {"command_line", context.command_line}};
}

namespace {
// The shortest %g text that reads back as exactly `x` (0.1 stays "0.1"; 0.1000001 is kept).
std::string round_trip_text(double x) {
  char text[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, x);
    if (std::strtod(text, nullptr) == x) break;
  }
  return text;
}
}  // namespace

std::map<std::string, std::string> option_values(const po::variables_map& values) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : values) {
    const boost::any& held = value.value();
    std::ostringstream text;
    if (held.type() == typeid(std::string))
      text << boost::any_cast<std::string>(held);
    else if (held.type() == typeid(int))
      text << boost::any_cast<int>(held);
    else if (held.type() == typeid(double))
      text << round_trip_text(boost::any_cast<double>(held));
    else if (held.type() == typeid(std::uint64_t))
      text << boost::any_cast<std::uint64_t>(held);
    else if (held.type() == typeid(bool))
      text << (boost::any_cast<bool>(held) ? "true" : "false");
    else
      continue;
    out[key] = text.str();
  }
  return out;
}

}  // namespace spikevi::cli
