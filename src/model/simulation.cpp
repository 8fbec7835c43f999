#include "spikevi/model/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

// RandomCounter::iteration of each simulated quantity (purpose kSimulation); `trial` then
// holds the trial (or neuron) index and `inner` the bin, so each draw has a fixed address.
enum SimulationCode : std::uint64_t {
  kDynamicsCode = 0,  // trial 0, inner 0: rotation angles and decays
  kNeuronCode = 1,    // trial = neuron, inner = NeuronStream: type, baseline rate, readout
  kLengthCode = 2,    // trial = k: T_k
  kLatentCode = 3,    // trial = k: the latent path
  // 4, 5, 6: the counts of the Poisson, negative-binomial and Bernoulli models (trial = k,
  // inner = bin; SpikeModel::simulation_code)
  kInputGainCode = 7,         // trial = input j: column j of B
  kInputCode = 8,             // trial = k, inner = bin: the inputs of that bin
  kBehaviorReadoutCode = 9,   // trial = channel j: W_j, then e_j
  kBehaviorNoiseCode = 10,    // trial = k, inner = bin: the behaviour noise of that bin
  kBehaviorMissingCode = 11,  // trial = k, inner = bin: which behaviour values are missing
  kMlpLayerCode = 12,         // trial 0: W then b of a simulated MLP readout
  kMlpNeuronCode = 13,        // trial = neuron: a_n of a simulated MLP readout
};

// RandomCounter::inner of a neuron's two parameter streams.
enum NeuronStream : std::uint64_t { kUniformStream = 0, kNormalStream = 1 };

// RandomCounter::iteration of the two split permutations (purpose kSplit).
enum SplitCode : std::uint64_t { kTrialPermutation = 0, kNeuronPermutation = 1 };

RandomStream simulation_stream(const SimulationSettings& s, std::uint64_t code, std::uint64_t index,
                               std::uint64_t inner = 0) {
  return RandomStream({s.seed, RandomPurpose::kSimulation}, {code, index, inner});
}

template <typename T>
void require(bool ok, const char* option, const char* condition, T value) {
  if (ok) return;
  std::ostringstream message;
  message << "--" << option << " must be " << condition << " (got " << value << ")";
  throw ConfigError(message.str());
}

bool in_unit_interval(double x, bool closed_right) {
  return x >= 0.0 && (closed_right ? x <= 1.0 : x < 1.0);
}

// A simulated row-parameter value: a parameter of some model in the catalogue, finite and > 0
// (log scale) or in (0, 1) (logit scale).
void validate_row_parameter(const SpikeModelCatalogue& models, const std::string& name,
                            double value) {
  for (const auto& model : models.models())
    for (const RowParameterSpec& spec : model->row_parameters()) {
      if (spec.name != name) continue;
      if (spec.transform == RowTransform::kLog)
        require(std::isfinite(value) && value > 0.0, name.c_str(), "finite and > 0", value);
      else
        require(value > 0.0 && value < 1.0, name.c_str(), "in (0, 1)", value);
      return;
    }
  throw ConfigError("--" + name + " is not a parameter of any spike model");
}

// Block-diagonal rotation-plus-decay A (see truth_parameters).
Eigen::MatrixXd rotation_dynamics(const SimulationSettings& s) {
  const int dim = s.latents;
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(dim, dim);
  RandomStream stream = simulation_stream(s, kDynamicsCode, 0);
  for (int j = 0; j + 1 < dim; j += 2) {
    const double angle = 0.05 + 0.10 * stream.next_uniform();
    const double decay = 0.97 + 0.02 * stream.next_uniform();
    a(j, j) = a(j + 1, j + 1) = decay * std::cos(angle);
    a(j + 1, j) = decay * std::sin(angle);
    a(j, j + 1) = -a(j + 1, j);
  }
  if (dim % 2 == 1) a(dim - 1, dim - 1) = 0.98;
  return a;
}

struct NeuronParameters {
  Eigen::RowVectorXd c;
  double d = 0.0;
};

