#include "spikevi/io/nwb_file.hpp"

#include <cmath>
#include <cstdio>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", x);
  return text;
}

std::string element(const std::string& dataset, std::size_t i) {
  return dataset + "[" + std::to_string(i) + "]";
}

// "unit 3 (id 17)": the row of a Units table and its id.
std::string unit_label(const NwbUnits& units, std::size_t row) {
  return "unit " + std::to_string(row) + " (id " + std::to_string(units.ids[row]) + ")";
}

}  // namespace

NwbFile::NwbFile(const std::string& path) : file_(Hdf5File::open_read(path)) {
  if (!file_.has_attribute("/", "nwb_version"))
    refuse("/", "has no nwb_version attribute: not an NWB file");
  nwb_version_ = file_.read_string_attribute("/", "nwb_version");
}

void NwbFile::refuse(const std::string& object, const std::string& what) const {
  throw InputError(path() + ": " + object + ": " + what);
}

std::string NwbFile::text_or_empty(const std::string& dataset) const {
  if (!file_.exists(dataset) || file_.element_class(dataset) != Hdf5File::ElementClass::kString)
    return "";
  const std::vector<std::string> texts = file_.read_strings(dataset);
  return texts.empty() ? "" : texts.front();
}

void NwbFile::require_table(const std::string& table, const std::string& what) const {
  if (file_.exists(table)) return;
  std::string tables;
  if (file_.exists("/intervals"))
    for (const std::string& name : file_.list_children("/intervals"))
      tables += (tables.empty() ? "" : ", ") + std::string("/intervals/") + name;
  refuse(table, "does not exist (" + what +
                    "; interval tables in this file: " + (tables.empty() ? "none" : tables) + ")");
}

std::string NwbFile::column_path(const std::string& table, const std::string& column) const {
  const std::string path = table + "/" + column;
  if (!file_.exists(path)) refuse(table, "has no column " + column);
  if (file_.exists(path + "_index"))
    refuse(path, "is a ragged column (it has " + column + "_index); one value per row is needed");
  const Hdf5File::Dims shape = file_.shape(path);
  const auto expected = static_cast<std::size_t>(rows(table));
  if (shape.size() != 1 || shape[0] != expected)
    refuse(path, "has shape " + format_dims(shape) + "; expected one value per row, [" +
                     std::to_string(expected) + "]");
  return path;
}

int NwbFile::rows(const std::string& table) const {
  if (file_.exists(table + "/id")) return static_cast<int>(file_.shape(table + "/id").at(0));
  for (const std::string& name : file_.list_children(table)) {
    const Hdf5File::Dims shape = file_.shape(table + "/" + name);
    if (!shape.empty()) return static_cast<int>(shape[0]);
  }
  refuse(table, "is not a table (no id and no columns)");
}

