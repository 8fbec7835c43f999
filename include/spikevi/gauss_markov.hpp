#pragma once
// The structured Gauss-Markov variational family of one trial (DESIGN.md §2):
// q(z) ∝ exp(-z'Jz/2 + h'z), J = J_prior + blockdiag(L_t), h = h_prior + l_t, and its
// natural-gradient (conjugate-computation VI) local step with backtracking.
#include <Eigen/Dense>
#include <vector>

#include "spikevi/block_tridiagonal.hpp"
#include "spikevi/dynamics.hpp"
#include "spikevi/gaussian_moments.hpp"
#include "spikevi/likelihood.hpp"

namespace spikevi {

// q(z) of one trial at given sites, with its ELBO and the site targets of the next step.
struct GaussMarkovState {
  Sites sites;
  GaussianMoments moments;
  Sites targets;                  // CVI targets at `moments` (rho = 1 step)
  double expected_log_lik = 0.0;  // sum_t E_q[ell_t]
  double elbo = 0.0;              // ELBO_k in the site form of DESIGN.md §2
};

// Evaluates q for `sites` under `prior`: one block-Cholesky/selected-inversion pass, the
// likelihood terms and the site-form ELBO. Throws NumericalError if J is not SPD.
class GaussMarkovEvaluator {
 public:
  void evaluate(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                const Sites& sites, GaussMarkovState& out);

 private:
  BlockTridiagonal precision_;
  BlockCholesky cholesky_;
  Eigen::MatrixXd shift_;
  LikelihoodWorkspace work_;
};

// ELBO_k = sum_t (E[ell_t] - l_t'm_t + tr(L_t (S_t + m_t m_t'))/2) + h'm/2 - log|J|/2
//          + (T D/2) log 2pi - c          (DESIGN.md §2, exact in the site parameterisation)
double site_form_elbo(const PriorBlocks& prior, const Sites& sites, const GaussianMoments& q,
                      double expected_log_lik);

struct LocalStepSettings {
  double tolerance = 1e-6;  // stop when an accepted step gains less than this (nats/trial)
  int max_iterations = 100;
  int max_halvings = 40;  // rho below 2^-max_halvings: stop
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
LocalStepReport gauss_markov_local_step(const PriorBlocks& prior,
                                        const std::vector<ModalityView>& modalities,
                                        GaussMarkovState& state, GaussMarkovEvaluator& evaluator,
                                        const LocalStepSettings& settings);

// The local step of an iteration: evaluates q at the state's sites under `prior` (a warm start
// from the previous iteration) and runs the local step. When those sites are not valid under
// this prior (J not SPD, or a non-finite ELBO), starts again from zero sites, q = the prior.
// Throws NumericalError only if even that fails.
LocalStepReport gauss_markov_warm_local_step(const PriorBlocks& prior,
                                             const std::vector<ModalityView>& modalities,
                                             GaussMarkovState& state,
                                             GaussMarkovEvaluator& evaluator,
                                             const LocalStepSettings& settings);

}  // namespace spikevi
