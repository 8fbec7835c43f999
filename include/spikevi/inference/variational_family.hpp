#pragma once
// The local variational families of one trial (DESIGN.md §2) behind one interface. Both are
// parameterised by the same Gaussian sites per bin (L_t, l_t), blended by the same
// natural-gradient (conjugate-computation VI) local step; they differ in the q they make of the
// sites. With J = J_prior + blockdiag(L_t) and h = h_prior + l_t:
//   Gauss-Markov: q = N(J^-1 h, J^-1), block-tridiagonal precision (gauss_markov.hpp);
//   mean-field:   q = prod_ti N(m_ti, 1 / J_(ti,ti)) with m = J^-1 h (mean_field.hpp).
// So warm starts, checkpoints and the driver are the same for both.
#include <Eigen/Dense>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/inference/adam.hpp"
#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {

enum class FamilyKind { kGaussMarkov, kMeanField };

// "gauss-markov" or "mean-field" (ConfigError naming --family otherwise).
FamilyKind parse_family(const std::string& name);
std::string family_name(FamilyKind family);

// q(z) of one trial at given sites, with its ELBO and the site targets of the next step.
struct GaussMarkovState {
  Sites sites;
  GaussianMoments moments;
  Sites targets;                  // CVI targets at `moments` (rho = 1 step)
  double expected_log_lik = 0.0;  // sum_t E_q[ell_t] (a Monte Carlo estimate under MC)
  double elbo = 0.0;              // ELBO_k of the family (DESIGN.md §2)
};

// Reparameterized Monte Carlo expectations (DESIGN.md §6): `samples` draws eps ~ N(0, I) of
// the latent path, z = m + offsets(eps) through the family's factor. 0 samples: off.
struct MonteCarloSettings {
  int samples = 0;
  std::uint64_t seed = 0;
};

class FamilyEvaluator {
 public:
  virtual ~FamilyEvaluator() = default;
  virtual FamilyKind kind() const = 0;
  // q, its expected log-likelihood, site targets and ELBO at `sites` under `prior`. Throws
  // NumericalError if J is not SPD.
  virtual void evaluate(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                        const Sites& sites, GaussMarkovState& out) = 0;
  // The Euclidean gradient of state.elbo with respect to its sites (the ascent direction
  // --optimizer adam follows). Uses the factor of the last evaluation: call it right after
  // evaluate(..., state). With r = (l~ - l) - (L~ - L) m (the CVI residuals) and a = J^-1 r:
  //   d/dl_t = a_t,   d/dL_t = -(a_t m_t' + m_t a_t')/2 + dS_t/2,
  // dS_t = (J^-1 (L~ - L) J^-1)_tt for Gauss-Markov, diag(s2_t^2 (L~ - L)_t,ii) for mean-field.
  virtual void site_gradient(const GaussMarkovState& state, Sites& gradient) = 0;
  // From now on, every evaluation averages the likelihood over the same draws eps, keyed by
  // (settings.seed, kMonteCarlo, counter, sample): common random numbers, so the local
  // step's backtracking compares like with like and a trial's result does not depend on the
  // rank count. Call per trial and iteration; samples = 0 switches Monte Carlo off.
  void use_monte_carlo(const MonteCarloSettings& settings, RandomCounter counter);
  // S draws of the latent path from q as last evaluated (D x T each), and the standard normal
  // draws eps_s they were made from: z_s = m + offsets(eps_s), so that
  // log q(z_s) = -|eps_s|^2 / 2 - (T D / 2) log 2 pi + log|J_q| / 2 (J_q: q's precision,
  // GaussianMoments::log_det_precision) for either family.
  const std::vector<Eigen::MatrixXd>& latent_samples() const { return work_.latent_samples; }
  const std::vector<Eigen::MatrixXd>& standard_draws() const { return standard_draws_; }

 protected:
  // J = J_prior + blockdiag(sites.precision) into precision_ and its factor cholesky_,
  // h = h_prior + sites.shift into shift_ (both families start here). Throws NumericalError if
  // J is not SPD.
  void factor(const PriorBlocks& prior, const Sites& sites);
  // The part of site_gradient both families share: d/dl = a and -(a_t m_t' + m_t a_t')/2
  // (the caller adds dS_t / 2), with the factor of the last evaluation.
  void mean_part_of_site_gradient(const GaussMarkovState& state, Sites& gradient) const;
  // Under Monte Carlo, sets work_.latent_samples to m + offsets(eps_s) for each draw.
  template <class Offsets>
  void draw_latents(const GaussianMoments& q, Offsets&& offsets);

  LikelihoodWorkspace work_;
  BlockTridiagonal precision_;
  BlockCholesky cholesky_;
  Eigen::MatrixXd shift_;

 private:
  MonteCarloSettings monte_carlo_;
  RandomCounter counter_;
  std::vector<Eigen::MatrixXd> standard_draws_;  // eps_s, D x T
};

template <class Offsets>
void FamilyEvaluator::draw_latents(const GaussianMoments& q, Offsets&& offsets) {
  work_.latent_samples.resize(monte_carlo_.samples > 0 ? standard_draws_.size() : 0);
  if (monte_carlo_.samples == 0) return;
  const int dim = q.dim(), bins = q.bins();
  for (std::size_t s = 0; s < standard_draws_.size(); ++s) {
    Eigen::MatrixXd& eps = standard_draws_[s];
    if (eps.rows() != dim || eps.cols() != bins) {
      RandomStream stream({monte_carlo_.seed, RandomPurpose::kMonteCarlo},
                          {counter_.iteration, counter_.trial, counter_.inner + s});
      eps.resize(dim, bins);
      for (Eigen::Index j = 0; j < eps.size(); ++j)
        eps.data()[j] = stream.normal(static_cast<std::uint64_t>(j));
    }
    work_.latent_samples[s] = q.mean + offsets(eps);
  }
}

std::unique_ptr<FamilyEvaluator> make_family_evaluator(FamilyKind family);

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
LocalStepReport local_step(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                           GaussMarkovState& state, FamilyEvaluator& evaluator,
                           const LocalStepSettings& settings);

// The same local step by Adam on the sites' Euclidean gradient (--optimizer adam): every
// finite step is taken (Adam is not a descent method); a step whose J is not SPD halves the
// learning rate. Stops when three steps in a row change ELBO_k by less than the tolerance.
LocalStepReport adam_local_step(const PriorBlocks& prior,
                                const std::vector<ModalityView>& modalities,
                                GaussMarkovState& state, FamilyEvaluator& evaluator,
                                const LocalStepSettings& settings, const AdamSettings& adam);

// The local step of an iteration: evaluates q at the state's sites under `prior` (a warm start
// from the previous iteration) and runs the local step. When those sites are not valid under
// this prior (J not SPD, or a non-finite ELBO), starts again from zero sites, q = the prior
// (mean-field: its diagonal). Throws NumericalError only if even that fails. With `adam`, the
// steps are adam_local_step's instead of the natural-gradient ones.
LocalStepReport warm_local_step(const PriorBlocks& prior,
                                const std::vector<ModalityView>& modalities,
                                GaussMarkovState& state, FamilyEvaluator& evaluator,
                                const LocalStepSettings& settings,
                                const AdamSettings* adam = nullptr);

}  // namespace spikevi
