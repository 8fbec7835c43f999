// spikevi report: one self-contained HTML page of figures and tables from a fit and, optionally,
// its evaluation, SBC, comparison, family-check and strong-scaling outputs. This file checks the
// inputs (one clear line naming the file) and hands the drawing to the companion script
// spikevi_report.py (matplotlib), installed beside the binary.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/version.hpp"

extern char** environ;

namespace spikevi::cli {
namespace {

namespace fs = std::filesystem;

struct ReportOptions {
  std::string fit, evaluation, data, sbc, comparison, family_check, scaling, trials, neurons;
  std::string title = "spikevi report", out;
  bool overwrite = false;
};

po::options_description report_options(ReportOptions& o) {
  po::options_description options("Report options");
  // clang-format off
  options.add_options()
      ("fit", po::value(&o.fit)->required(),
       "results of spikevi fit (HDF5): ELBO trace and latent trajectories")
      ("evaluation", po::value(&o.evaluation),
       "spikevi evaluate's file: co-smoothing scores and coverage curves")
      ("data", po::value(&o.data),
       "the data file of the evaluation (with --evaluation): predicted rates against the "
       "held-out counts")
      ("sbc", po::value(&o.sbc), "spikevi sbc's file: rank histograms and ECDF differences")
      ("comparison", po::value(&o.comparison), "spikevi compare --table CSV")
      ("family-check", po::value(&o.family_check),
       "spikevi family-check's FAMILY.h5 (both families side by side, their SBC ranks), or any "
       "CSV with a header line, shown as it is")
      ("scaling", po::value(&o.scaling), "perf/strong_scaling.py's scaling.csv")
      ("trials", po::value(&o.trials),
       "fitted trials (file indices, a,b,c) whose latents to draw; default the first three")
      ("neurons", po::value(&o.neurons),
       "held-out neurons (file indices, a,b,c) whose rates to draw; default the four with the "
       "most test spikes")
      ("title", po::value(&o.title)->default_value("spikevi report"), "the page's title")
      ("out", po::value(&o.out)->required(), "the HTML page to write")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  return options;
}

std::vector<long long> parse_indices(const std::string& option, const std::string& text) {
  std::vector<long long> indices;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 0)
      throw ConfigError(option + ": '" + item + "' is not a file index (a whole number >= 0)");
    indices.push_back(value);
  }
  if (indices.empty()) throw ConfigError(option + ": an empty list");
  return indices;
}

void require_file(const std::string& option, const std::string& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) throw InputError(option + " " + path + ": no such file");
  std::ifstream file(path);
  if (!file) throw InputError(option + " " + path + ": cannot be read");
}

// Opens an HDF5 input and checks that it has `objects`, so that a wrong file is named before
// any drawing.
Hdf5File require_hdf5(const std::string& option, const std::string& path,
                      const std::vector<std::string>& objects, const std::string& what) {
  require_file(option, path);
  Hdf5File file = Hdf5File::open_read(path);
  for (const std::string& object : objects)
    if (!file.exists(object))
      throw InputError(path + ": " + object + " is missing: not " + what + " (" + option + ")");
  return file;
}

// A CSV input: a header line holding every one of `columns`.
void require_csv(const std::string& option, const std::string& path,
                 const std::vector<std::string>& columns, const std::string& what) {
  require_file(option, path);
  std::ifstream file(path);
  std::string header;
  std::getline(file, header);
  if (!header.empty() && header.back() == '\r') header.pop_back();
  if (header.empty()) throw InputError(path + ": empty, expected " + what + " (" + option + ")");
  std::set<std::string> names;
  std::stringstream cells(header);
  for (std::string cell; std::getline(cells, cell, ',');) names.insert(cell);
  for (const std::string& column : columns)
    if (!names.count(column))
      throw InputError(path + ": no column '" + column + "' in its header: not " + what + " (" +
                       option + ")");
}