// Readout row c_n and offset d_n of neuron n, from the neuron's own stream. The draw order is
// fixed whatever the unit type, so changing the type fractions changes only the type.
NeuronParameters neuron_parameters(const SimulationSettings& s, int n) {
  // Uniforms and normals from separate streams, each of one kind of draw, so that no draw
  // shares Philox words with another whatever the stream's word layout.
  const auto neuron = static_cast<std::uint64_t>(n);
  RandomStream uniforms = simulation_stream(s, kNeuronCode, neuron, kUniformStream);
  RandomStream normals = simulation_stream(s, kNeuronCode, neuron, kNormalStream);
  const double type = uniforms.next_uniform();
  const double low_rate_position = uniforms.next_uniform();
  const double log_rate_noise = normals.next_normal();
  const double sd = s.readout_scale / std::sqrt(static_cast<double>(s.latents));
  Eigen::RowVectorXd c(s.latents);
  for (Eigen::Index i = 0; i < c.size(); ++i) c(i) = sd * normals.next_normal();

  const bool silent = type < s.silent_fraction;
  const bool bursty = !silent && type < s.silent_fraction + s.bursty_fraction;
  double log_rate = std::log(s.mean_rate_hz) + s.rate_log_sd * log_rate_noise;
  if (silent || bursty)
    log_rate = std::log(s.low_rate_min_hz) +
               low_rate_position * std::log(s.low_rate_max_hz / s.low_rate_min_hz);
  // Bursty: all-positive loadings whose log-rate modulation SD is bursty_gain * readout_scale
  // (the stationary latent covariance is I), so bursts reach tens of times the baseline.
  if (bursty) c = (s.bursty_gain * s.readout_scale / c.norm()) * c.cwiseAbs();
  return {c, log_rate + std::log(s.bin_width_s)};
}

int trial_length(const SimulationSettings& s, int k) {
  if (s.min_length_fraction >= 1.0) return s.bins;
  const int shortest =
      std::clamp(static_cast<int>(std::ceil(s.min_length_fraction * s.bins)), 1, s.bins);
  RandomStream stream = simulation_stream(s, kLengthCode, static_cast<std::uint64_t>(k));
  const int span = s.bins - shortest + 1;
  return shortest + std::min(span - 1, static_cast<int>(stream.next_uniform() * span));
}

// Pulse inputs of one trial (inputs x length), column 0 zero (unused), one stream per bin.
Eigen::MatrixXd simulate_inputs(const SimulationSettings& s, int k, int length) {
  Eigen::MatrixXd u = Eigen::MatrixXd::Zero(s.inputs, length);
  for (int t = 1; t < length; ++t) {
    RandomStream stream = simulation_stream(s, kInputCode, static_cast<std::uint64_t>(k),
                                            static_cast<std::uint64_t>(t));
    for (int j = 0; j < s.inputs; ++j)
      u(j, t) = stream.next_uniform() < kInputPulseProbability ? 1.0 : 0.0;
  }
  return u;
}

// z_0 ~ N(mu0, Sigma0), z_t = A z_{t-1} + b [+ B u_t] + N(0, Q) (DATA_FORMAT "Model in this
// layout"); returns D x length. Draws are sequential, so a prefix does not depend on `length`,
// and the noise does not depend on the inputs.
Eigen::MatrixXd simulate_latents(const SimulationSettings& s, const Truth& truth, int k,
                                 const Eigen::MatrixXd& inputs) {
  const auto length = static_cast<int>(inputs.cols());
  const int dim = truth.dim();
  const Eigen::MatrixXd initial_factor = truth.Sigma0.llt().matrixL();
  const Eigen::MatrixXd noise_factor = truth.Q.llt().matrixL();
  RandomStream stream = simulation_stream(s, kLatentCode, static_cast<std::uint64_t>(k));
  Eigen::VectorXd noise(dim);
  auto draw = [&] {
    for (int i = 0; i < dim; ++i) noise(i) = stream.next_normal();
    return noise;
  };
  Eigen::MatrixXd z(dim, length);
  z.col(0) = truth.mu0 + initial_factor * draw();
  for (int t = 1; t < length; ++t) {
    z.col(t) = truth.A * z.col(t - 1) + truth.b + noise_factor * draw();
    if (inputs.rows() > 0) z.col(t) += truth.B * inputs.col(t);
  }
  return z;
}

