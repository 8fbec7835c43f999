// spikevi simulate: write a simulated data set with /truth and /split.
#include <cstdio>
#include <string>

#include "cli/command.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi::cli {
namespace {

std::string observation_help();
void add_row_parameter_options(po::options_description& options);

struct SimulateOptions {
  std::string out, preset = "default", observation = "poisson", link = "exp", readout = "linear";
  bool overwrite = false;
  SimulationSettings settings;
};

po::options_description simulate_options(SimulateOptions& o) {
  SimulationSettings& s = o.settings;
  po::options_description options("Simulation options");
  // clang-format off
  options.add_options()
      ("out", po::value(&o.out)->required(), "data set to write (HDF5)")
      ("preset", po::value(&o.preset)->default_value("default"),
       "default: well-tuned units; sparse: about half the units nearly silent, one in ten "
       "bursty, ragged trials (the harder case of real recordings). Options given explicitly "
       "still apply on top of the preset.")
      ("neurons", po::value(&s.neurons)->default_value(s.neurons), "number of neurons")
      ("latents", po::value(&s.latents)->default_value(s.latents), "latent dimension D")
      ("trials", po::value(&s.trials)->default_value(s.trials), "number of trials")
      ("bins", po::value(&s.bins)->default_value(s.bins), "bins per trial (the longest)")
      ("bin-width", po::value(&s.bin_width_s)->default_value(s.bin_width_s), "bin width in seconds")
      ("seed", po::value(&s.seed)->default_value(s.seed), "random seed")
      ("mean-rate", po::value(&s.mean_rate_hz)->default_value(s.mean_rate_hz),
       "geometric mean baseline firing rate of ordinary units (Hz)")
      ("rate-log-sd", po::value(&s.rate_log_sd)->default_value(s.rate_log_sd),
       "SD of the log baseline rate across ordinary units")
      ("readout-scale", po::value(&s.readout_scale)->default_value(s.readout_scale, "0.6"),
       "SD of each unit's log-rate modulation by the latents")
      ("silent-fraction", po::value(&s.silent_fraction)->default_value(s.silent_fraction),
       "share of nearly silent units (baseline 0.5-2 Hz)")
      ("bursty-fraction", po::value(&s.bursty_fraction)->default_value(s.bursty_fraction),
       "share of bursty units (low baseline, strong all-positive loadings)")
      ("bursty-gain", po::value(&s.bursty_gain)->default_value(s.bursty_gain),
       "bursty units' modulation SD in multiples of --readout-scale")
      ("test-fraction", po::value(&s.test_fraction)->default_value(s.test_fraction, "0.2"),
       "share of trials in /split/test_trials")
      ("heldout-fraction", po::value(&s.heldout_fraction)->default_value(s.heldout_fraction),
       "share of neurons in /split/heldout_neurons")
      ("min-length-fraction", po::value(&s.min_length_fraction)->default_value(s.min_length_fraction),
       "below 1: ragged trials with lengths uniform on [fraction*bins, bins]")
      ("observation", po::value(&o.observation)->default_value(o.observation),
       observation_help().c_str())
      ("link", po::value(&o.link)->default_value(o.link),
       "exp or softplus: the spike model's link (softplus picks the NAME-softplus model)")
      ("behavior", po::value(&s.behavior_channels)->default_value(s.behavior_channels),
       "channels of a Gaussian behaviour modality /continuous/behavior driven by the latents "
       "(0: none)")
      ("behavior-scale", po::value(&s.behavior_scale)->default_value(s.behavior_scale),
       "SD of each behaviour channel's modulation by the latents")
      ("behavior-noise", po::value(&s.behavior_noise)->default_value(s.behavior_noise, "0.1"),
       "behaviour noise variance R of every channel")
      ("behavior-missing", po::value(&s.behavior_missing)->default_value(s.behavior_missing),
       "probability that a behaviour value is missing (NaN)")
      ("inputs", po::value(&s.inputs)->default_value(s.inputs),
       "number of known inputs /inputs driving the latents (sparse 0/1 pulses; 0: none)")
      ("readout", po::value(&o.readout)->default_value("linear"),
       "linear, or mlp: log-rates c.z + d + a'tanh(W z + b) with a random hidden layer "
       "(/truth/mlp_A, _W, _b)")
      ("hidden", po::value(&s.mlp_hidden)->default_value(8), "--readout mlp: hidden units H")
      ("mlp-scale", po::value(&s.mlp_scale)->default_value(s.mlp_scale),
       "--readout mlp: SD of each unit's log-rate modulation by the hidden layer")
      ("mlp-input-scale", po::value(&s.mlp_input_scale)->default_value(s.mlp_input_scale),
       "--readout mlp: SD of each hidden unit's input W z (how far tanh saturates)")
      ("overwrite", po::bool_switch(&o.overwrite), "replace an existing --out");
  // clang-format on
  add_row_parameter_options(options);
  return options;
}

// --observation's help: every model of the catalogue with its description.
std::string observation_help() {
  std::string text = "spike-count model:";
  for (const auto& model : builtin_spike_models().models()) {
    const std::vector<std::string> aliases = model->aliases();
    text += " " + (aliases.empty() ? model->name() : aliases.front() + " (" + model->name() + ")") +
            ": " + model->description() + ";";
  }
  text.back() = '.';
  return text;
}

// --NAME VALUE for every row parameter of every model (the negative binomial's --dispersion),
// the value every neuron gets; unset, the model's default.
void add_row_parameter_options(po::options_description& options) {
  for (const auto& model : builtin_spike_models().models())
    for (const RowParameterSpec& spec : model->row_parameters()) {
      char text[64];
      std::snprintf(text, sizeof text, " (default %g)", spec.simulation_default);
      options.add_options()(spec.name.c_str(), po::value<double>(),
                            (spec.description + ", --observation " + model->name() + text).c_str());
    }
}

// The row-parameter values given on the command line.
void apply_row_parameter_options(const po::variables_map& values, SimulationSettings& settings) {
  for (const auto& model : builtin_spike_models().models())
    for (const RowParameterSpec& spec : model->row_parameters())
      if (values.count(spec.name))
        settings.row_parameters[spec.name] = values[spec.name].as<double>();
}

}  // namespace

