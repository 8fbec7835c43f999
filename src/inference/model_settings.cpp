#include "spikevi/inference/model_settings.hpp"

#include "spikevi/error.hpp"

namespace spikevi {

FamilyKind parse_family(const std::string& name) {
  if (name == "gauss-markov") return FamilyKind::kGaussMarkov;
  if (name == "mean-field") return FamilyKind::kMeanField;
  throw ConfigError("--family must be gauss-markov or mean-field (got '" + name + "')");
}

std::string family_name(FamilyKind family) {
  return family == FamilyKind::kMeanField ? "mean-field" : "gauss-markov";
}

ExpectationMethod parse_expectations(const std::string& name) {
  if (name == "closed-form") return ExpectationMethod::kClosedForm;
  if (name == "quadrature") return ExpectationMethod::kQuadrature;
  if (name == "monte-carlo") return ExpectationMethod::kMonteCarlo;
  throw ConfigError("--expectations must be closed-form, quadrature or monte-carlo (got '" + name +
                    "')");
}

std::string expectations_name(ExpectationMethod method) {
  switch (method) {
    case ExpectationMethod::kQuadrature:
      return "quadrature";
    case ExpectationMethod::kMonteCarlo:
      return "monte-carlo";
    case ExpectationMethod::kClosedForm:
      break;
  }
  return "closed-form";
}

ExpectationMethod default_expectations(const SpikeModel& model) {
  return model.has_closed_form() ? ExpectationMethod::kClosedForm : ExpectationMethod::kQuadrature;
}

ReadoutKind parse_readout(const std::string& name) {
  if (name == "linear") return ReadoutKind::kLinear;
  if (name == "mlp") return ReadoutKind::kMlp;
  throw ConfigError("--readout must be linear or mlp (got '" + name + "')");
}

std::string readout_name(ReadoutKind readout) {
  return readout == ReadoutKind::kMlp ? "mlp" : "linear";
}

GaussianCubature ModelSettings::cubature(int dim) const {
  if (cubature_points > 0)
    return GaussianCubature::gauss_hermite_product(dim, cubature_points)
        .rotated(cubature_rotations);
  if (cubature_rotations == 0) return GaussianCubature::spherical_radial(dim);
  return GaussianCubature::randomised_spherical_radial(dim, cubature_rotations);
}

ModelSettings ModelSettings::for_model(std::shared_ptr<const SpikeModel> model, FamilyKind family) {
  ModelSettings settings;
  settings.expectations = default_expectations(*model);
  settings.spikes = std::move(model);
  settings.family = family;
  return settings;
}

ModelSettings ModelSettings::deterministic() const {
  ModelSettings settings = *this;
  if (expectations == ExpectationMethod::kMonteCarlo)
    settings.expectations = default_expectations(*spikes);
  return settings;
}

void ModelSettings::validate() const {
  if (!spikes) throw ConfigError("no spike model given");
  if (expectations == ExpectationMethod::kClosedForm && !spikes->has_closed_form())
    throw ConfigError(
        "--expectations closed-form exists only for --observation poisson (and other models "
        "with a closed form); use quadrature or monte-carlo for " +
        spikes->name());
  if (quadrature_nodes < 1 || quadrature_nodes > GaussHermiteRule::kMaxPoints)
    throw ConfigError("--quadrature-nodes must be in [1, 256] (got " +
                      std::to_string(quadrature_nodes) + ")");
  if (samples < 1)
    throw ConfigError("--samples must be >= 1 (got " + std::to_string(samples) + ")");
  if (readout != ReadoutKind::kMlp) return;
  if (hidden < 1) throw ConfigError("--hidden must be >= 1 (got " + std::to_string(hidden) + ")");
  if (!(mlp_prior_precision > 0.0))
    throw ConfigError("the MLP weights' prior precision must be > 0");
  if (expectations == ExpectationMethod::kMonteCarlo)
    throw ConfigError(
        "--readout mlp takes its expectations by cubature; --expectations monte-carlo is not "
        "available with it");
  if (family != FamilyKind::kGaussMarkov)
    throw ConfigError("--readout mlp needs --family gauss-markov (its cubature uses S_t)");
  if (optimizer != OptimizerKind::kNatural)
    throw ConfigError("--readout mlp is available with --optimizer natural only");
  if (!spikes->row_parameters().empty())
    throw ConfigError("--readout mlp is not available for --observation " + spikes->name() +
                      " (a model with per-neuron parameters)");
}

std::unique_ptr<ObservationModel> ModelSettings::spike_observation(
    const RowParameters& parameters) const {
  const bool closed_form =
      spikes->has_closed_form() && expectations != ExpectationMethod::kQuadrature;
  std::unique_ptr<ObservationModel> model =
      spikes->observation(parameters.values(), closed_form, quadrature_nodes);
  if (fixed_quadrature) {
    if (auto* quadrature = dynamic_cast<QuadratureObservation*>(model.get()))
      quadrature->use_fixed_rule();
  }
  return model;
}

}  // namespace spikevi
