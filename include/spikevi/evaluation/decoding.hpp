#pragma once
// Decoding a Gaussian modality (DESIGN.md §1 "Decoding a modality"): latents inferred from the
// other modalities (the spikes), then the modality's posterior predictive per bin,
//   y_tj | spikes ~ N(w_j m_t + e_j, w_j' S_t w_j + R_j)   (q(z) Gaussian, w point-valued),
// with its mean and a central interval, and the scores users judge it by.
#include <Eigen/Dense>
#include <string>
#include <vector>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/continuous_readout.hpp"

namespace spikevi {

struct DecodedModality {
  // per trial: channels x T_k
  std::vector<Eigen::MatrixXd> mean, lower, upper;
};

// The posterior-predictive mean w_j m_t + e_j and variance w_j' S_t w_j + R_j of every channel
// of `modality` under each trial's q(z), per trial channels x T_k.
struct ModalityPredictive {
  std::vector<Eigen::MatrixXd> mean, variance;
};
ModalityPredictive modality_predictive(const ContinuousReadout& modality,
                                       const std::vector<GaussianMoments>& latents);

// The posterior-predictive mean and central `level` interval (mean -/+ z sd, z the normal
// quantile of (1 + level) / 2) of every channel of `modality` under each trial's q(z).
// ConfigError for a level outside (0, 1).
// The readout (w_j, e_j, R_j) of a modality refitted as a predictor from latents inferred from
// the spikes alone (`latents`: the training trials' q(z) without the modality, as decoding
// infers the test trials'): (w_j, e_j) the MAP regression of y on the posterior means m_t
// (solve_continuous_readout on their statistics), and R_j the mean over observed bins of
// (y - w_j m_t - e_j)^2 - w_j' S_t w_j (floored at 1e-3 of the first term), so that the
// predictive variance w_j' S_t w_j + R_j matches the training residuals on average. A fused
// fit's R_j is the noise given latents that also saw the modality, which makes intervals from
// spikes alone too narrow whenever the spikes do not carry what the modality told the fit.
// `values` per trial channels x T_k (NaN = missing). InputError for mismatched trials.
ContinuousReadout refit_modality_readout(const std::string& name,
                                         const std::vector<Eigen::MatrixXd>& values,
                                         const std::vector<GaussianMoments>& latents,
                                         const ReadoutPrior& prior, const NoisePrior& noise_prior);

DecodedModality predict_modality(const ContinuousReadout& modality,
                                 const std::vector<GaussianMoments>& latents, double level = 0.95);

struct DecodingScores {
  double r_squared = 0.0;  // 1 - sum (y - mean)^2 / sum (y - ybar_j)^2 over observed values
  double coverage = 0.0;   // share of observed values inside [lower, upper]
  double observed = 0.0;   // number of observed (non-NaN) values scored
};

// R^2 (per-channel means ybar_j over the observed values) of predictions against `values`
// (per trial channels x T_k, NaN = missing). InputError for mismatched shapes or no
// observed values.
double r_squared(const std::vector<Eigen::MatrixXd>& predictions,
                 const std::vector<Eigen::MatrixXd>& values);

DecodingScores score_decoding(const DecodedModality& decoded,
                              const std::vector<Eigen::MatrixXd>& values);

}  // namespace spikevi
