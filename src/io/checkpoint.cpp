// Checkpoint files (DESIGN.md §5). Matrices are stored raw (column-major memory as a
// [cols, rows] dataset) so that a restart gets back the very bits it saved.
#include "spikevi/io/checkpoint.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/io/memory_limit.hpp"
#include "spikevi/io/output_files.hpp"
#include "spikevi/version.hpp"

namespace spikevi {
namespace {

// Format 2: the spike model's per-neuron parameters are generic row parameters
// (globals/row_parameters/NAME/...), no longer the negative binomial's spike_shapes.
constexpr const char* kFormat = "spikevi checkpoint 2";
constexpr int kTraceColumns = 9;
using Dims = Hdf5File::Dims;

// FNV-1a, 64 bits, over the bytes of the values added.
class Checksum {
 public:
  void add(const double* values, std::size_t count) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(values);
    for (std::size_t i = 0; i < count * sizeof(double); ++i) {
      hash_ ^= bytes[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  template <class Derived>
  void add(const Eigen::DenseBase<Derived>& m) {
    add(m.derived().data(), static_cast<std::size_t>(m.size()));
  }
  void add(const std::vector<double>& v) { add(v.data(), v.size()); }
  void add(double x) { add(&x, 1); }
  std::uint64_t value() const { return hash_; }
  std::string hex() const {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash_));
    return text;
  }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// ---- the part of the state every rank holds the same ----

std::vector<double> scalars_of(const FitState& s) {
  return {static_cast<double>(s.iteration),
          s.pending.rho,
          s.pending.scale,
          s.previous_elbo,
          static_cast<double>(s.unconverged_local_steps),
          s.converged ? 1.0 : 0.0};
}

std::vector<double> trace_of(const std::vector<IterationRecord>& trace) {
  std::vector<double> rows;
  for (const IterationRecord& r : trace) {
    const double row[kTraceColumns] = {static_cast<double>(r.iteration),
                                       r.elbo,
                                       r.elbo_per_spike,
                                       r.relative_change,
                                       r.seconds,
                                       r.local_iterations,
                                       static_cast<double>(r.batch_trials),
                                       r.rho,
                                       static_cast<double>(r.rejected_readout_rows)};
    rows.insert(rows.end(), row, row + kTraceColumns);
  }
  return rows;
}

std::vector<IterationRecord> trace_from(const std::vector<double>& rows) {
  std::vector<IterationRecord> trace;
  for (std::size_t i = 0; i + kTraceColumns <= rows.size(); i += kTraceColumns) {
    IterationRecord r;
    r.iteration = static_cast<int>(rows[i]);
    r.elbo = rows[i + 1];
    r.elbo_per_spike = rows[i + 2];
    r.relative_change = rows[i + 3];
    r.seconds = rows[i + 4];
    r.local_iterations = rows[i + 5];
    r.batch_trials = static_cast<int>(rows[i + 6]);
    r.rho = rows[i + 7];
    r.rejected_readout_rows = static_cast<int>(rows[i + 8]);
    trace.push_back(r);
  }
  return trace;
}

// Every matrix of the global state, by name, in a fixed order.
template <class State, class Visit>
void visit_globals(State& g, Visit&& visit) {
  visit("dynamics/M", g.dynamics.M);
  visit("dynamics/V", g.dynamics.V);
  visit("dynamics/Psi", g.dynamics.Psi);
  visit("dynamics_prior/M", g.dynamics_prior.M);
  visit("dynamics_prior/V", g.dynamics_prior.V);
  visit("dynamics_prior/Psi", g.dynamics_prior.Psi);
  visit("mu0", g.mu0);
  visit("Sigma0", g.Sigma0);
  visit("C", g.spikes.C);
  visit("d", g.spikes.d);
  visit("readout_precision", g.spikes.precision);
  visit("readout_prior/mean", g.spikes_prior.mean);
  visit("readout_prior/precision", g.spikes_prior.precision);
  for (auto& parameter : g.spike_parameters.parameters) {
    visit("row_parameters/" + parameter.spec.name + "/values", parameter.values);
    visit("row_parameters/" + parameter.spec.name + "/precision", parameter.precision);
  }
  if (g.mlp.hidden() > 0) {  // --readout mlp
    visit("mlp/A", g.mlp.A);
    visit("mlp/W", g.mlp.W);
    visit("mlp/b", g.mlp.b);
  }
  if (g.history.active()) {  // --history
    visit("history/B", g.history.B);
    visit("history/precision", g.history.precision);
  }
  for (auto& modality : g.continuous) {
    const std::string prefix = "continuous/" + modality.name + "/";
    visit(prefix + "W", modality.readout.C);
    visit(prefix + "e", modality.readout.d);
    visit(prefix + "precision", modality.readout.precision);
    visit(prefix + "R", modality.variances);
    visit(prefix + "second_moment", modality.statistics.second_moment);
    visit(prefix + "cross", modality.statistics.cross);
    visit(prefix + "sum_squares", modality.statistics.sum_squares);
    visit(prefix + "observed", modality.statistics.observed);
  }
}

// The optimiser's state arrays (Adam's moments), by name.
template <class State, class Visit>
void visit_optimizer(State& s, Visit&& visit) {
  for (auto& [name, values] : s.optimizer_state) visit(name, values);
}

// `trace_rows`: trace_of(s.trace) as rank 0 has it (the seconds differ between ranks).
std::string shared_checksum(const FitState& s, const std::vector<double>& trace_rows) {
  Checksum sum;
  visit_globals(s.globals, [&](const std::string&, const auto& m) { sum.add(m); });
  visit_optimizer(s, [&](const std::string&, const auto& m) { sum.add(m); });
  sum.add(s.globals.dynamics.nu);
  sum.add(s.globals.dynamics_prior.nu);
  sum.add(s.statistics);
  sum.add(s.row_damping);
  sum.add(scalars_of(s));
  sum.add(trace_rows);
  return sum.hex();
}

bool finite(const FitState& s) {
  bool ok = std::isfinite(s.globals.dynamics.nu);
  visit_globals(s.globals, [&](const std::string&, const auto& m) { ok = ok && m.allFinite(); });
  visit_optimizer(s, [&](const std::string&, const auto& m) { ok = ok && m.allFinite(); });
  for (double x : s.statistics) ok = ok && std::isfinite(x);
  for (const Sites& sites : s.sites)
    ok = ok && sites.precision.allFinite() && sites.shift.allFinite();
  return ok && s.row_damping.allFinite();
}

template <class Dense>
void put_raw(Hdf5File& file, const std::string& name, const Dense& m) {
  file.write_doubles(name, std::span<const double>(m.data(), static_cast<std::size_t>(m.size())),
                     {static_cast<std::size_t>(m.cols()), static_cast<std::size_t>(m.rows())});
}

template <class Dense>
void get_raw(const Hdf5File& file, const std::string& name, Dense& m) {
  const Dims dims = file.shape(name);
  if (dims.size() != 2) throw InputError(file.path() + ": " + name + ": not a raw matrix");
  const std::vector<double> values = file.read_doubles(name);
  m.resize(static_cast<Eigen::Index>(dims[1]), static_cast<Eigen::Index>(dims[0]));
  std::copy(values.begin(), values.end(), m.data());
}

// ---- each rank's sites: one row per trial, raw, NaN-padded to the longest trial ----

std::size_t precision_row(const CheckpointLayout& l) {
  return static_cast<std::size_t>(l.dim * l.dim * l.padded_bins);
}
std::size_t shift_row(const CheckpointLayout& l) {
  return static_cast<std::size_t>(l.dim * l.padded_bins);
}

std::vector<double> padded_rows(const std::vector<Sites>& sites, std::size_t row, bool precision) {
  std::vector<double> rows(sites.size() * row, std::nan(""));
  for (std::size_t k = 0; k < sites.size(); ++k) {
    const Eigen::MatrixXd& m = precision ? sites[k].precision : sites[k].shift;
    std::copy(m.data(), m.data() + m.size(), rows.begin() + static_cast<std::ptrdiff_t>(k * row));
  }
  return rows;
}

std::vector<std::int64_t> site_checksums(const std::vector<double>& precision,
                                         const std::vector<double>& shift,
                                         const CheckpointLayout& l) {
  std::vector<std::int64_t> sums;
  for (std::size_t k = 0; k < l.bins.size(); ++k) {
    Checksum sum;
    sum.add(precision.data() + k * precision_row(l), precision_row(l));
    sum.add(shift.data() + k * shift_row(l), shift_row(l));
    sums.push_back(static_cast<std::int64_t>(sum.value()));
  }
  return sums;
}

bool same_shapes(const OptimizerState& a, const OptimizerState& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, values] : a)
    if (!b.count(name) || b.at(name).rows() != values.rows() || b.at(name).cols() != values.cols())
      return false;
  return true;
}

// The shapes of a state of `layout.dim` latents and `layout.neurons` rows.
bool shapes_fit(const FitState& s, const CheckpointLayout& layout) {
  const Eigen::Index D = layout.dim, N = layout.neurons, P = layout.dim + 1;
  const Eigen::Index dynamics_columns = P + layout.model.inputs;
  auto is = [](const Eigen::MatrixXd& m, Eigen::Index rows, Eigen::Index cols) {
    return m.rows() == rows && m.cols() == cols;
  };
  const GlobalState& g = s.globals;
  const Eigen::Index DP = dynamics_columns;
  return is(g.dynamics.M, D, DP) && is(g.dynamics.V, DP, DP) && is(g.dynamics.Psi, D, D) &&
         is(g.dynamics_prior.M, D, DP) && is(g.dynamics_prior.V, DP, DP) &&
         is(g.dynamics_prior.Psi, D, D) && g.mu0.size() == D && is(g.Sigma0, D, D) &&
         is(g.spikes.C, N, D) && g.spikes.d.size() == N && is(g.spikes.precision, P, N * P) &&
         g.spikes_prior.mean.size() == P && is(g.spikes_prior.precision, P, P) &&
         s.row_damping.size() == N &&
         s.statistics.size() ==
             GlobalStatistics::zero(layout.dim, layout.neurons, layout.model).pack().size();
}

// The bytes a checkpoint of `state` takes, generously: its values at 8 bytes each, a quarter
// more and 256 KiB for HDF5's metadata.
double checkpoint_bytes(const FitState& state, const CheckpointLayout& layout) {
  double values = static_cast<double>(layout.population) *
                  static_cast<double>(precision_row(layout) + shift_row(layout) + 1);
  const auto count = [&](const std::string&, const auto& m) {
    values += static_cast<double>(m.size());
  };
  visit_globals(state.globals, count);
  visit_optimizer(state, count);
  values += static_cast<double>(state.statistics.size() + state.row_damping.size() +
                                state.trace.size() * kTraceColumns + 16);
  return 1.25 * 8.0 * values + 256.0 * 1024.0;
}

// Refuses (OutputError, on every rank) a checkpoint that the file system of `path` has no
// room for, before HDF5 writes any of it: a parallel write that runs out of space on one rank
// leaves the others waiting in a collective call.
void check_room_for(const std::string& path, const FitState& state, const CheckpointLayout& layout,
                    Communicator& comm) {
  double free_bytes = std::numeric_limits<double>::infinity();
  const double needed = checkpoint_bytes(state, layout);
  if (comm.is_root()) {
    std::error_code error;
    const std::filesystem::path folder = std::filesystem::absolute(path, error).parent_path();
    const std::filesystem::space_info space = std::filesystem::space(folder, error);
    if (!error) free_bytes = static_cast<double>(space.available);
  }
  comm.broadcast(std::span<double>(&free_bytes, 1), 0);
  if (free_bytes < needed)
    throw OutputError(path + ": no room for the checkpoint: it needs about " +
                      format_bytes(needed) + ", the file system has " + format_bytes(free_bytes) +
                      " free");
}

void write_file(const std::string& path, const FitState& state, const CheckpointLayout& layout,
                const CheckpointIdentity& identity, Communicator& comm) {
  std::vector<double> trace = trace_of(state.trace);
  comm.broadcast(trace, 0);  // every rank writes the same bytes: rank 0's timings
  Hdf5File file = Hdf5File::create(path, Hdf5Options{.mpi_io = comm.size() > 1});
  file.write_string_attribute("/", "format", kFormat);
  file.write_double_attribute("/", "iteration", state.iteration);
  file.write_double_attribute("/", "ranks", comm.size());
  file.write_double_attribute("/", "population", layout.population);
  file.write_string_attribute("/", "checksum", shared_checksum(state, trace));
  file.create_group("/config");
  for (const auto& [key, value] : identity) file.write_string_attribute("/config", key, value);
  visit_globals(state.globals, [&](const std::string& name, const auto& m) {
    put_raw(file, std::string("/globals/") + name, m);
  });
  visit_optimizer(state, [&](const std::string& name, const auto& m) {
    put_raw(file, std::string("/optimizer/") + name, m);
  });
  file.write_doubles(
      "/globals/nu",
      std::vector<double>{state.globals.dynamics.nu, state.globals.dynamics_prior.nu}, {2});
  file.write_doubles("/state/statistics", state.statistics, {state.statistics.size()});
  put_raw(file, "/state/row_damping", state.row_damping);
  const std::vector<double> scalars = scalars_of(state);
  file.write_doubles("/state/scalars", scalars, {scalars.size()});
  file.write_doubles("/state/trace", trace, {state.trace.size(), std::size_t{kTraceColumns}});

  const auto K = static_cast<std::size_t>(layout.population);
  const auto first = static_cast<std::size_t>(layout.first_position);
  const std::vector<double> precision = padded_rows(state.sites, precision_row(layout), true);
  const std::vector<double> shift = padded_rows(state.sites, shift_row(layout), false);
  file.create_dataset("/sites/precision", {K, precision_row(layout)},
                      Hdf5File::ElementType::kFloat64, {1, precision_row(layout)});
  file.create_dataset("/sites/shift", {K, shift_row(layout)}, Hdf5File::ElementType::kFloat64,
                      {1, shift_row(layout)});
  file.create_dataset("/sites/checksum", {K}, Hdf5File::ElementType::kInt64);
  file.write_rows("/sites/precision", first, state.sites.size(), precision);
  file.write_rows("/sites/shift", first, state.sites.size(), shift);
  const std::vector<std::int64_t> sums = site_checksums(precision, shift, layout);
  file.write_rows("/sites/checksum", first, state.sites.size(),
                  std::span<const std::int64_t>(sums));
  // Last, so that the unchecked provenance lands at the end of the file, not amid the
  // checksummed data a damaged file is detected by (test_checkpoint damages the middle).
  file.write_string_attribute("/", "version", version());
  file.write_string_attribute("/", "git_revision", git_revision());
  file.close();
}

// ---- reading ----

// The names and shapes of the optimiser's state for this layout.
OptimizerState optimizer_template(const CheckpointLayout& layout) {
  ModelSettings settings;
  settings.optimizer = layout.model.adam ? OptimizerKind::kAdam : OptimizerKind::kNatural;
  OptimizerState state =
      make_optimizer(settings, layout.dim, layout.neurons,
                     static_cast<int>(layout.model.row_parameters.size()), layout.model.hidden)
          ->state();
  for (const auto& [name, shape] : layout.extra_state) state[name] = shape;
  return state;
}

enum class Verdict { kValid = 0, kCorrupt = 1, kOtherSettings = 2 };

struct Attempt {
  Verdict verdict = Verdict::kValid;
  std::string message;
  LoadedCheckpoint loaded;
};

Attempt read_file(const std::string& path, const CheckpointLayout& layout,
                  const CheckpointIdentity& identity) {
  Attempt attempt;
  try {
    const Hdf5File file = Hdf5File::open_read(path);
    if (!file.has_attribute("/", "format") || file.read_string_attribute("/", "format") != kFormat)
      return {Verdict::kCorrupt, path + ": not a spikevi checkpoint", {}};
    for (const auto& [key, value] : identity) {
      const std::string saved = file.has_attribute("/config", key)
                                    ? file.read_string_attribute("/config", key)
                                    : std::string("(not recorded)");
      if (saved != value)
        return {Verdict::kOtherSettings,
                path + " belongs to another fit: it was written with " + key + " = " + saved +
                    ", this fit has " + key + " = " + value +
                    " (use another --out, or delete the checkpoint to start afresh)",
                {}};
    }
    FitState& s = attempt.loaded.state;
    s.globals = make_prior_state(layout.dim, layout.neurons, PriorSettings{}, layout.model);
    visit_globals(s.globals, [&](const std::string& name, auto& m) {
      get_raw(file, std::string("/globals/") + name, m);
    });
    s.optimizer_state = optimizer_template(layout);
    visit_optimizer(s, [&](const std::string& name, auto& m) {
      get_raw(file, std::string("/optimizer/") + name, m);
    });
    const std::vector<double> nu = file.read_doubles("/globals/nu");
    if (nu.size() != 2) return {Verdict::kCorrupt, path + ": /globals/nu is damaged", {}};
    s.globals.dynamics.nu = nu[0];
    s.globals.dynamics_prior.nu = nu[1];
    s.statistics = file.read_doubles("/state/statistics");
    get_raw(file, "/state/row_damping", s.row_damping);
    const std::vector<double> scalars = file.read_doubles("/state/scalars");
    if (scalars.size() != 6) return {Verdict::kCorrupt, path + ": /state/scalars is damaged", {}};
    s.iteration = static_cast<int>(scalars[0]);
    s.pending = GlobalStepSize{scalars[1], scalars[2]};
    s.previous_elbo = scalars[3];
    s.unconverged_local_steps = static_cast<int>(scalars[4]);
    s.converged = scalars[5] != 0.0;
    const std::vector<double> trace = file.read_doubles("/state/trace");
    s.trace = trace_from(trace);
    if (!shapes_fit(s, layout) || !same_shapes(s.optimizer_state, optimizer_template(layout)))
      return {Verdict::kCorrupt, path + ": its arrays do not have the shapes of this fit", {}};
    if (shared_checksum(s, trace) != file.read_string_attribute("/", "checksum"))
      return {Verdict::kCorrupt, path + ": the checksum of the global state does not match", {}};

    const auto first = static_cast<std::size_t>(layout.first_position);
    const std::size_t count = layout.bins.size();
    const std::vector<double> precision = file.read_doubles("/sites/precision", first, count);
    const std::vector<double> shift = file.read_doubles("/sites/shift", first, count);
    const std::vector<std::int64_t> saved = file.read_integers("/sites/checksum", first, count);
    if (precision.size() != count * precision_row(layout) ||
        shift.size() != count * shift_row(layout) ||
        site_checksums(precision, shift, layout) != saved)
      return {Verdict::kCorrupt,
              path + ": the sites of trials " + std::to_string(first) + ".." +
                  std::to_string(first + count - 1) + " are damaged",
              {}};
    for (std::size_t k = 0; k < count; ++k) {
      const int T = layout.bins[k];
      Sites sites{Eigen::MatrixXd(layout.dim, layout.dim * T), Eigen::MatrixXd(layout.dim, T)};
      std::copy_n(precision.begin() + static_cast<std::ptrdiff_t>(k * precision_row(layout)),
                  sites.precision.size(), sites.precision.data());
      std::copy_n(shift.begin() + static_cast<std::ptrdiff_t>(k * shift_row(layout)),
                  sites.shift.size(), sites.shift.data());
      s.sites.push_back(std::move(sites));
    }
    attempt.loaded.path = path;
    attempt.loaded.ranks = static_cast<int>(file.read_double_attribute("/", "ranks"));
  } catch (const std::exception& error) {  // HDF5 errors, absurd extents (bad_alloc), ...
    return {Verdict::kCorrupt, path + ": " + error.what(), {}};
  }
  return attempt;
}

}  // namespace

