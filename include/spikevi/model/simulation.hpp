#pragma once
// Simulated data sets with known ground truth (docs/model-and-inference.md#the-model,
// DESIGN.md §1): smooth rotating latents, optionally driven by known inputs; spike counts with
// a Poisson, negative-binomial or Bernoulli readout; optionally a Gaussian behaviour modality;
// a train/test split and held-out neurons for co-smoothing. Every draw comes from the
// counter-based RandomStream (purpose kSimulation for the data, kSplit for the split), keyed so
// that trial k's latents, inputs, counts and behaviour depend only on (seed, k), neuron n's
// parameters only on (seed, n), and channel / input j's parameters only on (seed, j):
// simulating more trials, neurons or channels leaves the existing ones unchanged.
#include <cstdint>
#include <map>
#include <string>

#include "spikevi/io/dataset.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {

struct SimulationSettings {
  int neurons = 60;
  int latents = 4;  // D
  int trials = 40;
  int bins = 100;  // padded length; the longest possible trial
  double bin_width_s = 0.02;
  std::uint64_t seed = 1;
  double test_fraction = 0.2;      // share of trials in /split/test_trials (at least one if > 0)
  double heldout_fraction = 0.25;  // share of neurons held out (at least one if > 0)

  // Ordinary units: baseline rate exp(d_n)/bin_width log-normal with geometric mean
  // `mean_rate_hz` and SD `rate_log_sd` of its logarithm.
  double mean_rate_hz = 20.0;
  double rate_log_sd = 0.5;
  // Readout rows c_n ~ N(0, (readout_scale^2 / D) I); with the stationary latent covariance I
  // the log-rate modulation c_n.z has SD about readout_scale.
  double readout_scale = 0.6;
  // 1.0: every trial has `bins` bins; below 1, T_k is uniform on [ceil(fraction*bins), bins].
  double min_length_fraction = 1.0;

  // Harder units (0 in the default; see sparse_preset). Each neuron is independently nearly
  // silent with probability silent_fraction, bursty with probability bursty_fraction.
  double silent_fraction = 0.0;
  double bursty_fraction = 0.0;
  double low_rate_min_hz = 0.5;  // silent and bursty baselines: log-uniform on [min, max]
  double low_rate_max_hz = 2.0;
  double bursty_gain = 2.0;  // bursty loadings: all positive, |c_n| = bursty_gain * readout_scale

  // Spike-count model, eta = c_n.z + d_n (Truth::observation): a name or alias in the catalogue
  // (SpikeModel; its simulated_offsets and draw make the counts), e.g.
  // "poisson": x ~ Poisson(exp(eta)).
  // "negative_binomial": x ~ NB(mean exp(eta), shape r = row parameter "dispersion"), variance
  //   mean + mean^2/r, drawn as Poisson(Gamma(r, mean/r)); the same r for every neuron.
  // "bernoulli": x ~ Bernoulli(sigmoid(eta)) (binarised spike trains). The baseline d_n =
  //   log(expm1(lambda_n)) = logit(1 - exp(-lambda_n)), the probability that a Poisson unit of
  //   baseline expected count lambda_n = baseline rate_n * bin_width_s fires in the bin at all.
  std::string observation = "poisson";
  // Values of the model's row parameters (the same for every neuron), by name; a parameter not
  // given takes its RowParameterSpec::simulation_default. Values for parameters of other models
  // are checked but unused.
  std::map<std::string, double> row_parameters;

  // A Gaussian modality /continuous/behavior with `behavior_channels` channels (0: none):
  // y_ktj = W_j.z_kt + e_j + N(0, R_j), W_j ~ N(0, (behavior_scale^2 / D) I), e_j ~ N(0, 1),
  // R_j = behavior_noise (a variance). Each value is independently missing (NaN) with
  // probability behavior_missing.
  int behavior_channels = 0;
  double behavior_scale = 1.0;
  double behavior_noise = 0.1;
  double behavior_missing = 0.0;

