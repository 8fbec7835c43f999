#pragma once
// Co-smoothing (docs/input-format.md#co-smoothing-score; DESIGN.md §7): the bits-per-spike
// score of held-out neuron predictions, and the field's simplest baseline to compare a model
// against — Gaussian-smoothed held-in spikes fed to a Poisson regression per held-out neuron.
// Per-trial matrices are neurons x T_k (column = bin, valid bins only) throughout.
#include <Eigen/Dense>
#include <string>
#include <vector>

namespace spikevi {

// co-bps = (NLL_null - NLL_model) / (total held-out spikes * ln 2), Poisson NLL summed over
// every bin of every trial, the null model predicting each neuron's mean count over all those
// bins (Neural Latents Benchmark `bits_per_spike`). x log r is taken as 0 when x = 0, so a
// neuron without spikes contributes only its predicted rates; a predicted rate of exactly 0
// in a bin with spikes is read as 1e-9, as NLB does. The log x! terms cancel and are left out.
// `predicted_rates[k]` are expected counts per bin, same shape as `heldout_counts[k]`.
// Throws InputError (naming the trial and neuron) for mismatched shapes, a negative or
// non-finite rate or count, or no held-out spikes at all.
double bits_per_spike(const std::vector<Eigen::MatrixXd>& predicted_rates,
                      const std::vector<Eigen::MatrixXd>& heldout_counts);

// A Poisson GLM with log link, E[y_i] = exp(intercept + x_i . weights).
struct PoissonRegression {
  Eigen::VectorXd weights;
  double intercept = 0.0;
  int iterations = 0;      // Newton steps taken
  bool converged = false;  // Newton decrement fell below the tolerance
  // Expected counts for the rows of `features` (rows x weights.size()).
  Eigen::VectorXd predict(const Eigen::MatrixXd& features) const;
};

struct PoissonRegressionSettings {
  // Ridge penalty (penalty/2) |w_std|^2 on the weights of the standardised features (each
  // column centred and scaled to unit SD over the fitted rows); the intercept is free.
  double penalty = 0.0;
  int max_iterations = 100;
  double tolerance = 1e-10;  // on the Newton decrement^2 / 2, relative to 1 + |objective|
};

// Maximum penalised likelihood by Newton's method with backtracking (Armijo) line search,
// starting from `start` (a warm start, e.g. the fit at a neighbouring penalty) or, when null,
// from the constant-rate fit. `features` rows x F (one row per bin), `counts` rows; at least
// one count must be positive (else the maximum is at rate 0: InputError). The result is
// expressed in the raw (unstandardised) features.
PoissonRegression fit_poisson_regression(const Eigen::MatrixXd& features,
                                         const Eigen::VectorXd& counts,
                                         const PoissonRegressionSettings& settings = {},
                                         const PoissonRegression* start = nullptr);

// What the Poisson regression sees of the smoothed held-in counts s (per bin): the smoothed
// counts themselves, or log(s + 1e-4) as the Neural Latents Benchmark's smoothing baseline does
// (nlb_tools' smoothing example fits its GLM on the log of the smoothed rates).
enum class SmoothingFeatures { kRaw, kLog };
std::string smoothing_features_name(SmoothingFeatures features);  // "raw" or "log"

struct SmoothingBaselineSettings {
  SmoothingFeatures features = SmoothingFeatures::kRaw;
  // Kernel SD of the held-in smoothing (bins, shared by all held-out neurons) and ridge
  // strength (per held-out neuron), chosen by `folds`-fold cross-validation on the train
  // trials (trial i in fold i mod folds; validation Poisson log-likelihood; each neuron at its
  // best ridge, summed over neurons for the kernel) from the candidate lists. A list with
  // fewer than two entries means the fixed value below; with both lists short, or fewer than
  // two train trials, there is no cross-validation. It costs about folds x (kernels + 1)
  // Newton fits per held-out neuron (ridge paths are warm-started): clear the lists on very
  // large data sets.
  double kernel_sd_bins = 2.0;
  std::vector<double> kernel_sd_candidates = {1.0, 2.0, 4.0, 8.0};
  // Ridge strength per fitted bin: PoissonRegressionSettings::penalty = ridge * (number of
  // fitted bins), on the standardised features (as sklearn's PoissonRegressor `alpha`, the
  // NLB baseline's regressor), so the prior keeps its weight relative to the data.
  double ridge = 0.1;
  std::vector<double> ridge_candidates = {0.01, 0.1, 1.0};
  int folds = 5;
  int max_newton_iterations = 100;
  int threads = 1;  // threads over the held-out neurons (threads.hpp; same bits for any count)
};

struct SmoothingBaseline {
  std::vector<Eigen::MatrixXd> rates;     // per test trial: N_out x T_k expected counts per bin
  double kernel_sd_bins = 0.0;            // the kernel used
  std::vector<double> ridge;              // per held-out neuron, the ridge used
  std::vector<double> cv_log_likelihood;  // per kernel candidate (empty without CV), nats
  int unconverged = 0;                    // held-out neurons whose final Newton fit hit the cap
};

// Smooths each held-in neuron's counts in time (gaussian_smooth_rows: edge-normalised within
// each trial), fits one Poisson GLM per held-out neuron on the train trials with the smoothed
// held-in rates (plus intercept) as features, and predicts the held-out neurons on the test
// trials. Test features are clipped to each feature's range over the train bins (no
// exponential extrapolation beyond any burst seen in training). A held-out neuron without
// train spikes gets the constant rate 0.5 / (train bins).
// train_heldin[k] N_in x T_k, train_heldout[k] N_out x T_k, test_heldin[k] N_in x T_k.
// Throws InputError for inconsistent shapes or no train trials, ConfigError for bad settings.
SmoothingBaseline smoothing_baseline(const std::vector<Eigen::MatrixXd>& train_heldin,
                                     const std::vector<Eigen::MatrixXd>& train_heldout,
                                     const std::vector<Eigen::MatrixXd>& test_heldin,
                                     const SmoothingBaselineSettings& settings = {});

// smoothing_baseline(...).rates.
std::vector<Eigen::MatrixXd> smoothing_baseline_rates(
    const std::vector<Eigen::MatrixXd>& train_heldin,
    const std::vector<Eigen::MatrixXd>& train_heldout,
    const std::vector<Eigen::MatrixXd>& test_heldin,
    const SmoothingBaselineSettings& settings = {});

// Rows `rows` of the per-trial matrices `per_trial[trial - first_trial]` for each absolute
// trial index in `trials` (e.g. Dataset::counts with Split::test_trials and heldout_neurons).
// Throws InputError for a trial that is not held or a row out of range.
std::vector<Eigen::MatrixXd> select_trials_and_rows(const std::vector<Eigen::MatrixXd>& per_trial,
                                                    int first_trial, const std::vector<int>& trials,
                                                    const std::vector<int>& rows);

}  // namespace spikevi
