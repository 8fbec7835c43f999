// spikevi import-nwb: bin the sorted units of an NWB file into a spikevi input file
// (docs/commands.md#import-nwb): trials from an interval table, fixed windows around an event
// column, or consecutive pieces of the recording; a unit selection; behaviour resampled to the
// bins' centres; a split.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/io/nwb_file.hpp"
#include "spikevi/io/output_files.hpp"
#include "spikevi/io/spike_binning.hpp"
#include "spikevi/io/trial_split.hpp"

namespace spikevi::cli {
namespace {

struct ImportOptions {
  std::string nwb, out, trials = "/intervals/trials", align, units_column, split_column;
  double bin_width_s = 0.05, before_s = 0.0, after_s = 0.0, window_s = 0.0;
  double behavior_max_gap_s = 0.0, test_fraction = 0.2, heldout_fraction = 0.2;
  int min_spikes = 1;
  std::uint64_t seed = 1;
  std::vector<std::string> behavior;
  bool overwrite = false;
};

po::options_description import_options(ImportOptions& o) {
  po::options_description options("Import options");
  // clang-format off
  options.add_options()
      ("nwb", po::value(&o.nwb)->required(), "NWB 2.x file (HDF5) with a Units table")
      ("out", po::value(&o.out)->required(), "spikevi input file to write (HDF5)")
      ("bin-width", po::value(&o.bin_width_s)->default_value(o.bin_width_s, "0.05"),
       "bin width in seconds; bins are [start + t*w, start + (t+1)*w) from each trial's start, "
       "and a partial last bin is dropped")
      ("trials", po::value(&o.trials)->default_value(o.trials),
       "interval table of the trials (start_time, stop_time), e.g. /intervals/encoding_table")
      ("align", po::value(&o.align),
       "a time column of --trials: trials are the fixed windows [COLUMN - before, COLUMN + "
       "after) instead of [start_time, stop_time)")
      ("before", po::value(&o.before_s)->default_value(0.0), "with --align: seconds before the event")
      ("after", po::value(&o.after_s)->default_value(0.0), "with --align: seconds after the event")
      ("window", po::value(&o.window_s),
       "no trial table: cut the recording into consecutive pseudo-trials of this many seconds "
       "(the incomplete last one is dropped)")
      ("units", po::value(&o.units_column),
       "a boolean or integer column of the Units table: only units where it is true/non-zero")
      ("min-spikes", po::value(&o.min_spikes)->default_value(o.min_spikes),
       "only units with at least this many spikes inside the imported trials")
      ("behavior", po::value(&o.behavior)->composing(),
       "a TimeSeries (path of its group, e.g. /processing/behavior/Position/position), linearly "
       "interpolated to the bins' centres as /continuous/NAME (NAME: its last path component); "
       "may be repeated")
      ("behavior-max-gap", po::value(&o.behavior_max_gap_s)->default_value(0.0),
       "a bin whose centre lies between two behaviour samples more than this many seconds "
       "apart is missing (NaN); 0: no limit")
      ("test-fraction", po::value(&o.test_fraction)->default_value(o.test_fraction, "0.2"),
       "share of trials drawn into /split/test_trials (0: no train/test lists)")
      ("heldout-fraction", po::value(&o.heldout_fraction)->default_value(o.heldout_fraction, "0.2"),
       "share of neurons drawn into /split/heldout_neurons (0: none)")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed of the split")
      ("split-column", po::value(&o.split_column),
       "a column of --trials that gives the split instead of --test-fraction: 'train' trains, "
       "'test' or 'val' tests, other labels neither (an integer/boolean column: non-zero tests)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  return options;
}

std::string seconds(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", x);
  return text;
}

std::string window_text(const TimeWindow& w) {
  return "[" + seconds(w.start) + ", " + seconds(w.stop) + ")";
}

void check_options(const ImportOptions& o, const po::variables_map& values) {
  if (!(o.bin_width_s > 0.0) || !std::isfinite(o.bin_width_s))
    throw ConfigError("--bin-width must be a positive number of seconds (got " +
                      seconds(o.bin_width_s) + ")");
  const bool windowed = values.count("window") > 0;
  if (windowed && (!values["trials"].defaulted() || values.count("align")))
    throw ConfigError(
        "--window cuts the recording into pseudo-trials; it cannot be combined "
        "with --trials or --align");
  if (windowed && !(o.window_s >= o.bin_width_s))
    throw ConfigError("--window " + seconds(o.window_s) + " must hold at least one bin of " +
                      seconds(o.bin_width_s) + " s");
  if (windowed && values.count("split-column"))
    throw ConfigError("--split-column needs a trial table; pseudo-trials of --window have none");
  const bool aligned = values.count("align") > 0;
  if (!aligned && (!values["before"].defaulted() || !values["after"].defaulted()))
    throw ConfigError("--before and --after only apply with --align");
  if (aligned && !(o.before_s + o.after_s >= o.bin_width_s))
    throw ConfigError("--before + --after = " + seconds(o.before_s + o.after_s) +
                      " s must hold at least one bin of " + seconds(o.bin_width_s) + " s");
  if (o.min_spikes < 0) throw ConfigError("--min-spikes must be >= 0");
  for (const auto& [name, fraction] : {std::pair{"--test-fraction", o.test_fraction},
                                       std::pair{"--heldout-fraction", o.heldout_fraction}})
    if (!(fraction >= 0.0 && fraction < 1.0))
      throw ConfigError(std::string(name) + " must lie in [0, 1) (got " + seconds(fraction) + ")");
  if (o.behavior_max_gap_s < 0.0) throw ConfigError("--behavior-max-gap must be >= 0");
}

// The recording's time span: the union hull of the units' observation intervals, or without
// them the first to the last spike of any unit.
TimeWindow recording_span(const NwbUnits& units) {
  TimeWindow span{std::numeric_limits<double>::infinity(),
                  -std::numeric_limits<double>::infinity()};
  for (int u = 0; u < units.size(); ++u) {
    if (units.has_observation_intervals) {
      for (const TimeWindow& w : units.observed[static_cast<std::size_t>(u)]) {
        span.start = std::min(span.start, w.start);
        span.stop = std::max(span.stop, w.stop);
      }
    } else if (!units.spike_times[static_cast<std::size_t>(u)].empty()) {
      span.start = std::min(span.start, units.spike_times[static_cast<std::size_t>(u)].front());
      span.stop = std::max(span.stop, units.spike_times[static_cast<std::size_t>(u)].back());
    }
  }
  return span;
}

std::string span_origin(const NwbUnits& units) {
  return units.has_observation_intervals ? "the units' obs_intervals"
                                         : "the first to the last spike of any unit";
}

// One trial: the window it was cut from, its bins, and the table row it came from.
struct TrialWindow {
  TimeWindow window;
  int bins = 0;
  int row = 0;
};

std::vector<TrialWindow> trial_windows(const ImportOptions& o, const po::variables_map& values,
                                       const NwbFile& nwb, const NwbUnits& units) {
  std::vector<TimeWindow> windows;
  std::string source;
  if (values.count("window")) {
    windows = consecutive_windows(recording_span(units), o.window_s);
    source = "--window";
  } else if (values.count("align")) {
    nwb.read_intervals(o.trials);  // a trial table must still be one
    const std::vector<double> events = nwb.read_numbers(o.trials, o.align);
    for (std::size_t k = 0; k < events.size(); ++k)
      if (!std::isfinite(events[k]))
        throw InputError(nwb.path() + ": " + o.trials + "/" + o.align + "[" + std::to_string(k) +
                         "] = " + seconds(events[k]) + " is not a time to align to");
    windows = aligned_windows(events, o.before_s, o.after_s);
    source = o.trials + " aligned on " + o.align;
  } else {
    windows = nwb.read_intervals(o.trials);
    source = o.trials;
  }
  if (windows.empty())
    throw InputError(nwb.path() + ": " + source + ": no trials" +
                     (values.count("window") ? " (the recording is shorter than --window)" : ""));
  const TimeWindow span = recording_span(units);
  std::vector<TrialWindow> trials;
  for (std::size_t k = 0; k < windows.size(); ++k) {
    TrialWindow trial{windows[k], whole_bins(windows[k], o.bin_width_s), static_cast<int>(k)};
    if (trial.bins == 0)
      throw InputError(nwb.path() + ": " + source + ": trial " + std::to_string(k) + " " +
                       window_text(trial.window) + " is shorter than one bin of " +
                       seconds(o.bin_width_s) + " s");
    const double end = bin_edge(trial.window.start, o.bin_width_s, trial.bins);
    if (trial.window.start < span.start || end > span.stop)
      throw InputError(nwb.path() + ": " + source + ": trial " + std::to_string(k) + " " +
                       window_text(trial.window) + " lies outside the recording [" +
                       seconds(span.start) + ", " + seconds(span.stop) + "] (" +
                       span_origin(units) + ")");
    trials.push_back(trial);
  }
  return trials;
}

// Units kept by --units, in table order.
std::vector<int> units_in_column(const ImportOptions& o, const NwbFile& nwb,
                                 const NwbUnits& units) {
  std::vector<int> kept;
  if (o.units_column.empty()) {
    for (int u = 0; u < units.size(); ++u) kept.push_back(u);
    return kept;
  }
  const std::vector<std::int64_t> flags = nwb.read_flags(units.table, o.units_column);
  for (int u = 0; u < units.size(); ++u)
    if (flags[static_cast<std::size_t>(u)] != 0) kept.push_back(u);
  return kept;
}

// counts[u] = the unit's counts of every trial, N x T_k per trial once stacked.
std::vector<std::vector<std::vector<int>>> bin_units(const NwbUnits& units,
                                                     const std::vector<int>& selected,
                                                     const std::vector<TrialWindow>& trials,
                                                     double width) {
  std::vector<std::vector<std::vector<int>>> counts;
  for (int u : selected) {
    std::vector<std::vector<int>> per_trial;
    for (const TrialWindow& trial : trials)
      per_trial.push_back(bin_spike_times(units.spike_times[static_cast<std::size_t>(u)],
                                          trial.window.start, width, trial.bins));
    counts.push_back(std::move(per_trial));
  }
  return counts;
}

// Counts cannot be missing in the input format, so a kept unit must have been observed over
// every bin of every trial.
void check_observed(const NwbFile& nwb, const NwbUnits& units, const std::vector<int>& kept,
                    const std::vector<TrialWindow>& trials, double width) {
  if (!units.has_observation_intervals) return;
  for (int u : kept)
    for (std::size_t k = 0; k < trials.size(); ++k) {
      const TimeWindow binned{trials[k].window.start,
                              bin_edge(trials[k].window.start, width, trials[k].bins)};
      const auto gap = first_uncovered(units.observed[static_cast<std::size_t>(u)], binned);
      if (gap)
        throw InputError(nwb.path() + ": " + units.table + "/obs_intervals: unit " +
                         std::to_string(u) + " (id " +
                         std::to_string(units.ids[static_cast<std::size_t>(u)]) +
                         ") was not observed during " + window_text(*gap) + " of trial " +
                         std::to_string(k) + " " + window_text(binned) +
                         "; spike counts cannot be missing in a spikevi input file, so leave "
                         "the unit out (--units) or choose other trials");
    }
}

std::string last_component(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Each --behavior series at the bins' centres, channels x T_k per trial; returns the share of
// missing values per modality for the summary.
std::map<std::string, double> add_behavior(const ImportOptions& o, const NwbFile& nwb,
                                           const std::vector<TrialWindow>& trials, Dataset& data) {
  std::map<std::string, double> missing;
  for (const std::string& path : o.behavior) {
    const std::string name = last_component(path);
    if (name.empty() || data.continuous.count(name))
      throw ConfigError("--behavior " + path + ": the name /continuous/" + name +
                        " is empty or already taken by another --behavior");
    const NwbTimeSeries series = nwb.read_time_series(path);
    std::vector<Eigen::MatrixXd> per_trial;
    double absent = 0.0, total = 0.0;
    for (const TrialWindow& trial : trials) {
      const std::vector<double> centres =
          bin_centres(trial.window.start, o.bin_width_s, trial.bins);
      const std::vector<double> values = interpolate_at(
          series.times, series.values, series.channels, centres, o.behavior_max_gap_s);
      Eigen::MatrixXd y(series.channels, trial.bins);
      for (int t = 0; t < trial.bins; ++t)
        for (int j = 0; j < series.channels; ++j) {
          y(j, t) = values[static_cast<std::size_t>(t * series.channels + j)];
          absent += std::isnan(y(j, t)) ? 1.0 : 0.0;
          total += 1.0;
        }
      per_trial.push_back(std::move(y));
    }
    data.continuous[name] = std::move(per_trial);
    missing[name] = absent / total;
  }
  return missing;
}

Split make_split(const ImportOptions& o, const po::variables_map& values, const NwbFile& nwb,
                 int trials, int neurons) {
  if (values.count("split-column"))
    return labelled_split(nwb.read_labels(o.trials, o.split_column),
                          "--split-column " + o.trials + "/" + o.split_column, neurons,
                          o.heldout_fraction, o.seed);
  return random_split(trials, neurons, o.test_fraction, o.heldout_fraction, o.seed);
}

struct ImportRecord {
  std::vector<std::int64_t> unit_ids;
  std::vector<double> trial_start, trial_stop;
  std::vector<std::int64_t> trial_rows;
};

// Provenance (root attributes, as every output has), the options under /config, and what
// each trial and neuron came from under /meta (readers of the format ignore both).
void write_import(const std::string& path, const Dataset& data, const ImportRecord& record,
                  std::map<std::string, std::string> attributes,
                  const std::map<std::string, std::string>& options) {
  write_dataset(path, data, attributes);
  Hdf5File file = Hdf5File::open_read_write(path);
  file.create_group("/config");
  for (const auto& [key, value] : options) file.write_string_attribute("/config", key, value);
  file.write_int64("/meta/unit_id", record.unit_ids, {record.unit_ids.size()});
  file.write_int64("/meta/trial_row", record.trial_rows, {record.trial_rows.size()});
  file.write_doubles("/meta/trial_start_s", record.trial_start, {record.trial_start.size()});
  file.write_doubles("/meta/trial_stop_s", record.trial_stop, {record.trial_stop.size()});
  file.close();
  read_dataset(path);  // the file must be a valid input: refuse here, not in a later fit
}

int import_file(const CommandContext& context, const ImportOptions& o,
                const po::variables_map& values) {
  const NwbFile nwb(o.nwb);
  const NwbUnits units = nwb.read_units();
  const std::vector<TrialWindow> trials = trial_windows(o, values, nwb, units);

  const std::vector<int> in_column = units_in_column(o, nwb, units);
  const auto binned = bin_units(units, in_column, trials, o.bin_width_s);
  std::vector<int> kept;
  std::vector<std::size_t> kept_at;  // positions in `binned`
  for (std::size_t i = 0; i < in_column.size(); ++i) {
    long long total = 0;
    for (const auto& counts : binned[i])
      for (int c : counts) total += c;
    if (total >= o.min_spikes) {
      kept.push_back(in_column[i]);
      kept_at.push_back(i);
    }
  }
  if (kept.empty())
    throw InputError(nwb.path() + ": " + units.table + ": none of " + std::to_string(units.size()) +
                     " units is left after --units and " + "--min-spikes " +
                     std::to_string(o.min_spikes));
  check_observed(nwb, units, kept, trials, o.bin_width_s);

  Dataset data;
  data.trials = static_cast<int>(trials.size());
  data.neurons = static_cast<int>(kept.size());
  data.bin_width_s = o.bin_width_s;
  ImportRecord record;
  for (const TrialWindow& trial : trials) {
    data.bins = std::max(data.bins, trial.bins);
    data.trial_lengths.push_back(trial.bins);
    record.trial_start.push_back(trial.window.start);
    record.trial_stop.push_back(trial.window.stop);
    record.trial_rows.push_back(trial.row);
  }
  for (int u : kept) record.unit_ids.push_back(units.ids[static_cast<std::size_t>(u)]);
  for (std::size_t k = 0; k < trials.size(); ++k) {
    Eigen::MatrixXd counts(data.neurons, trials[k].bins);
    for (std::size_t n = 0; n < kept_at.size(); ++n)
      for (int t = 0; t < trials[k].bins; ++t)
        counts(static_cast<Eigen::Index>(n), t) =
            binned[kept_at[n]][k][static_cast<std::size_t>(t)];
    data.counts.push_back(std::move(counts));
  }
  const std::map<std::string, double> missing = add_behavior(o, nwb, trials, data);
  data.split = make_split(o, values, nwb, data.trials, data.neurons);

  std::map<std::string, std::string> attributes = provenance(context);
  attributes["source"] = o.nwb;
  attributes["converter"] = "spikevi import-nwb";
  attributes["nwb_version"] = nwb.nwb_version();
  attributes["nwb_identifier"] = nwb.text_or_empty("/identifier");
  attributes["nwb_session_description"] = nwb.text_or_empty("/session_description");
  attributes["nwb_session_start_time"] = nwb.text_or_empty("/session_start_time");
  std::map<std::string, std::string> options = option_values(values);
  for (const std::string& path : o.behavior)  // a list, which option_values leaves out
    options["behavior"] += (options["behavior"].empty() ? "" : " ") + path;
  write_atomically(o.out, [&](const std::string& path) {
    write_import(path, data, record, attributes, options);
  });

  double valid_bins = 0.0;
  for (int length : data.trial_lengths) valid_bins += length;
  const auto [shortest, longest] =
      std::minmax_element(data.trial_lengths.begin(), data.trial_lengths.end());
  std::printf(
      "spikevi import-nwb: wrote %s: %d trials x %d bins (%d-%d per trial) x %d neurons (of %d "
      "units), %.0f spikes (%.3f per bin and neuron), bins of %g s\n",
      o.out.c_str(), data.trials, data.bins, *shortest, *longest, data.neurons, units.size(),
      data.total_spikes(), data.total_spikes() / (data.neurons * valid_bins), data.bin_width_s);
  const Split& split = *data.split;
  std::printf("split: %zu train / %zu test trials, %zu held-out neurons\n",
              split.train_trials.size(), split.test_trials.size(), split.heldout_neurons.size());
  for (const auto& [name, share] : missing)
    std::printf("/continuous/%s: %d channels, %.1f%% of values missing\n", name.c_str(),
                static_cast<int>(data.continuous.at(name).front().rows()), 100.0 * share);
  return 0;
}

}  // namespace

int run_import_nwb(const CommandContext& context) {
  ImportOptions o;
  po::options_description options = import_options(o);
  po::variables_map values;
  if (!parse_options("import-nwb",
                     "Bins the sorted units (Units table) of an NWB 2.x file into a spikevi "
                     "input file: /counts [trials, bins, neurons], /trial_lengths, /split, "
                     "/continuous/NAME for --behavior, provenance and the options (/config), "
                     "and the unit ids and trial windows under /meta.",
                     options, context, values))
    return 0;
  check_options(o, values);
  check_output_path("--out", o.out, o.overwrite);
  check_output_is_not_input("--out", o.out, "--nwb", o.nwb);
  run_on_root(context, [&] { import_file(context, o, values); });
  return 0;
}

}  // namespace spikevi::cli