void check_inputs(const ReportOptions& o) {
  {
    const Hdf5File fit =
        require_hdf5("--fit", o.fit, {"/elbo", "/latents/mean", "/latents/cov", "/latents/trials"},
                     "a fit file of spikevi fit");
    if (!o.trials.empty()) {
      const std::vector<std::int64_t> fitted = fit.read_integers("/latents/trials");
      const std::set<std::int64_t> known(fitted.begin(), fitted.end());
      for (long long trial : parse_indices("--trials", o.trials))
        if (!known.count(trial))
          throw ConfigError("--trials: trial " + std::to_string(trial) + " was not fitted (" +
                            o.fit + " /latents/trials holds " + std::to_string(fitted.size()) +
                            " trials)");
    }
  }
  if (!o.data.empty() && o.evaluation.empty())
    throw ConfigError("--data is used only with --evaluation (the held-out counts it scored)");
  if (!o.neurons.empty() && o.data.empty())
    throw ConfigError("--neurons needs --evaluation and --data");
  if (!o.evaluation.empty())
    require_hdf5("--evaluation", o.evaluation, {"/cosmoothing/rates"},
                 "an evaluation file of spikevi evaluate");
  if (!o.data.empty()) {
    const Hdf5File data =
        require_hdf5("--data", o.data, {"/counts", "/split/test_trials", "/split/heldout_neurons"},
                     "a data file with /counts and /split");
    if (!o.neurons.empty()) {
      const std::vector<std::int64_t> heldout = data.read_integers("/split/heldout_neurons");
      const std::set<std::int64_t> known(heldout.begin(), heldout.end());
      for (long long neuron : parse_indices("--neurons", o.neurons))
        if (!known.count(neuron))
          throw ConfigError("--neurons: neuron " + std::to_string(neuron) + " is not held out in " +
                            o.data + " (/split/heldout_neurons)");
    }
  }
  if (!o.sbc.empty()) require_hdf5("--sbc", o.sbc, {"/sbc"}, "an SBC file of spikevi sbc");
  if (!o.comparison.empty())
    require_csv("--comparison", o.comparison,
                {"observation", "family", "cobps", "heldout_ll_per_spike"},
                "a table of spikevi compare --table");
  if (!o.family_check.empty()) {
    if (Hdf5File::has_hdf5_signature(o.family_check))
      require_hdf5("--family-check", o.family_check, {"/families"},
                   "a family-check file of spikevi family-check");
    else
      require_csv("--family-check", o.family_check, {}, "FAMILY.h5 or a CSV with a header line");
  }
  if (!o.scaling.empty())
    require_csv("--scaling", o.scaling, {"ranks", "speedup", "efficiency"},
                "perf/strong_scaling.py's scaling.csv");
}

