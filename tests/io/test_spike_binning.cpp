#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "spikevi/io/spike_binning.hpp"

namespace spikevi {
namespace {

TEST(SpikeBinning, CountsHandComputedBinsHalfOpen) {
  // Bins of 0.5 s from 1.0: [1.0,1.5) [1.5,2.0) [2.0,2.5) [2.5,3.0).
  const std::vector<double> spikes{0.2, 1.0, 1.2, 1.49, 1.5, 2.0, 2.0, 2.7, 3.0, 3.1};
  const std::vector<int> counts = bin_spike_times(spikes, 1.0, 0.5, 4);
  // 1.0 opens bin 0; 1.5 and 2.0 open bins 1 and 2; 3.0 is the right edge, outside.
  EXPECT_EQ(counts, (std::vector<int>{3, 1, 2, 1}));
}

TEST(SpikeBinning, EmptyUnitAndNoBins) {
  EXPECT_EQ(bin_spike_times({}, 0.0, 0.1, 3), (std::vector<int>{0, 0, 0}));
  EXPECT_TRUE(bin_spike_times(std::vector<double>{0.05}, 0.0, 0.1, 0).empty());
}

TEST(SpikeBinning, EdgesAreStartPlusTTimesWidth) {
  // A spike exactly on an edge computed as start + t * width belongs to bin t.
  const double start = 12.345, width = 0.05;
  const std::vector<double> spikes{bin_edge(start, width, 1), bin_edge(start, width, 7)};
  const std::vector<int> counts = bin_spike_times(spikes, start, width, 8);
  EXPECT_EQ(counts[1], 1);
  EXPECT_EQ(counts[7], 1);
  EXPECT_EQ(counts[0] + counts[6], 0);
}

TEST(SpikeBinning, EdgesRoundTheProductThenTheSum) {
  // 0.0085 + 3 * 0.05 is 0.15850000000000003 in two roundings (numpy's edges) but 0.1585 in
  // one (a fused multiply-add): a spike stored at 0.1585 lies in bin 2, below edge 3.
  EXPECT_EQ(bin_edge(0.0085, 0.05, 3), 0.15850000000000003);
  EXPECT_EQ(bin_spike_times(std::vector<double>{0.1585}, 0.0085, 0.05, 4),
            (std::vector<int>{0, 0, 1, 0}));
}

TEST(SpikeBinning, WholeBinsDropThePartialLastBin) {
  EXPECT_EQ(whole_bins({0.0, 1.0}, 0.3), 3);   // 0.1 s left over is dropped
  EXPECT_EQ(whole_bins({0.0, 0.29}, 0.3), 0);  // shorter than one bin
  EXPECT_EQ(whole_bins({2.0, 1.0}, 0.3), 0);   // reversed
  EXPECT_EQ(whole_bins({0.0, 1.0}, 0.0), 0);   // no width
  // A window of exactly 3 bins whose length rounds to a hair under 3 bins still holds 3.
  const double start = 1.3, stop = 1.3 + 7 * 0.1;  // (stop - start) / 0.1 = 6.999999999999999
  EXPECT_LT((stop - start) / 0.1, 7.0);
  EXPECT_EQ(whole_bins({start, stop}, 0.1), 7);
}

TEST(SpikeBinning, AlignedAndConsecutiveWindows) {
  const std::vector<double> events{10.0, 20.5};
  const std::vector<TimeWindow> aligned = aligned_windows(events, 0.25, 1.0);
  ASSERT_EQ(aligned.size(), 2u);
  EXPECT_DOUBLE_EQ(aligned[1].start, 20.25);
  EXPECT_DOUBLE_EQ(aligned[1].stop, 21.5);

  const std::vector<TimeWindow> pieces = consecutive_windows({5.0, 16.0}, 3.0);
  ASSERT_EQ(pieces.size(), 3u);  // [5,8) [8,11) [11,14); the last 2 s are dropped
  EXPECT_DOUBLE_EQ(pieces[2].start, 11.0);
  EXPECT_DOUBLE_EQ(pieces[2].stop, 14.0);
  EXPECT_TRUE(consecutive_windows({0.0, 1.0}, 2.0).empty());
}

TEST(SpikeBinning, FirstUncoveredFindsTheGap) {
  const std::vector<TimeWindow> observed{{4.0, 10.0}, {0.0, 2.0}, {2.0, 3.0}};  // gap (3, 4)
  EXPECT_FALSE(first_uncovered(observed, {0.5, 3.0}));  // touching intervals merge
  const auto gap = first_uncovered(observed, {1.0, 6.0});
  ASSERT_TRUE(gap);
  EXPECT_DOUBLE_EQ(gap->start, 3.0);
  EXPECT_DOUBLE_EQ(gap->stop, 4.0);
  const auto late = first_uncovered(observed, {9.0, 12.0});  // past the last interval
  ASSERT_TRUE(late);
  EXPECT_DOUBLE_EQ(late->start, 10.0);
  EXPECT_DOUBLE_EQ(late->stop, 12.0);
  const auto early = first_uncovered(observed, {-1.0, 1.0});  // before the first
  ASSERT_TRUE(early);
  EXPECT_DOUBLE_EQ(early->start, -1.0);
  EXPECT_DOUBLE_EQ(early->stop, 0.0);
  EXPECT_TRUE(first_uncovered({}, {0.0, 1.0}));
}

TEST(SpikeBinning, InterpolatesAtBinCentres) {
  // Two channels sampled at 0, 1, 2, 4 s: channel 0 = 10 t, channel 1 = -t, a NaN at t = 4.
  const std::vector<double> times{0.0, 1.0, 2.0, 4.0};
  const std::vector<double> values{0.0, 0.0, 10.0, -1.0, 20.0, -2.0, 40.0, NAN};
  const std::vector<double> centres = bin_centres(0.5, 0.5, 4);  // 0.75 1.25 1.75 2.25
  ASSERT_EQ(centres.size(), 4u);
  EXPECT_DOUBLE_EQ(centres[3], 2.25);
  const std::vector<double> y = interpolate_at(times, values, 2, centres, 0.0);
  EXPECT_DOUBLE_EQ(y[0], 7.5);
  EXPECT_DOUBLE_EQ(y[1], -0.75);
  EXPECT_DOUBLE_EQ(y[6], 22.5);   // between 2 and 4 s: 20 + 0.125 * 20
  EXPECT_TRUE(std::isnan(y[7]));  // next to the NaN sample
  // Outside the samples, and across a gap longer than max_gap, is missing; on a sample exact.
  const std::vector<double> query{-0.1, 3.0, 1.0, 4.1};
  const std::vector<double> z = interpolate_at(times, values, 2, query, 1.5);
  EXPECT_TRUE(std::isnan(z[0]));
  EXPECT_TRUE(std::isnan(z[2]));  // 2 -> 4 s is a 2 s gap
  EXPECT_DOUBLE_EQ(z[4], 10.0);
  EXPECT_DOUBLE_EQ(z[5], -1.0);
  EXPECT_TRUE(std::isnan(z[6]));
}

}  // namespace
}  // namespace spikevi