// Counts of one trial given the truth rates (E[x | eta]), one stream per bin keyed by the
// model's simulation code.
Eigen::MatrixXd simulate_counts(const SimulationSettings& s, const SpikeModel& model, int k,
                                const Eigen::MatrixXd& rates, const Truth& truth) {
  std::vector<const Eigen::VectorXd*> parameters;
  for (const RowParameterSpec& spec : model.row_parameters())
    parameters.push_back(&truth.row_parameters.at(spec.name));
  std::vector<double> row_values(parameters.size());
  Eigen::MatrixXd counts(rates.rows(), rates.cols());
  for (Eigen::Index t = 0; t < rates.cols(); ++t) {
    RandomStream stream = simulation_stream(
        s, model.simulation_code(), static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(t));
    for (Eigen::Index n = 0; n < rates.rows(); ++n) {
      for (std::size_t p = 0; p < parameters.size(); ++p) row_values[p] = (*parameters[p])(n);
      counts(n, t) = model.draw(rates(n, t), row_values, stream);
    }
  }
  return counts;
}

// The behaviour readout of channel j from its own stream: W_j ~ N(0, (scale^2 / D) I), e_j ~
// N(0, 1).
void behavior_readout(const SimulationSettings& s, int j, ContinuousTruth& truth) {
  RandomStream normals = simulation_stream(s, kBehaviorReadoutCode, static_cast<std::uint64_t>(j));
  const double sd = s.behavior_scale / std::sqrt(static_cast<double>(s.latents));
  for (int i = 0; i < s.latents; ++i) truth.W(j, i) = sd * normals.next_normal();
  truth.e(j) = normals.next_normal();
}

// Behaviour of one trial (channels x T_k), NaN where missing; noise and missingness from
// separate streams per bin, so that behavior_missing changes only which values are missing.
Eigen::MatrixXd simulate_behavior(const SimulationSettings& s, const ContinuousTruth& truth, int k,
                                  const Eigen::MatrixXd& latents) {
  Eigen::MatrixXd y = truth.W * latents;
  y.colwise() += truth.e;
  for (Eigen::Index t = 0; t < y.cols(); ++t) {
    const auto trial = static_cast<std::uint64_t>(k);
    const auto bin = static_cast<std::uint64_t>(t);
    RandomStream noise = simulation_stream(s, kBehaviorNoiseCode, trial, bin);
    RandomStream missing = simulation_stream(s, kBehaviorMissingCode, trial, bin);
    for (Eigen::Index j = 0; j < y.rows(); ++j) {
      y(j, t) += std::sqrt(truth.R(j)) * noise.next_normal();
      if (s.behavior_missing > 0.0 && missing.next_uniform() < s.behavior_missing)
        y(j, t) = std::numeric_limits<double>::quiet_NaN();
    }
  }
  return y;
}

