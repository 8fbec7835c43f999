// The settings that name a fit's model and approximation: parsing, defaults, the combinations
// that do not exist, and the spike likelihood they make.
#include <gtest/gtest.h>

#include <string>

#include "spikevi/error.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/model_settings.hpp"

namespace spikevi {
namespace {

std::string message_of(const ModelSettings& settings) {
  try {
    settings.validate();
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(ModelSettings, DefaultsAreTheClosedFormPoissonGaussMarkovFit) {
  const ModelSettings settings;
  EXPECT_EQ(settings.spikes->name(), "poisson");
  EXPECT_EQ(settings.family, FamilyKind::kGaussMarkov);
  EXPECT_EQ(settings.expectations, ExpectationMethod::kClosedForm);
  EXPECT_EQ(settings.optimizer, OptimizerKind::kNatural);
  EXPECT_EQ(message_of(settings), "");
}

TEST(ModelSettings, ModelsWithoutAClosedFormDefaultToQuadrature) {
  for (const char* name : {"negbin", "bernoulli"}) {
    const ModelSettings settings = ModelSettings::for_model(builtin_spike_models().get(name));
    EXPECT_EQ(settings.expectations, ExpectationMethod::kQuadrature) << name;
    EXPECT_EQ(default_expectations(*settings.spikes), ExpectationMethod::kQuadrature);
  }
  EXPECT_EQ(default_expectations(*poisson_spike_model()), ExpectationMethod::kClosedForm);
}

TEST(ModelSettings, RefusesCombinationsThatDoNotExist) {
  ModelSettings settings = ModelSettings::for_model(builtin_spike_models().get("negbin"));
  settings.expectations = ExpectationMethod::kClosedForm;
  EXPECT_NE(message_of(settings).find("closed-form exists only for --observation poisson"),
            std::string::npos)
      << message_of(settings);
  settings = ModelSettings{};
  settings.quadrature_nodes = 0;
  EXPECT_EQ(message_of(settings), "--quadrature-nodes must be in [1, 256] (got 0)");
  settings.quadrature_nodes = 257;
  EXPECT_EQ(message_of(settings), "--quadrature-nodes must be in [1, 256] (got 257)");
  settings = ModelSettings{};
  settings.samples = 0;
  EXPECT_EQ(message_of(settings), "--samples must be >= 1 (got 0)");
}

TEST(ModelSettings, DeterministicReplacesMonteCarloByTheModelsDefault) {
  ModelSettings settings = ModelSettings::for_model(builtin_spike_models().get("negbin"));
  settings.expectations = ExpectationMethod::kMonteCarlo;
  EXPECT_EQ(settings.deterministic().expectations, ExpectationMethod::kQuadrature);
  settings = ModelSettings{};
  settings.expectations = ExpectationMethod::kMonteCarlo;
  EXPECT_EQ(settings.deterministic().expectations, ExpectationMethod::kClosedForm);
  settings.expectations = ExpectationMethod::kQuadrature;  // a deterministic choice stays
  EXPECT_EQ(settings.deterministic().expectations, ExpectationMethod::kQuadrature);
}

TEST(ModelSettings, MakeTheEstimatorAndTheLikelihoodTheyName) {
  ModelSettings settings;
  EXPECT_EQ(make_estimator(settings)->method(), ExpectationMethod::kClosedForm);
  EXPECT_EQ(dynamic_cast<const QuadratureObservation*>(settings.spike_observation().get()),
            nullptr);
  settings.expectations = ExpectationMethod::kQuadrature;
  settings.quadrature_nodes = 12;
  const auto by_rule = settings.spike_observation();
  ASSERT_NE(dynamic_cast<const QuadratureObservation*>(by_rule.get()), nullptr);
  EXPECT_EQ(dynamic_cast<const QuadratureObservation&>(*by_rule).nodes(), 12);
  settings.expectations = ExpectationMethod::kMonteCarlo;
  EXPECT_EQ(make_estimator(settings)->method(), ExpectationMethod::kMonteCarlo);
  EXPECT_EQ(dynamic_cast<const QuadratureObservation*>(settings.spike_observation().get()),
            nullptr);  // Monte Carlo: the global step keeps the closed form
}

TEST(ModelSettings, NamesParseAndPrint) {
  for (const auto method : {ExpectationMethod::kClosedForm, ExpectationMethod::kQuadrature,
                            ExpectationMethod::kMonteCarlo})
    EXPECT_EQ(parse_expectations(expectations_name(method)), method);
  for (const auto family : {FamilyKind::kGaussMarkov, FamilyKind::kMeanField})
    EXPECT_EQ(parse_family(family_name(family)), family);
  EXPECT_THROW(parse_expectations("exact"), ConfigError);
  EXPECT_THROW(parse_family("full-rank"), ConfigError);
}

}  // namespace
}  // namespace spikevi