// The companion script: $SPIKEVI_REPORT_SCRIPT, else installed beside the binary
// (BINDIR/../DATADIR/spikevi), else the source tree this binary was built from.
std::string report_script() {
  if (const char* chosen = std::getenv("SPIKEVI_REPORT_SCRIPT")) {
    std::error_code error;
    if (!fs::is_regular_file(chosen, error))
      throw ConfigError(std::string("SPIKEVI_REPORT_SCRIPT=") + chosen + ": no such file");
    return chosen;
  }
  std::error_code error;
  const fs::path binary = fs::read_symlink("/proc/self/exe", error);
  std::vector<fs::path> candidates;
  if (!error) candidates.push_back(binary.parent_path() / SPIKEVI_REPORT_SCRIPT_INSTALLED);
  candidates.emplace_back(SPIKEVI_REPORT_SCRIPT_SOURCE);
  for (const fs::path& candidate : candidates)
    if (fs::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
  throw ConfigError(
      "the report script spikevi_report.py is neither installed beside the "
      "binary nor in " SPIKEVI_REPORT_SCRIPT_SOURCE "; set SPIKEVI_REPORT_SCRIPT to its path");
}

// The last non-empty line of a file (the script's error), "" if none.
std::string last_line(const std::string& path) {
  std::ifstream file(path);
  std::string line, last;
  while (std::getline(file, line))
    if (!line.empty()) last = line;
  return last;
}

// Runs the interpreter on the script with `arguments`; its stderr goes to `log`. Returns the
// exit status (128 + signal for a killed one).
int run_script(const std::string& python, const std::vector<std::string>& arguments,
               const std::string& log) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(python.c_str()));
  for (const std::string& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t child = 0;
  const int spawned = posix_spawn(&child, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    throw ConfigError("cannot run " + python + " for the report: " + std::strerror(spawned) +
                      " (install Debian's python3, or set SPIKEVI_PYTHON)");
  int status = 0;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR)
      throw Error("waiting for the report script: " + std::string(std::strerror(errno)));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void draw(const ReportOptions& o, const std::string& page) {
  const char* chosen_python = std::getenv("SPIKEVI_PYTHON");
  const std::string python = chosen_python ? chosen_python : "/usr/bin/python3";
  const std::string script = report_script();
  const std::string built_by =
      "spikevi " + std::string(version()) + " (git revision " + std::string(git_revision()) + ")";
  std::vector<std::string> arguments{script,    "--fit", o.fit,       "--out", page,
                                     "--title", o.title, "--version", built_by};
  const std::pair<const char*, const std::string*> optional[] = {
      {"--evaluation", &o.evaluation},
      {"--data", &o.data},
      {"--sbc", &o.sbc},
      {"--comparison", &o.comparison},
      {"--family-check", &o.family_check},
      {"--scaling", &o.scaling},
      {"--trials", &o.trials},
      {"--neurons", &o.neurons}};
  for (const auto& [option, value] : optional)
    if (!value->empty()) arguments.insert(arguments.end(), {option, *value});
  const std::string log = page + ".log";
  int status = 0;
  try {
    status = run_script(python, arguments, log);
  } catch (...) {
    remove_quietly(log);
    throw;
  }
  const std::string reason = last_line(log);
  remove_quietly(log);
  if (status == 3) throw InputError(reason);
  if (status != 0)
    throw Error("the report script " + script + " failed (exit " + std::to_string(status) +
                "): " + (reason.empty() ? "no message" : reason));
  if (!fs::is_regular_file(page)) throw Error("the report script " + script + " wrote no page");
}

}  // namespace

int run_report(const CommandContext& context) {
  ReportOptions o;
  po::options_description options = report_options(o);
  po::variables_map values;
  if (!parse_options("report",
                     "Turns a fit and, when given, its evaluation, SBC, comparison, family-check "
                     "and strong-scaling outputs into one self-contained HTML page: ELBO trace, "
                     "latent trajectories with 95% bands, predicted rates against held-out "
                     "counts, coverage curves, SBC rank histograms and ECDF differences, the "
                     "comparison table and the strong-scaling plot (figures by matplotlib, "
                     "embedded as PNG; a section whose input is not given says so).",
                     options, context, values))
    return 0;
  run_on_root(context, [&] {
    check_output_path("--out", o.out, o.overwrite);
    const std::pair<const char*, const std::string*> inputs[] = {
        {"--fit", &o.fit},
        {"--evaluation", &o.evaluation},
        {"--data", &o.data},
        {"--sbc", &o.sbc},
        {"--comparison", &o.comparison},
        {"--family-check", &o.family_check},
        {"--scaling", &o.scaling}};
    for (const auto& [option, path] : inputs)
      if (!path->empty()) check_output_is_not_input("--out", o.out, option, *path);
    check_inputs(o);
    // Not write_atomically, which reports every InputError of the writer as an output failure:
    // here the writer is the script, whose InputError is about an input.
    const std::string page = temporary_path_for(o.out);
    try {
      draw(o, page);
    } catch (...) {
      remove_quietly(page);
      throw;
    }
    rename_into_place(page, o.out);
    std::printf("wrote %s\n", o.out.c_str());
  });
  return 0;
}

}  // namespace spikevi::cli