NwbUnits NwbFile::read_units(const std::string& table) const {
  if (!file_.exists(table)) refuse(table, "does not exist: the file has no Units table");
  const std::string times_path = table + "/spike_times";
  const std::string index_path = times_path + "_index";
  if (!file_.exists(times_path) || !file_.exists(index_path))
    refuse(table, "has no spike_times and spike_times_index columns: no units to import");
  if (file_.element_class(times_path) != Hdf5File::ElementClass::kFloat ||
      file_.shape(times_path).size() != 1)
    refuse(times_path, "must be 1-D floating-point seconds");
  const std::vector<double> times = file_.read_doubles(times_path);
  const std::vector<std::int64_t> index = file_.read_integers(index_path);
  if (index.empty()) refuse(index_path, "is empty: the table has no units");

  NwbUnits units;
  units.table = table;
  if (file_.exists(table + "/id")) units.ids = file_.read_integers(table + "/id");
  if (units.ids.size() != index.size()) {
    units.ids.resize(index.size());
    for (std::size_t i = 0; i < index.size(); ++i) units.ids[i] = static_cast<std::int64_t>(i);
  }
  // The whole index first: a bad offset would otherwise show as unsorted spike times.
  std::int64_t begin = 0;
  for (std::size_t u = 0; u < index.size(); ++u) {
    if (index[u] < begin)
      refuse(index_path, element(index_path, u) + " = " + std::to_string(index[u]) +
                             " is below the entry before it (" + std::to_string(begin) +
                             "): the index must be non-decreasing (cumulative end offsets)");
    if (static_cast<std::size_t>(index[u]) > times.size())
      refuse(index_path, element(index_path, u) + " = " + std::to_string(index[u]) +
                             " is beyond the " + std::to_string(times.size()) +
                             " values of spike_times");
    begin = index[u];
  }
  begin = 0;
  for (std::size_t u = 0; u < index.size(); ++u) {
    std::vector<double> unit_times(times.begin() + begin, times.begin() + index[u]);
    for (std::size_t i = 0; i < unit_times.size(); ++i) {
      const std::size_t at = static_cast<std::size_t>(begin) + i;
      if (!std::isfinite(unit_times[i]))
        refuse(times_path, element(times_path, at) + " = " + number(unit_times[i]) + " in " +
                               unit_label(units, u) + " is not a finite time");
      if (i > 0 && unit_times[i] < unit_times[i - 1])
        refuse(times_path, element(times_path, at) + " = " + number(unit_times[i]) + " in " +
                               unit_label(units, u) + " is before the spike before it (" +
                               number(unit_times[i - 1]) + "): spike times must be ascending");
    }
    units.spike_times.push_back(std::move(unit_times));
    begin = index[u];
  }
  if (static_cast<std::size_t>(begin) != times.size())
    refuse(index_path, "ends at " + std::to_string(begin) + " but spike_times holds " +
                           std::to_string(times.size()) + " values");

  const std::string observed_path = table + "/obs_intervals";
  units.observed.resize(index.size());
  if (!file_.exists(observed_path)) return units;
  units.has_observation_intervals = true;
  const std::string observed_index_path = observed_path + "_index";
  const Hdf5File::Dims shape = file_.shape(observed_path);
  if (shape.size() != 2 || shape[1] != 2)
    refuse(observed_path, "has shape " + format_dims(shape) + "; expected [intervals, 2]");
  if (!file_.exists(observed_index_path)) refuse(observed_index_path, "does not exist");
  const std::vector<double> bounds = file_.read_doubles(observed_path);
  const std::vector<std::int64_t> ends = file_.read_integers(observed_index_path);
  if (ends.size() != index.size())
    refuse(observed_index_path, "has " + std::to_string(ends.size()) + " entries for " +
                                    std::to_string(index.size()) + " units");
  begin = 0;
  for (std::size_t u = 0; u < ends.size(); ++u) {
    if (ends[u] < begin || static_cast<std::size_t>(ends[u]) > shape[0])
      refuse(observed_index_path, element(observed_index_path, u) + " = " +
                                      std::to_string(ends[u]) + " is not between " +
                                      std::to_string(begin) + " and " + std::to_string(shape[0]));
    for (auto i = static_cast<std::size_t>(begin); i < static_cast<std::size_t>(ends[u]); ++i) {
      const TimeWindow interval{bounds[2 * i], bounds[2 * i + 1]};
      if (!std::isfinite(interval.start) || !std::isfinite(interval.stop) ||
          interval.stop < interval.start)
        refuse(observed_path, element(observed_path, i) + " = [" + number(interval.start) + ", " +
                                  number(interval.stop) + "] of " + unit_label(units, u) +
                                  " is not an interval");
      units.observed[u].push_back(interval);
    }
    begin = ends[u];
  }
  return units;
}

std::vector<TimeWindow> NwbFile::read_intervals(const std::string& table) const {
  require_table(table, "the trial table, --trials");
  for (const char* column : {"start_time", "stop_time"})
    if (!file_.exists(table + "/" + column))
      refuse(table, std::string("has no ") + column +
                        " column: an interval table needs start_time and stop_time");
  const std::vector<double> start = read_numbers(table, "start_time");
  const std::vector<double> stop = read_numbers(table, "stop_time");
  std::vector<TimeWindow> windows;
  for (std::size_t k = 0; k < start.size(); ++k) {
    if (!std::isfinite(start[k]) || !std::isfinite(stop[k]) || stop[k] < start[k])
      refuse(table, "row " + std::to_string(k) + ": [start_time, stop_time) = [" +
                        number(start[k]) + ", " + number(stop[k]) + ") is not an interval");
    windows.push_back({start[k], stop[k]});
  }
  return windows;
}

