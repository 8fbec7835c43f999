#pragma once
// Which model and which approximation a fit uses (DESIGN.md §1, §2, §6): the spike observation
// model, the local variational family and how expectations of the likelihood are taken.
#include <Eigen/Dense>
#include <cstdint>
#include <memory>
#include <string>

#include "spikevi/inference/adam.hpp"
#include "spikevi/math/cubature.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/row_parameters.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {

// The local variational family (variational_family.hpp): structured Gauss-Markov or mean-field.
enum class FamilyKind { kGaussMarkov, kMeanField };

// "gauss-markov" or "mean-field" (ConfigError naming --family otherwise).
FamilyKind parse_family(const std::string& name);
std::string family_name(FamilyKind family);

// How the local step takes its expectations (the estimators of estimator.hpp).
enum class ExpectationMethod { kClosedForm, kQuadrature, kMonteCarlo };

// "closed-form", "quadrature", "monte-carlo"; ConfigError naming --expectations.
ExpectationMethod parse_expectations(const std::string& name);
std::string expectations_name(ExpectationMethod method);
// The deterministic default: closed form where the model has one, quadrature otherwise.
ExpectationMethod default_expectations(const SpikeModel& model);

// The spike readout (docs/model-and-inference.md "The MLP readout"): linear eta = c'z + d, or
// the MLP readout of mlp_readout.hpp.
enum class ReadoutKind { kLinear, kMlp };
// The partial local steps (LocalStepSettings::steps) an MLP-readout fit takes unless told:
// its cubature makes the exact E-step cost 3-5x the linear readout's local steps, for an
// answer partial steps reach as well (docs/model-and-inference.md, "The MLP readout").
inline constexpr int kMlpDefaultLocalSteps = 1;

// "linear" or "mlp" (ConfigError naming --readout otherwise).
ReadoutKind parse_readout(const std::string& name);
std::string readout_name(ReadoutKind readout);

struct ModelSettings {
  std::shared_ptr<const SpikeModel> spikes = poisson_spike_model();
  FamilyKind family = FamilyKind::kGaussMarkov;
  ExpectationMethod expectations = ExpectationMethod::kClosedForm;
  // The most Gauss-Hermite nodes per site; models with a node schedule (negative binomial,
  // Bernoulli, Poisson by quadrature) take fewer where s2 is small, unless fixed_quadrature.
  int quadrature_nodes = 20;
  bool fixed_quadrature = false;
  // Monte Carlo: draws of the latent path per trial and local step; the draws are keyed by
  // (seed, iteration, trial position), so results do not depend on the rank count.
  int samples = 16;
  std::uint64_t seed = 1;
  // natural: the natural-gradient steps of DESIGN.md §2-3; adam: Adam on the Euclidean
  // gradients of the sites (local) and of the spike readout rows and row parameters (global).
  // The conjugate blocks (dynamics, initial state, Gaussian readouts) keep their closed-form
  // updates under either.
  OptimizerKind optimizer = OptimizerKind::kNatural;
  AdamSettings local_adam{.learning_rate = 0.05};
  AdamSettings global_adam{.learning_rate = 0.02};
  // --readout mlp: H hidden units, the prior precision of its weights (A, W, b), their Adam
  // step (under either optimizer), the seed of their random start, and the cubature: 0 = the
  // third-degree spherical-radial rule (2D nodes), n >= 1 = the n^D-node Gauss-Hermite product,
  // its nodes turned per bin by one of cubature_rotations random rotations (0 = unrotated).
  ReadoutKind readout = ReadoutKind::kLinear;
  int hidden = 8;
  double mlp_prior_precision = 1.0;
  AdamSettings mlp_adam{.learning_rate = 0.02};
  std::uint64_t mlp_seed = 1;
  int cubature_points = 0;
  int cubature_rotations = 256;

  // These settings for `model` with its default expectations.
  static ModelSettings for_model(std::shared_ptr<const SpikeModel> model,
                                 FamilyKind family = FamilyKind::kGaussMarkov);
  // ConfigError for a combination that does not exist: closed form for a model without one,
  // nodes outside [1, 256], samples < 1; for --readout mlp: --hidden < 1, and what the MLP
  // readout does not support (monte-carlo expectations, the mean-field family, --optimizer
  // adam, spike models with row parameters).
  void validate() const;
  // The MLP readout's cubature rule in `dim` latents (cubature_points, cubature_rotations).
  GaussianCubature cubature(int dim) const;
  int mlp_hidden() const { return readout == ReadoutKind::kMlp ? hidden : 0; }
  // These settings with Monte Carlo replaced by default_expectations: what evaluation
  // (co-smoothing, held-out scores, decoding) infers with, so that it draws nothing.
  ModelSettings deterministic() const;
  // The spike model's likelihood at these row-parameter values (rows of `parameters`; none for
  // models without). Its expected_log_likelihood is the closed form (closed-form) or quadrature
  // (quadrature, and models without a closed form); under Monte Carlo the local step averages
  // its pointwise derivatives instead (likelihood.hpp), and the readout statistics of the global
  // step keep using its deterministic expectations.
  std::unique_ptr<ObservationModel> spike_observation(const RowParameters& parameters = {}) const;
};

}  // namespace spikevi