std::string previous_checkpoint_path(const std::string& path) { return path + ".prev"; }

std::string data_fingerprint(const std::vector<TrialCounts>& trials, Communicator& comm) {
  // Sums of the four 16-bit pieces of each trial's hash: exact in doubles for any K < 2^37.
  double pieces[4] = {0.0, 0.0, 0.0, 0.0};
  for (const TrialCounts& trial : trials) {
    Checksum sum;
    sum.add(static_cast<double>(trial.position));
    sum.add(static_cast<double>(trial.counts.cols()));
    sum.add(trial.counts.data(), static_cast<std::size_t>(trial.counts.size()));
    for (int i = 0; i < 4; ++i)
      pieces[i] += static_cast<double>((sum.value() >> (16 * i)) & 0xffff);
  }
  comm.allreduce_sum(std::span<double>(pieces, 4));
  std::ostringstream text;
  text << std::hex;
  for (double piece : pieces) text << static_cast<unsigned long long>(piece) << '.';
  return text.str();
}

void write_checkpoint(const std::string& path, const FitState& state,
                      const CheckpointLayout& layout, const CheckpointIdentity& identity,
                      Communicator& comm, bool current_is_valid) {
  double non_finite = finite(state) ? 0.0 : 1.0;
  comm.allreduce_max(std::span<double>(&non_finite, 1));
  if (non_finite > 0)
    throw NumericalError("checkpoint: the state after iteration " +
                         std::to_string(state.iteration) +
                         " is not finite; the previous checkpoint is kept");
  const std::string temporary = path + ".tmp";
  check_room_for(path, state, layout, comm);
  if (comm.is_root()) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
  }
  comm.barrier();
  try {
    write_file(temporary, state, layout, identity, comm);
  } catch (...) {  // a full disk, a vanished folder: no half-written checkpoint is left
    if (comm.is_root()) remove_quietly(temporary);
    rethrow_as_output_failure();
  }
  comm.barrier();  // every rank has closed the file
  // Rank 0: the current checkpoint becomes the previous one by a hard link (or, when it is not
  // a valid checkpoint of this fit, is moved aside to NAME.old, leaving the previous one), then
  // the new one replaces it by rename(2): `path` is never missing or half written.
  double failed = 0.0;
  std::string message;
  if (comm.is_root()) {
    namespace fs = std::filesystem;
    std::error_code error;
    const std::string previous = previous_checkpoint_path(path);
    if (fs::exists(path, error) && current_is_valid) {
      fs::remove(previous, error);
      fs::create_hard_link(path, previous, error);
      if (error) fs::copy_file(path, previous, fs::copy_options::overwrite_existing, error);
    } else if (fs::exists(path, error)) {
      fs::rename(path, path + ".old", error);
    }
    if (!error) fs::rename(temporary, path, error);
    if (error) {
      failed = 1.0;
      message = error.message();
    }
  }
  comm.broadcast(std::span<double>(&failed, 1), 0);
  if (failed > 0)
    throw OutputError(path + ": cannot move the new checkpoint into place" +
                      (message.empty() ? std::string() : ": " + message));
}