std::vector<double> NwbFile::read_numbers(const std::string& table,
                                          const std::string& column) const {
  const std::string path = column_path(table, column);
  const Hdf5File::ElementClass type = file_.element_class(path);
  if (type != Hdf5File::ElementClass::kFloat && type != Hdf5File::ElementClass::kInteger)
    refuse(path, "is not a numeric column");
  return file_.read_doubles(path);
}

std::vector<std::int64_t> NwbFile::read_flags(const std::string& table,
                                              const std::string& column) const {
  const std::string path = column_path(table, column);
  const Hdf5File::ElementClass type = file_.element_class(path);
  if (type == Hdf5File::ElementClass::kFloat || type == Hdf5File::ElementClass::kString)
    refuse(path, "is not a boolean or integer column");
  return file_.read_integers_or_enum(path);
}

std::vector<std::string> NwbFile::read_labels(const std::string& table,
                                              const std::string& column) const {
  const std::string path = column_path(table, column);
  if (file_.element_class(path) == Hdf5File::ElementClass::kString) return file_.read_strings(path);
  std::vector<std::string> labels;
  for (std::int64_t flag : read_flags(table, column)) labels.emplace_back(flag ? "test" : "train");
  return labels;
}

NwbTimeSeries NwbFile::read_time_series(const std::string& path) const {
  const std::string data_path = path + "/data";
  if (!file_.exists(path)) refuse(path, "does not exist (--behavior names a TimeSeries group)");
  if (!file_.exists(data_path)) refuse(path, "has no data: not a TimeSeries");
  const Hdf5File::Dims shape = file_.shape(data_path);
  const Hdf5File::ElementClass type = file_.element_class(data_path);
  if (shape.empty() || shape.size() > 2 ||
      (type != Hdf5File::ElementClass::kFloat && type != Hdf5File::ElementClass::kInteger))
    refuse(data_path, "has shape " + format_dims(shape) +
                          "; expected numbers [samples] or [samples, channels]");
  NwbTimeSeries series;
  series.path = path;
  series.channels = shape.size() == 2 ? static_cast<int>(shape[1]) : 1;
  series.values = file_.read_doubles(data_path);
  if (file_.has_attribute(data_path, "unit"))
    series.unit = file_.read_string_attribute(data_path, "unit");
  const double conversion = file_.has_attribute(data_path, "conversion")
                                ? file_.read_double_attribute(data_path, "conversion")
                                : 1.0;
  const double offset = file_.has_attribute(data_path, "offset")
                            ? file_.read_double_attribute(data_path, "offset")
                            : 0.0;
  for (std::size_t i = 0; i < series.values.size(); ++i) {
    if (std::isinf(series.values[i]))
      refuse(data_path,
             "element " + std::to_string(i) + " is infinite (NaN marks a missing value)");
    series.values[i] = series.values[i] * conversion + offset;
  }

  const std::size_t samples = shape[0];
  const std::string timestamps_path = path + "/timestamps";
  const std::string starting_path = path + "/starting_time";
  if (file_.exists(timestamps_path)) {
    series.times = file_.read_doubles(timestamps_path);
    if (series.times.size() != samples)
      refuse(timestamps_path, "has " + std::to_string(series.times.size()) + " values for " +
                                  std::to_string(samples) + " samples of data");
  } else if (file_.exists(starting_path)) {
    const std::vector<double> start = file_.read_doubles(starting_path);
    if (start.size() != 1 || !file_.has_attribute(starting_path, "rate"))
      refuse(starting_path, "must be one number with a rate attribute (Hz)");
    const double rate = file_.read_double_attribute(starting_path, "rate");
    if (!(rate > 0.0) || !std::isfinite(rate))
      refuse(starting_path, "attribute rate = " + number(rate) + " is not a positive rate");
    for (std::size_t i = 0; i < samples; ++i)
      series.times.push_back(start[0] + static_cast<double>(i) / rate);
  } else {
    refuse(path, "has neither timestamps nor starting_time: no time base");
  }
  for (std::size_t i = 0; i < series.times.size(); ++i)
    if (!std::isfinite(series.times[i]) || (i > 0 && !(series.times[i] >= series.times[i - 1])))
      refuse(file_.exists(timestamps_path) ? timestamps_path : starting_path,
             "time " + std::to_string(i) + " = " + number(series.times[i]) +
                 " is not finite or before the one before it");
  return series;
}

}  // namespace spikevi
