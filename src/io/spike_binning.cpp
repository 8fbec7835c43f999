#include "spikevi/io/spike_binning.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

// An edge is start + t * width with the product rounded before the sum, as numpy and any user
// script compute it; a fused multiply-add (which -march=native lets GCC contract this into)
// rounds once and moves some edges by one ulp, onto or off a spike stored at that time.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace spikevi {

int whole_bins(const TimeWindow& window, double width) {
  if (!(width > 0.0) || !(window.length() > 0.0)) return 0;
  const double bins = std::floor(window.length() / width + kWholeBinTolerance);
  return bins >= std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                                 : static_cast<int>(bins);
}

double bin_edge(double start, double width, int t) {
  return start + static_cast<double>(t) * width;
}

std::vector<int> bin_spike_times(std::span<const double> spike_times, double start, double width,
                                 int bins) {
  std::vector<int> counts(static_cast<std::size_t>(std::max(bins, 0)), 0);
  // first_at(e) = number of spikes before e; bin t holds first_at(e_{t+1}) - first_at(e_t).
  auto first_at = [&](double edge) {
    return std::lower_bound(spike_times.begin(), spike_times.end(), edge) - spike_times.begin();
  };
  std::ptrdiff_t before = first_at(bin_edge(start, width, 0));
  for (int t = 0; t < bins; ++t) {
    const std::ptrdiff_t after = first_at(bin_edge(start, width, t + 1));
    counts[static_cast<std::size_t>(t)] = static_cast<int>(after - before);
    before = after;
  }
  return counts;
}

std::vector<TimeWindow> aligned_windows(std::span<const double> events, double before,
                                        double after) {
  std::vector<TimeWindow> windows;
  windows.reserve(events.size());
  for (double event : events) windows.push_back({event - before, event + after});
  return windows;
}

std::vector<TimeWindow> consecutive_windows(const TimeWindow& span, double length) {
  std::vector<TimeWindow> windows;
  if (!(length > 0.0)) return windows;
  const int pieces = whole_bins(span, length);
  for (int k = 0; k < pieces; ++k)
    windows.push_back({bin_edge(span.start, length, k), bin_edge(span.start, length, k + 1)});
  return windows;
}

std::optional<TimeWindow> first_uncovered(std::span<const TimeWindow> intervals,
                                          const TimeWindow& window) {
  std::vector<TimeWindow> sorted(intervals.begin(), intervals.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const TimeWindow& a, const TimeWindow& b) { return a.start < b.start; });
  double covered_to = window.start;  // [window.start, covered_to] is covered so far
  for (const TimeWindow& interval : sorted) {
    if (covered_to >= window.stop) break;
    if (interval.start > covered_to) break;  // a gap at covered_to
    covered_to = std::max(covered_to, interval.stop);
  }
  if (covered_to >= window.stop) return std::nullopt;
  // The gap runs from covered_to to the next interval's start (or the window's end).
  double gap_end = window.stop;
  for (const TimeWindow& interval : sorted)
    if (interval.start > covered_to) {
      gap_end = std::min(gap_end, interval.start);
      break;
    }
  return TimeWindow{covered_to, gap_end};
}

std::vector<double> interpolate_at(std::span<const double> times, std::span<const double> values,
                                   int channels, std::span<const double> query, double max_gap) {
  const auto width = static_cast<std::size_t>(channels);
  std::vector<double> out(query.size() * width, std::numeric_limits<double>::quiet_NaN());
  if (times.empty()) return out;
  for (std::size_t q = 0; q < query.size(); ++q) {
    const double x = query[q];
    if (!(x >= times.front() && x <= times.back())) continue;
    // hi: the first sample at or after x; lo the one before it (or hi itself on a sample).
    const auto hi =
        static_cast<std::size_t>(std::lower_bound(times.begin(), times.end(), x) - times.begin());
    const std::size_t lo = times[hi] == x ? hi : hi - 1;
    if (max_gap > 0.0 && times[hi] - times[lo] > max_gap) continue;
    const double weight = hi == lo ? 0.0 : (x - times[lo]) / (times[hi] - times[lo]);
    for (std::size_t j = 0; j < width; ++j) {
      const double a = values[lo * width + j];
      const double b = values[hi * width + j];
      out[q * width + j] = hi == lo ? a : a + weight * (b - a);  // a NaN sample propagates
    }
  }
  return out;
}

std::vector<double> bin_centres(double start, double width, int bins) {
  std::vector<double> centres;
  centres.reserve(static_cast<std::size_t>(std::max(bins, 0)));
  for (int t = 0; t < bins; ++t) centres.push_back(bin_edge(start, width, t) + 0.5 * width);
  return centres;
}

}  // namespace spikevi
