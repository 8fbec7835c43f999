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
}

std::unique_ptr<ObservationModel> ModelSettings::spike_observation(
    const RowParameters& parameters) const {
  const bool closed_form =
      spikes->has_closed_form() && expectations != ExpectationMethod::kQuadrature;
  return spikes->observation(parameters.values(), closed_form, quadrature_nodes);
}

}  // namespace spikevi
