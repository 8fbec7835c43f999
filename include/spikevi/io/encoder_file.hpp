#pragma once
// The amortised part of a fit file (`fit --inference amortised`, docs/output-files.md):
//   /encoder/weights [P]           the encoder's flat weight vector (site_encoder.hpp layout)
//   /encoder/input_neurons [N_in]  the /counts rows it reads (0-based; the held-in neurons)
//   /encoder/adam_first, /encoder/adam_second [P]   Adam's moment estimates
//   /encoder/gauge_M [D,D], /encoder/gauge_v [D]    the affine map z' = M z + v from the fitting
//     gauge, in which the encoder's sites live, to the file's canonical gauge
//   /encoder attributes: hidden, window, latents, adam_steps
//   /trace/beta [iterations], /trace/kl_per_dimension [iterations, D],
//   /trace/active_units [iterations]
//   /encoder/final_kl_per_dimension [D], /encoder/final_mean_variance [D]
//   root attributes: inference = "amortised", active_units (at the final state)
#include <Eigen/Dense>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/site_encoder.hpp"
#include "spikevi/model/gauge.hpp"

namespace spikevi {

struct EncoderRecord {
  SiteEncoder encoder;
  std::vector<int> input_neurons;
  AdamState moments;
  AffineGauge gauge;
  std::vector<double> beta;
  Eigen::MatrixXd kl_per_dimension;
  std::vector<int> active_units;
  Eigen::VectorXd final_kl_per_dimension, final_mean_variance;
  int final_active_units = 0;

  // The encoder's sites of a trial in the file's gauge: with N = M^-1,
  // L' = N' L N and l' = N' l + L' v (the site factor exp(-z'Lz/2 + l'z) under z = N (z' - v)).
  Sites encode(const Eigen::ArrayXXd& counts) const;
};

// Adds the section to an existing fit file (OutputError on failure).
void write_encoder(const std::string& path, const EncoderRecord& record);
// The section of a fit file, or nothing when the fit is iterative (InputError when broken).
std::optional<EncoderRecord> read_encoder(const std::string& path);

// Sites of the fitting gauge in the gauge z' = M z + v (see EncoderRecord::encode).
Sites gauge_sites(const Sites& sites, const AffineGauge& gauge);

}  // namespace spikevi
