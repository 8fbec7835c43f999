#pragma once
// Gaussian smoothing of time series along bins, used by the PCA initialisation and by the
// smoothed-spikes baseline of the co-smoothing report.
#include <Eigen/Dense>

namespace spikevi {

// Smooths each row of `series` (rows x T, column = bin) with a Gaussian kernel of standard
// deviation `sd_bins`, truncated at 4 SD and renormalised at the trial edges (so a constant
// row stays constant). sd_bins <= 0 returns the input.
Eigen::MatrixXd gaussian_smooth_rows(const Eigen::MatrixXd& series, double sd_bins);

}  // namespace spikevi