  // Known inputs /inputs (0: none): z_kt = A z_k,t-1 + b + B u_kt + noise. u_ktj is a pulse,
  // 1 with probability kInputPulseProbability and 0 otherwise (u_k1 = 0: it is unused); the
  // entries of B are N(0, kInputGainSd^2). Sparse pulses make B identifiable from the latents.
  int inputs = 0;

  // A nonlinear readout (simulate --readout mlp; 0: none): eta_n = c_n.z + d_n + a_n' tanh(W z
  // + b) with H = mlp_hidden hidden units, W_ij ~ N(0, mlp_input_scale^2 / D), b_i ~ N(0, 1) and
  // a_nk ~ N(0, mlp_scale^2 / H) (neuron n's a_n from its own stream), /truth/mlp_A, _W, _b.
  int mlp_hidden = 0;
  double mlp_scale = 1.0;
  double mlp_input_scale = 2.0;
};

inline constexpr double kInputPulseProbability = 0.05;
inline constexpr double kInputGainSd = 0.5;
// The NAME of the simulated behaviour modality (/continuous/NAME, /truth/NAME_W ...).
inline constexpr const char* kBehaviorModality = "behavior";

// The "real recordings are harder" preset, applied on top of `base` (sizes, seed, split and
// rates of ordinary units kept): about half the units nearly silent (baseline 0.5-2 Hz), about
// one in ten bursty (baseline 0.5-2 Hz, all-positive loadings of norm 2 * readout_scale, so
// they fire in bursts of tens of Hz when the latents align with their readout), and ragged trials
// (T_k uniform on [bins/2, bins]).
SimulationSettings sparse_preset(SimulationSettings base = {});

// Throws ConfigError for the first setting out of range, naming it as the `spikevi simulate`
// option, e.g. "--neurons must be >= 2 (got 0)": --bin-width for bin_width_s, --mean-rate for
// mean_rate_hz, --behavior for behavior_channels, otherwise "--" + the field name with '_'
// replaced by '-'; a row parameter as --NAME. Models are looked up in `models`.
void validate_settings(const SimulationSettings& settings,
                       const SpikeModelCatalogue& models = builtin_spike_models());

// The global ground truth (C, d, A, b, Q, mu0, Sigma0, observation; the model's row parameters,
// e.g. the negative binomial's dispersion; B with inputs; continuous[kBehaviorModality] with
// behaviour), no per-trial arrays.
// Dynamics (DESIGN.md §1): A block-diagonal with 2x2 blocks a_j R(theta_j), theta_j uniform on
// [0.05, 0.15] rad and a_j uniform on [0.97, 0.99] (odd D: a last 1x1 block 0.98), b = 0,
// Q = I - A A', mu0 = 0, Sigma0 = I, so the latents are stationary with covariance I (without
// inputs). d_n = log(baseline rate_n * bin_width_s); Bernoulli: see SimulationSettings.
// Validates the settings first.
Truth truth_parameters(const SimulationSettings& settings,
                       const SpikeModelCatalogue& models = builtin_spike_models());

// A complete in-memory data set: all trials held (first_trial 0, path ""), counts N x T_k,
// continuous[kBehaviorModality] (channels x T_k) and inputs (inputs x T_k) when asked for,
// /truth with latents (D x T_k) and rates (N x T_k, expected counts per bin: the means exp(eta),
// for Bernoulli the probabilities sigmoid(eta)), and a Split:
// trials and neurons each in a random permutation (RandomPurpose kSplit), the first
// round(test_fraction * trials) permuted trials tested and the first
// round(heldout_fraction * neurons) permuted neurons held out, all lists ascending.
// Throws ConfigError for invalid settings.
Dataset simulate(const SimulationSettings& settings,
                 const SpikeModelCatalogue& models = builtin_spike_models());

}  // namespace spikevi
