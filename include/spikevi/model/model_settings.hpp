#pragma once
// Which model and which approximation a fit uses (DESIGN.md §1, §2, §6): the spike observation
// model, the local variational family and how expectations of the likelihood are taken.
#include <Eigen/Dense>
#include <memory>
#include <string>

#include "spikevi/inference/adam.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/inference/variational_family.hpp"

namespace spikevi {

enum class SpikeObservation { kPoisson, kNegativeBinomial, kBernoulli };
enum class ExpectationMethod { kClosedForm, kQuadrature, kMonteCarlo };

// "poisson", "negbin" (or "negative_binomial"), "bernoulli"; ConfigError naming --observation.
SpikeObservation parse_observation(const std::string& name);
// "poisson", "negative_binomial", "bernoulli" (as /truth's `observation` attribute).
std::string observation_name(SpikeObservation observation);
// "closed-form", "quadrature", "monte-carlo"; ConfigError naming --expectations.
ExpectationMethod parse_expectations(const std::string& name);
std::string expectations_name(ExpectationMethod method);
// The deterministic default: closed form for Poisson, quadrature for the others.
ExpectationMethod default_expectations(SpikeObservation observation);

struct ModelSettings {
  SpikeObservation observation = SpikeObservation::kPoisson;
  FamilyKind family = FamilyKind::kGaussMarkov;
  ExpectationMethod expectations = ExpectationMethod::kClosedForm;
  int quadrature_nodes = 20;
  // Monte Carlo: draws of the latent path per trial and local step; the draws are keyed by
  // (seed, iteration, trial position), so results do not depend on the rank count.
  int samples = 16;
  std::uint64_t seed = 1;
  // natural: the natural-gradient steps of DESIGN.md §2-3; adam: Adam on the Euclidean
  // gradients of the sites (local) and of the spike readout rows and log shapes (global).
  // The conjugate blocks (dynamics, initial state, Gaussian readouts) keep their closed-form
  // updates under either.
  OptimizerKind optimizer = OptimizerKind::kNatural;
  AdamSettings local_adam{.learning_rate = 0.05};
  AdamSettings global_adam{.learning_rate = 0.02};

  // ConfigError for a combination that does not exist: closed form for the negative binomial
  // or Bernoulli, nodes outside [1, 256], samples < 1.
  void validate() const;
  MonteCarloSettings monte_carlo() const;  // samples 0 unless expectations = monte-carlo
  // These settings with Monte Carlo replaced by default_expectations: what evaluation
  // (co-smoothing, held-out scores, decoding) infers with, so that it draws nothing.
  ModelSettings deterministic() const;
};

// The spike model the settings ask for. Its expected_log_likelihood is the closed form
// (Poisson) or quadrature (all others, and Poisson under `quadrature`); under Monte Carlo the
// local step averages its pointwise derivatives instead (likelihood.hpp), and the readout
// statistics of the global step keep using its deterministic expectations. `shapes`: the
// negative binomial's r_n (ignored otherwise).
std::unique_ptr<ObservationModel> make_spike_model(const ModelSettings& settings,
                                                   const Eigen::VectorXd& shapes = {});

}  // namespace spikevi
