#pragma once
// The optimiser policy (DESIGN.md §2-3): how the non-conjugate parameters move — the sites of
// each trial (local step), the spike readout rows and the spike model's row parameters (global
// step). `natural` takes the natural-gradient steps (CVI on the sites, variational online
// Newton on the readout rows, damped Newton on the row parameters); `adam` takes Adam steps on
// their Euclidean gradients instead, a baseline that shows what the natural gradients buy. The
// conjugate blocks (dynamics, initial state, Gaussian readouts) keep their closed-form updates
// under both (global_step.hpp). An optimiser owns whatever state it carries between iterations
// (Adam's moment estimates), which a checkpoint saves and restores.
#include <Eigen/Dense>
#include <map>
#include <memory>
#include <string>

#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/model/global_state.hpp"

namespace spikevi {

struct GlobalStepSize {
  double rho = 1.0;
  double scale = 1.0;  // K/|B|; 1 in full batch
};

// An optimiser's state between iterations, by name (written raw by a checkpoint).
using OptimizerState = std::map<std::string, Eigen::ArrayXXd>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual OptimizerKind kind() const = 0;
  // A copy with the same state (for the global step's retries from the same start).
  virtual std::unique_ptr<Optimizer> clone() const = 0;

  // The local step of one trial, from `state` as evaluated at its sites.
  virtual LocalStepReport local_step(const LocalProblem& problem, GaussMarkovState& state,
                                     const LocalStepSettings& settings) const = 0;
  // The spike readout rows (with one damping factor per row times step.rho).
  virtual void readout_step(GlobalState& globals, const GlobalStatistics& stats,
                            GlobalStepSize step, const Eigen::VectorXd& row_damping) = 0;
  // The spike model's row parameters (e.g. the negative binomial's shapes), if any.
  virtual void row_parameter_step(GlobalState& globals, const GlobalStatistics& stats,
                                  GlobalStepSize step, const Eigen::VectorXd& row_damping) = 0;

  // The state to checkpoint (none for the natural-gradient steps), and its restoration after
  // `global_steps` global steps (a restart at iteration i has taken i - 1 of them).
  virtual OptimizerState state() const { return {}; }
  virtual void restore(const OptimizerState& state, int global_steps) {
    (void)state;
    (void)global_steps;
  }

  // --readout mlp: one Adam step on the MLP weights (A, W, b) along the gradient of
  // scale * sum E_q log p + their log prior, at rate ModelSettings::mlp_adam's learning rate
  // times rho, under either policy (docs/model-and-inference.md "The MLP readout"). Nothing for
  // the linear readout.
  void mlp_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step);
  // The MLP weights' Adam moments from a state() (nothing if it holds none).
  void restore_mlp(const OptimizerState& state, int global_steps);

 protected:
  // The MLP weights' Adam moments, part of every optimiser's state() ("mlp_adam/...").
  void add_mlp_state(OptimizerState& state) const;

 private:
  friend std::unique_ptr<Optimizer> make_optimizer(const ModelSettings&, int, int, int, int);
  AdamSettings mlp_adam_;
  AdamState mlp_A_, mlp_W_, mlp_b_;
};

// The optimiser the settings name, for `rows` spike rows of `dim` latents and the model's
// `row_parameters` parameters per row (the sizes of Adam's moments).
// With `hidden` > 0 (--readout mlp), the MLP weights' Adam moments start at zero in those shapes.
std::unique_ptr<Optimizer> make_optimizer(const ModelSettings& settings, int dim, int rows,
                                          int row_parameters, int hidden = 0);

// The local step of an iteration: a warm start (warm_start) and the optimiser's local step.
LocalStepReport warm_local_step(const LocalProblem& problem, GaussMarkovState& state,
                                const LocalStepSettings& settings, const Optimizer& optimizer);

}  // namespace spikevi