int run_simulate(const CommandContext& context) {
  SimulateOptions o;
  po::options_description options = simulate_options(o);
  po::variables_map values;
  if (!parse_options("simulate",
                     "Simulates spike counts (Poisson, negative binomial or Bernoulli) from a "
                     "latent linear dynamical system, optionally with a Gaussian behaviour "
                     "modality and known inputs, and writes them in the input format, with "
                     "/truth and /split.",
                     options, context, values))
    return 0;
  if (o.preset == "sparse") {
    // The preset sets the unit mix and trial lengths; options given explicitly still win.
    SimulationSettings sparse = sparse_preset(o.settings);
    const auto keep_explicit = [&](const char* option, double& preset_value, double given) {
      if (!values[option].defaulted()) preset_value = given;
    };
    keep_explicit("min-length-fraction", sparse.min_length_fraction,
                  o.settings.min_length_fraction);
    keep_explicit("silent-fraction", sparse.silent_fraction, o.settings.silent_fraction);
    keep_explicit("bursty-fraction", sparse.bursty_fraction, o.settings.bursty_fraction);
    keep_explicit("bursty-gain", sparse.bursty_gain, o.settings.bursty_gain);
    o.settings = sparse;
  } else if (o.preset != "default") {
    throw ConfigError("--preset must be 'default' or 'sparse' (got '" + o.preset + "')");
  }
  o.settings.observation = builtin_spike_models().with_link(o.observation, o.link)->name();
  apply_row_parameter_options(values, o.settings);
  if (o.readout != "mlp" && o.readout != "linear")
    throw ConfigError("--readout must be linear or mlp (got '" + o.readout + "')");
  if (o.readout == "mlp" && o.settings.mlp_hidden < 1)
    throw ConfigError("--hidden must be >= 1 (got " + std::to_string(o.settings.mlp_hidden) + ")");
  if (o.readout == "linear") o.settings.mlp_hidden = 0;
  validate_settings(o.settings);
  o.settings.observation = builtin_spike_models().find(o.settings.observation)->name();
  check_output_path("--out", o.out, o.overwrite);
  if (!context.comm->is_root()) return 0;

  const SimulationSettings& s = o.settings;
  const Dataset data = simulate(s);
  write_atomically(
      o.out, [&](const std::string& path) { write_dataset(path, data, provenance(context)); });
  std::string model = s.observation;
  for (const RowParameterSpec& spec :
       builtin_spike_models().find(s.observation)->row_parameters()) {
    char value[64];
    std::snprintf(value, sizeof value, " (%s = %g)", spec.name.c_str(),
                  data.truth->row_parameters.at(spec.name)(0));
    model += value;
  }
  if (s.behavior_channels > 0)
    model += ", " + std::to_string(s.behavior_channels) + " behavior channel" +
             (s.behavior_channels == 1 ? "" : "s");
  if (s.inputs > 0)
    model += ", " + std::to_string(s.inputs) + " input" + (s.inputs == 1 ? "" : "s");
  if (s.mlp_hidden > 0) model += ", MLP readout of " + std::to_string(s.mlp_hidden) + " units";
  double valid_bins = 0.0;
  for (int length : data.trial_lengths) valid_bins += length;
  std::printf(
      "spikevi simulate: wrote %s: %d trials x %d bins x %d neurons, D = %d, %s, "
      "%.0f spikes (%.3f per bin and neuron)\n",
      o.out.c_str(), data.trials, data.bins, data.neurons, s.latents, model.c_str(),
      data.total_spikes(), data.total_spikes() / (data.neurons * valid_bins));
  return 0;
}

}  // namespace spikevi::cli
