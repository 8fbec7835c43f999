#pragma once
// Reading the parts of a Neurodata Without Borders (NWB 2.x) file that import-nwb needs, through
// io/hdf5_file: the Units table's spike times (and observation intervals), interval tables
// (/intervals/trials or any TimeIntervals table), their columns, and TimeSeries. NWB stores a
// table (hdmf DynamicTable) as a group of equally long 1-D datasets, one per column, an `id`
// dataset, and for a ragged column NAME the flat values NAME plus NAME_index, the cumulative end
// offset of each row's values. docs/commands.md#import-nwb lists what is refused; every message
// names the file and the dataset.
#include <cstdint>
#include <string>
#include <vector>

#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/io/spike_binning.hpp"

namespace spikevi {

// The sorted units of a Units table.
struct NwbUnits {
  std::string table;                             // e.g. "/units"
  std::vector<std::int64_t> ids;                 // TABLE/id (row numbers when absent)
  std::vector<std::vector<double>> spike_times;  // per unit, ascending seconds
  // per unit, its obs_intervals [start, stop] (seconds); empty vectors when the table has none
  std::vector<std::vector<TimeWindow>> observed;
  bool has_observation_intervals = false;
  int size() const { return static_cast<int>(spike_times.size()); }
};

// A TimeSeries resolved to one time per sample: values = data * conversion + offset.
struct NwbTimeSeries {
  std::string path;
  std::vector<double> times;   // seconds, ascending (timestamps, or starting_time + i / rate)
  std::vector<double> values;  // row-major samples x channels
  int channels = 0;
  std::string unit;  // data's `unit` attribute ("" when absent)
};

class NwbFile {
 public:
  // Opens read-only. Throws InputError for an unreadable file, and for an HDF5 file without the
  // root attribute nwb_version ("not an NWB file").
  explicit NwbFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::string& nwb_version() const { return nwb_version_; }
  // A scalar text dataset such as /identifier or /session_description; "" when absent.
  std::string text_or_empty(const std::string& dataset) const;

  // The Units table at `table`. Refuses a missing table or spike_times, zero units, a
  // spike_times_index that decreases or does not end at the number of spike times, NaN or
  // descending spike times within a unit, and malformed obs_intervals.
  NwbUnits read_units(const std::string& table = "/units") const;

  // Rows [start_time, stop_time) of an interval table; refuses a missing table (listing the
  // tables under /intervals), a missing start_time or stop_time column, a non-finite time and a
  // stop before its start.
  std::vector<TimeWindow> read_intervals(const std::string& table) const;

  // Rows of a table, from its id column (or, without one, its first column).
  int rows(const std::string& table) const;
  // A 1-D numeric column, one value per row; refuses a missing, ragged (COLUMN_index) or
  // wrongly sized one.
  std::vector<double> read_numbers(const std::string& table, const std::string& column) const;
  // A boolean (h5py's enum) or integer column, one value per row, as 0 / non-zero.
  std::vector<std::int64_t> read_flags(const std::string& table, const std::string& column) const;
  // A text column; an integer or boolean column reads as "train" (0) and "test" (non-zero).
  std::vector<std::string> read_labels(const std::string& table, const std::string& column) const;

  // The TimeSeries group at `path`: data [samples] or [samples, channels] with timestamps
  // [samples], or starting_time (scalar, attribute `rate` in Hz). Refuses a missing group or
  // data, a time base that is absent, not finite or not ascending, and ±Inf in data.
  NwbTimeSeries read_time_series(const std::string& path) const;

 private:
  std::string column_path(const std::string& table, const std::string& column) const;
  void require_table(const std::string& table, const std::string& what) const;
  [[noreturn]] void refuse(const std::string& object, const std::string& what) const;

  Hdf5File file_;
  std::string nwb_version_;
};

}  // namespace spikevi