// A uniform random permutation of 0..size-1 (Fisher-Yates).
std::vector<int> random_permutation(const SimulationSettings& s, SplitCode code, int size) {
  std::vector<int> order(static_cast<std::size_t>(size));
  std::iota(order.begin(), order.end(), 0);
  RandomStream stream({s.seed, RandomPurpose::kSplit}, {code, 0, 0});
  for (int i = size - 1; i > 0; --i) {
    const int j = std::min(i, static_cast<int>(stream.next_uniform() * (i + 1)));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

// round(fraction * size), at least 1 when fraction > 0, at most size - 1.
int share(double fraction, int size) {
  const int count = static_cast<int>(std::lround(fraction * size));
  return std::clamp(count, fraction > 0.0 ? 1 : 0, size - 1);
}

// Splits a permutation into its first `first` entries and the rest, each sorted.
void split_permutation(std::vector<int> order, int first, std::vector<int>& head,
                       std::vector<int>& tail) {
  head.assign(order.begin(), order.begin() + first);
  tail.assign(order.begin() + first, order.end());
  std::sort(head.begin(), head.end());
  std::sort(tail.begin(), tail.end());
}

Split make_split(const SimulationSettings& s) {
  Split split;
  split.neurons = s.neurons;
  split_permutation(random_permutation(s, kTrialPermutation, s.trials),
                    share(s.test_fraction, s.trials), split.test_trials, split.train_trials);
  std::vector<int> heldin;
  split_permutation(random_permutation(s, kNeuronPermutation, s.neurons),
                    share(s.heldout_fraction, s.neurons), split.heldout_neurons, heldin);
  return split;
}

}  // namespace

SimulationSettings sparse_preset(SimulationSettings base) {
  base.silent_fraction = 0.5;
  base.bursty_fraction = 0.1;
  base.low_rate_min_hz = 0.5;
  base.low_rate_max_hz = 2.0;
  base.bursty_gain = 2.0;
  base.min_length_fraction = 0.5;
  return base;
}

void validate_settings(const SimulationSettings& s, const SpikeModelCatalogue& models) {
  require(s.neurons >= 2, "neurons", ">= 2", s.neurons);
  require(s.latents >= 1, "latents", ">= 1", s.latents);
  require(s.trials >= (s.test_fraction > 0.0 ? 2 : 1), "trials",
          s.test_fraction > 0.0 ? ">= 2 when --test-fraction > 0" : ">= 1", s.trials);
  require(s.bins >= 1, "bins", ">= 1", s.bins);
  require(std::isfinite(s.bin_width_s) && s.bin_width_s > 0.0, "bin-width", "finite and > 0",
          s.bin_width_s);
  require(in_unit_interval(s.test_fraction, false), "test-fraction", "in [0, 1)", s.test_fraction);
  require(in_unit_interval(s.heldout_fraction, false), "heldout-fraction", "in [0, 1)",
          s.heldout_fraction);
  require(std::isfinite(s.mean_rate_hz) && s.mean_rate_hz > 0.0, "mean-rate", "finite and > 0",
          s.mean_rate_hz);
  require(std::isfinite(s.rate_log_sd) && s.rate_log_sd >= 0.0, "rate-log-sd", "finite and >= 0",
          s.rate_log_sd);
  require(std::isfinite(s.readout_scale) && s.readout_scale >= 0.0, "readout-scale",
          "finite and >= 0", s.readout_scale);
  require(s.min_length_fraction > 0.0 && s.min_length_fraction <= 1.0, "min-length-fraction",
          "in (0, 1]", s.min_length_fraction);
  require(in_unit_interval(s.silent_fraction, true), "silent-fraction", "in [0, 1]",
          s.silent_fraction);
  require(in_unit_interval(s.bursty_fraction, true), "bursty-fraction", "in [0, 1]",
          s.bursty_fraction);
  require(s.silent_fraction + s.bursty_fraction <= 1.0, "bursty-fraction",
          "<= 1 - --silent-fraction", s.bursty_fraction);
  require(std::isfinite(s.low_rate_min_hz) && s.low_rate_min_hz > 0.0, "low-rate-min-hz",
          "finite and > 0", s.low_rate_min_hz);
  require(std::isfinite(s.low_rate_max_hz) && s.low_rate_max_hz >= s.low_rate_min_hz,
          "low-rate-max-hz", "finite and >= --low-rate-min-hz", s.low_rate_max_hz);
  require(std::isfinite(s.bursty_gain) && s.bursty_gain >= 0.0, "bursty-gain", "finite and >= 0",
          s.bursty_gain);
  require(models.find(s.observation) != nullptr, "observation", models.choices().c_str(),
          s.observation);
  for (const auto& [name, value] : s.row_parameters) validate_row_parameter(models, name, value);
  require(s.behavior_channels >= 0, "behavior", ">= 0", s.behavior_channels);
  require(std::isfinite(s.behavior_scale) && s.behavior_scale >= 0.0, "behavior-scale",
          "finite and >= 0", s.behavior_scale);
  require(std::isfinite(s.behavior_noise) && s.behavior_noise > 0.0, "behavior-noise",
          "finite and > 0", s.behavior_noise);
  require(in_unit_interval(s.behavior_missing, false), "behavior-missing", "in [0, 1)",
          s.behavior_missing);
  require(s.inputs >= 0, "inputs", ">= 0", s.inputs);
  require(s.mlp_hidden >= 0, "hidden", ">= 0", s.mlp_hidden);
  require(std::isfinite(s.mlp_scale) && s.mlp_scale >= 0.0, "mlp-scale", "finite and >= 0",
          s.mlp_scale);
  require(std::isfinite(s.mlp_input_scale) && s.mlp_input_scale >= 0.0, "mlp-input-scale",
          "finite and >= 0", s.mlp_input_scale);
}

Truth truth_parameters(const SimulationSettings& settings, const SpikeModelCatalogue& models) {
  validate_settings(settings, models);
  const SpikeModel& model = *models.find(settings.observation);
  const int dim = settings.latents;
  Truth truth;
  truth.observation = model.name();
  truth.A = rotation_dynamics(settings);
  truth.b = Eigen::VectorXd::Zero(dim);
  const Eigen::MatrixXd q = Eigen::MatrixXd::Identity(dim, dim) - truth.A * truth.A.transpose();
  truth.Q = 0.5 * (q + q.transpose());
  truth.mu0 = Eigen::VectorXd::Zero(dim);
  truth.Sigma0 = Eigen::MatrixXd::Identity(dim, dim);
  truth.C.resize(settings.neurons, dim);
  truth.d.resize(settings.neurons);
  for (int n = 0; n < settings.neurons; ++n) {
    const NeuronParameters neuron = neuron_parameters(settings, n);
    truth.C.row(n) = neuron.c;
    truth.d(n) = neuron.d;
  }
  truth.d = model.simulated_offsets(truth.d);
  for (const RowParameterSpec& spec : model.row_parameters()) {
    const auto given = settings.row_parameters.find(spec.name);
    const double value =
        given == settings.row_parameters.end() ? spec.simulation_default : given->second;
    truth.row_parameters[spec.name] = Eigen::VectorXd::Constant(settings.neurons, value);
  }
  if (settings.inputs > 0) {
    truth.B.resize(dim, settings.inputs);
    for (int j = 0; j < settings.inputs; ++j) {
      RandomStream normals =
          simulation_stream(settings, kInputGainCode, static_cast<std::uint64_t>(j));
      for (int i = 0; i < dim; ++i) truth.B(i, j) = kInputGainSd * normals.next_normal();
    }
  }
  if (settings.mlp_hidden > 0) {
    const int hidden = settings.mlp_hidden;
    truth.mlp_W.resize(hidden, dim);
    truth.mlp_b.resize(hidden);
    truth.mlp_A.resize(settings.neurons, hidden);
    RandomStream layer = simulation_stream(settings, kMlpLayerCode, 0);
    const double w_sd = settings.mlp_input_scale / std::sqrt(static_cast<double>(dim));
    for (int i = 0; i < hidden; ++i)
      for (int j = 0; j < dim; ++j) truth.mlp_W(i, j) = w_sd * layer.next_normal();
    for (int i = 0; i < hidden; ++i) truth.mlp_b(i) = layer.next_normal();
    const double a_sd = settings.mlp_scale / std::sqrt(static_cast<double>(hidden));
    for (int n = 0; n < settings.neurons; ++n) {
      RandomStream normals =
          simulation_stream(settings, kMlpNeuronCode, static_cast<std::uint64_t>(n));
      for (int k = 0; k < hidden; ++k) truth.mlp_A(n, k) = a_sd * normals.next_normal();
    }
  }
  if (settings.behavior_channels > 0) {
    ContinuousTruth behavior;
    behavior.W.resize(settings.behavior_channels, dim);
    behavior.e.resize(settings.behavior_channels);
    behavior.R = Eigen::VectorXd::Constant(settings.behavior_channels, settings.behavior_noise);
    for (int j = 0; j < settings.behavior_channels; ++j) behavior_readout(settings, j, behavior);
    truth.continuous[kBehaviorModality] = std::move(behavior);
  }
  return truth;
}

Dataset simulate(const SimulationSettings& settings, const SpikeModelCatalogue& models) {
  Dataset data;
  data.truth = truth_parameters(settings, models);
  const SpikeModel& model = *models.find(settings.observation);
  Truth& truth = *data.truth;
  data.trials = settings.trials;
  data.bins = settings.bins;
  data.neurons = settings.neurons;
  data.bin_width_s = settings.bin_width_s;
  for (int k = 0; k < settings.trials; ++k) {
    const int length = trial_length(settings, k);
    data.trial_lengths.push_back(length);
    const Eigen::MatrixXd inputs = simulate_inputs(settings, k, length);
    if (settings.inputs > 0) data.inputs.push_back(inputs);
    truth.latents.push_back(simulate_latents(settings, truth, k, inputs));
    Eigen::MatrixXd eta = truth.C * truth.latents.back();
    eta.colwise() += truth.d;
    if (settings.mlp_hidden > 0) {
      Eigen::MatrixXd hidden = truth.mlp_W * truth.latents.back();
      hidden.colwise() += truth.mlp_b;
      eta += truth.mlp_A * hidden.array().tanh().matrix();
    }
    truth.rates.push_back(model.mean_of(eta.array()).matrix());
    data.counts.push_back(simulate_counts(settings, model, k, truth.rates.back(), truth));
    for (const auto& [name, readout] : truth.continuous)
      data.continuous[name].push_back(
          simulate_behavior(settings, readout, k, truth.latents.back()));
  }
  data.split = make_split(settings);
  return data;
}

}  // namespace spikevi
