#pragma once
// The local step of one trial (DESIGN.md §2 "Local step"): the sites of q(z_k) moved towards
// their natural-gradient targets (CVI) or by Adam on their Euclidean gradient, under fixed
// globals. The optimizer policy (optimizer.hpp) picks which.
#include <vector>

#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/variational_family.hpp"
#include "spikevi/model/dynamics.hpp"

namespace spikevi {

// One trial's local problem: its prior blocks, its modalities, the family that makes q of the
// sites and the estimator that takes the expectations. Non-owning.
struct LocalProblem {
  const PriorBlocks& prior;
  const std::vector<ModalityView>& modalities;
  FamilyEvaluator& family;
  Estimator& estimator;
  // q, targets and ELBO at `sites` (FamilyEvaluator::evaluate).
  void evaluate(const Sites& sites, GaussMarkovState& out) const {
    family.evaluate(prior, modalities, sites, estimator, out);
  }
};

struct LocalStepSettings {
  double tolerance = 1e-6;  // stop when an accepted step gains less than this (nats/trial)
  int max_iterations = 100;
  int max_halvings = 40;  // rho below 2^-max_halvings: stop
  // Threads over the trials whose local steps run together (parallel/threads.hpp; 0:
  // OMP_NUM_THREADS or 1): the results are bitwise the same for any count.
  int threads = 1;
  // Partial local steps (an incremental E-step, Neal & Hinton 1998): > 0 stops after this many
  // accepted steps, each still never lowering ELBO_k, and counts the step as converged; 0 runs
  // to `tolerance` (the exact E-step).
  int steps = 0;
};

struct LocalStepReport {
  int iterations = 0;
  int evaluations = 0;
  bool converged = false;
  double start_elbo = 0.0;
  bool restarted = false;  // warm start only: the old sites were invalid, began from the prior
};

// CVI on the sites (DESIGN.md §2 "Local step"): L <- (1-rho) L + rho L_target, same for l,
// starting from `state` (already evaluated); a step is accepted only if ELBO_k does not drop,
// else rho is halved; after an accepted step rho doubles back towards 1.
LocalStepReport cvi_local_step(const LocalProblem& problem, GaussMarkovState& state,
                               const LocalStepSettings& settings);

// The same local step by Adam on the sites' Euclidean gradient (--optimizer adam): every
// finite step is taken (Adam is not a descent method); a step whose J is not SPD halves the
// learning rate. Stops when three steps in a row change ELBO_k by less than the tolerance.
LocalStepReport adam_local_step(const LocalProblem& problem, GaussMarkovState& state,
                                const LocalStepSettings& settings, const AdamSettings& adam);

// Evaluates q at `state`'s sites (a warm start from the previous iteration); when those sites
// are not valid under this prior (J not SPD, or a non-finite ELBO), starts again from zero sites,
// q = the prior (mean-field: its diagonal). Throws NumericalError only if even that fails.
// Returns whether it had to restart.
bool warm_start(const LocalProblem& problem, GaussMarkovState& state);

}  // namespace spikevi
