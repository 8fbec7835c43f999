#pragma once
// From a recording's spike times (seconds) to counts per time bin: the windows of the trials,
// the bins inside each, the counts, the check that a window lies where a unit was observed, and
// the resampling of a behavioural signal to the bins' centres. Pure functions on plain vectors
// (import-nwb's numerics, docs/commands.md#import-nwb); nothing here reads a file.
//
// Bins are half-open: bin t of a window starting at `start` is [e_t, e_{t+1}) with the edge
// e_t = start + t * width computed in that order in double precision, and a window holds the
// whole bins that fit in it; a partial last bin is dropped.
#include <optional>
#include <span>
#include <vector>

namespace spikevi {

// A stretch of time [start, stop) in seconds.
struct TimeWindow {
  double start = 0.0;
  double stop = 0.0;
  double length() const { return stop - start; }
};

// Stored times are rounded (pynwb writes float64 seconds computed from clock ticks), so a
// window of exactly k bins may measure k bins minus a rounding error: a window holds
// floor(length / width + kWholeBinTolerance) bins.
inline constexpr double kWholeBinTolerance = 1e-9;

// The whole bins of `width` seconds in `window` (0 for an empty or reversed window).
int whole_bins(const TimeWindow& window, double width);

// The edge e_t = start + t * width.
double bin_edge(double start, double width, int t);

// counts[t] = number of spike times s with e_t <= s < e_{t+1}, t = 0 .. bins-1, for ascending
// `spike_times` (two binary searches per edge: O(bins log spikes)).
std::vector<int> bin_spike_times(std::span<const double> spike_times, double start, double width,
                                 int bins);

// Windows [event - before, event + after) around each event time, in the events' order.
std::vector<TimeWindow> aligned_windows(std::span<const double> events, double before,
                                        double after);

// Consecutive windows [span.start + k * length, span.start + (k + 1) * length) that fit inside
// `span`; the incomplete piece at the end is dropped.
std::vector<TimeWindow> consecutive_windows(const TimeWindow& span, double length);

// The first stretch of `window` not covered by the union of `intervals` (closed intervals
// [start, stop], any order, overlapping or touching ones merged); nullopt when covered.
std::optional<TimeWindow> first_uncovered(std::span<const TimeWindow> intervals,
                                          const TimeWindow& window);

// Linear interpolation of a sampled signal at `query` times. `times` ascending (size S),
// `values` row-major S x channels. A query outside [times.front(), times.back()], or between
// two samples more than `max_gap` seconds apart (max_gap <= 0: no limit), or next to a NaN
// sample, is NaN. A query equal to a sample time takes that sample. Returns row-major
// queries x channels.
std::vector<double> interpolate_at(std::span<const double> times, std::span<const double> values,
                                   int channels, std::span<const double> query, double max_gap);

// The centres e_t + width / 2 of a window's bins.
std::vector<double> bin_centres(double start, double width, int bins);

}  // namespace spikevi
