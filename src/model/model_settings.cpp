#include "spikevi/model/model_settings.hpp"

#include "spikevi/error.hpp"

namespace spikevi {

SpikeObservation parse_observation(const std::string& name) {
  if (name == "poisson") return SpikeObservation::kPoisson;
  if (name == "negbin" || name == "negative_binomial") return SpikeObservation::kNegativeBinomial;
  if (name == "bernoulli") return SpikeObservation::kBernoulli;
  throw ConfigError("--observation must be poisson, negbin or bernoulli (got '" + name + "')");
}

std::string observation_name(SpikeObservation observation) {
  switch (observation) {
    case SpikeObservation::kNegativeBinomial:
      return "negative_binomial";
    case SpikeObservation::kBernoulli:
      return "bernoulli";
    case SpikeObservation::kPoisson:
      break;
  }
  return "poisson";
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

ExpectationMethod default_expectations(SpikeObservation observation) {
  return observation == SpikeObservation::kPoisson ? ExpectationMethod::kClosedForm
                                                   : ExpectationMethod::kQuadrature;
}

ModelSettings ModelSettings::deterministic() const {
  ModelSettings settings = *this;
  if (expectations == ExpectationMethod::kMonteCarlo)
    settings.expectations = default_expectations(observation);
  return settings;
}

void ModelSettings::validate() const {
  if (expectations == ExpectationMethod::kClosedForm && observation != SpikeObservation::kPoisson)
    throw ConfigError(
        "--expectations closed-form exists only for --observation poisson; use "
        "quadrature or monte-carlo for " +
        observation_name(observation));
  if (quadrature_nodes < 1 || quadrature_nodes > GaussHermiteRule::kMaxPoints)
    throw ConfigError("--quadrature-nodes must be in [1, 256] (got " +
                      std::to_string(quadrature_nodes) + ")");
  if (samples < 1)
    throw ConfigError("--samples must be >= 1 (got " + std::to_string(samples) + ")");
}

MonteCarloSettings ModelSettings::monte_carlo() const {
  if (expectations != ExpectationMethod::kMonteCarlo) return {};
  return MonteCarloSettings{samples, seed};
}

std::unique_ptr<ObservationModel> make_spike_model(const ModelSettings& settings,
                                                   const Eigen::VectorXd& shapes) {
  switch (settings.observation) {
    case SpikeObservation::kNegativeBinomial:
      return std::make_unique<NegativeBinomialObservation>(shapes, settings.quadrature_nodes);
    case SpikeObservation::kBernoulli:
      return std::make_unique<BernoulliObservation>(settings.quadrature_nodes);
    case SpikeObservation::kPoisson:
      break;
  }
  if (settings.expectations == ExpectationMethod::kQuadrature)
    return std::make_unique<PoissonQuadratureObservation>(settings.quadrature_nodes);
  return std::make_unique<PoissonObservation>();
}

}  // namespace spikevi