std::optional<LoadedCheckpoint> read_checkpoint(const std::string& path,
                                                const CheckpointLayout& layout,
                                                const CheckpointIdentity& identity,
                                                Communicator& comm) {
  for (const std::string& candidate : {path, previous_checkpoint_path(path)}) {
    double present = std::filesystem::exists(candidate) ? 1.0 : 0.0;
    comm.allreduce_max(std::span<double>(&present, 1));
    if (present == 0.0) continue;
    Attempt attempt = read_file(candidate, layout, identity);
    double verdict = static_cast<double>(attempt.verdict);
    comm.allreduce_max(std::span<double>(&verdict, 1));
    if (verdict == static_cast<double>(Verdict::kValid)) return std::move(attempt.loaded);
    if (verdict == static_cast<double>(Verdict::kOtherSettings)) {
      if (attempt.verdict == Verdict::kOtherSettings) throw ConfigError(attempt.message);
      throw ConfigError(candidate + " belongs to another fit (see rank 0's message)");
    }
    // One warning: rank 0's reason, or else that of the ranks that saw the damage.
    double root_saw_it = attempt.verdict != Verdict::kValid ? 1.0 : 0.0;
    comm.broadcast(std::span<double>(&root_saw_it, 1), 0);
    if (attempt.verdict != Verdict::kValid && (comm.is_root() || root_saw_it == 0.0))
      std::cerr << "spikevi: warning: skipping checkpoint " << attempt.message
                << (comm.is_root() ? "" : " (rank " + std::to_string(comm.rank()) + ")")
                << std::endl;
  }
  return std::nullopt;
}

}  // namespace spikevi
