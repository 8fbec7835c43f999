#pragma once
// Co-smoothing evaluation (DATA_FORMAT.md "Co-smoothing score", DESIGN.md §7): infer the
// test trials' latents from the held-in neurons with the globals fixed, predict the held-out
// neurons' expected counts r = exp(c m + d + c'S c / 2), score in bits per spike.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/inference/latent_inference.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/trial_counts.hpp"

namespace spikevi {

struct CosmoothingResult {
  std::vector<Eigen::MatrixXd> rates;  // per test trial: heldout x T_k expected counts
  // The held-out log-rates eta under q: mean and variance, per test trial heldout x T_k.
  std::vector<Eigen::MatrixXd> eta_mean, eta_variance;
  double bits_per_spike = 0.0;
};

// Expected counts E_q[E[x | eta]] of every row of `readout` under each trial's q(z) (Poisson
// and negative binomial: E exp(eta); Bernoulli: E sigmoid(eta)).
std::vector<Eigen::MatrixXd> predicted_rates(const Readout& readout,
                                             const std::vector<GaussianMoments>& latents,
                                             const ObservationModel& model = PoissonObservation{});

// --history: the history features f_t of each test trial of the split (from its counts on
// all rows; the basis reads held-in rows only), the same for the held-in and held-out offsets;
// empty without history terms. InputError when the basis reads a held-out neuron.
std::vector<Eigen::MatrixXd> test_history_features(const HistoryCoupling& history,
                                                   const Dataset& data);

// The co-smoothing of a model (over all neurons) on the data set's split: the test trials'
// latents inferred from the held-in neurons, the held-out neurons predicted; requires /split
// with test trials and held-out neurons.
CosmoothingResult cosmooth(const InferenceModel& model, const Dataset& data,
                           const LocalStepSettings& settings);

// The field's simplest co-smoothing baseline on the data set's split (cosmoothing.hpp): smoothed
// held-in spikes of the train trials -> a Poisson GLM per held-out neuron -> the test trials,
// with the regression on the smoothed counts (raw) or on their log (the Neural Latents
// Benchmark's variant), kernel and ridge by cross-validation on the train trials.
struct BaselineResult {
  SmoothingFeatures features = SmoothingFeatures::kRaw;
  SmoothingBaseline fit;
  double bits_per_spike = 0.0;
};
BaselineResult cosmoothing_baseline(const Dataset& data, SmoothingFeatures features,
                                    int threads = 1);
// Both variants, and which scores higher.
struct Baselines {
  BaselineResult raw, log;
  const BaselineResult& stronger() const {
    return log.bits_per_spike > raw.bits_per_spike ? log : raw;
  }
};
Baselines cosmoothing_baselines(const Dataset& data, int threads = 1);

// Held-out counts of the test trials, heldout x T_k each (what the scores compare against).
std::vector<Eigen::MatrixXd> heldout_counts(const Dataset& data);

// Held-out scores of trials under fixed globals (DESIGN.md §7), from their spikes alone.
struct HeldoutScores {
  double elbo = 0.0;            // sum over trials of ELBO_k at q inferred with the globals fixed
  double log_likelihood = 0.0;  // sum over trials of the importance-sampled log p(x_k)
  // Standard error of log_likelihood from the spread of the importance weights (delta method,
  // summed in quadrature over trials)
  double log_likelihood_se = 0.0;
  double spike_count = 0.0;
  int samples = 0;  // S, the importance samples per trial
};

// For each trial: q(z) inferred from the spikes with the globals fixed (the given family), then
// log p(x_k) ~ log mean_s exp(log p(x_k, z_s) - log q(z_s)) over S draws z_s ~ q (the
// proposal), with the dynamics at their posterior means (a point-valued model, so p(x, z) is a
// density) and draws keyed by (seed, kMonteCarlo, trial position). The held-out ELBO bounds it
// from below up to Monte Carlo error. `model` picks the spike model and family (Monte Carlo
// expectations are replaced by quadrature for inference).
HeldoutScores heldout_scores(const GlobalState& globals, const ModelSettings& model,
                             const std::vector<TrialCounts>& trials,
                             const LocalStepSettings& settings, int samples, std::uint64_t seed);

// The true parameters of a simulated data set as a model (dynamics at point values, the /truth
// observation model looked up in `models`).
InferenceModel truth_model(const Truth& truth,
                           const SpikeModelCatalogue& models = builtin_spike_models());

}  // namespace spikevi
