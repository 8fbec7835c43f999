#pragma once
// How the local step takes E_q[log p(x | eta)] and its derivatives (DESIGN.md §6), as one
// named policy that joins the likelihood (the trial's modalities), the family's q and a random
// stream:
//   closed-form, quadrature  each modality's own deterministic expectations (the spike model
//                            was made with its closed form or an n-node Gauss-Hermite rule;
//                            ModelSettings::spike_observation), no random numbers;
//   monte-carlo              S reparameterised draws of the latent path, z = m + offsets(eps)
//                            through the family's factor, eps keyed by (seed, kMonteCarlo,
//                            iteration, trial, draw): g and G by Bonnet's and Price's theorems
//                            with the analytic f' and f'' (G never positive).
// The family does the mathematics of q (variational_family.hpp) and offers its sampler; the
// estimator owns the draws.
#include <Eigen/Dense>
#include <memory>
#include <vector>

#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {

// What a family offers an estimator: draws of the latent path from its q as last evaluated,
// z = m + sample_offsets(eps) for standard normal eps (D x T).
class LatentSampler {
 public:
  virtual ~LatentSampler() = default;
  virtual Eigen::MatrixXd sample_offsets(const Eigen::MatrixXd& eps) const = 0;
};

class Estimator {
 public:
  virtual ~Estimator() = default;
  virtual ExpectationMethod method() const = 0;
  // Fixes the random numbers of the evaluations until the next call (Monte Carlo; nothing
  // otherwise): one local step of one trial at one iteration. Common random numbers, so the
  // local step's backtracking compares like with like and a trial's result does not depend on
  // the rank count or on a restart.
  virtual void begin(RandomCounter counter) { (void)counter; }
  // sum_t E_q[ell_t] over all modalities (base measures included) and, when `targets` is not
  // null, the natural-gradient site targets. `sampler` draws from q (needed by Monte Carlo
  // only; may be null for the deterministic estimators).
  virtual double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                                         const GaussianMoments& q, const LatentSampler* sampler,
                                         Sites* targets) = 0;
};

// The modalities' own expectations: closed form or quadrature, as each model was made.
class DeterministicEstimator final : public Estimator {
 public:
  explicit DeterministicEstimator(ExpectationMethod method = ExpectationMethod::kClosedForm)
      : method_(method) {}
  ExpectationMethod method() const override { return method_; }
  double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                                 const GaussianMoments& q, const LatentSampler* sampler,
                                 Sites* targets) override;

 private:
  ExpectationMethod method_;
  LikelihoodWorkspace work_;
};

// `samples` draws of the latent path per evaluation, the same draws until the next begin().
class MonteCarloEstimator final : public Estimator {
 public:
  MonteCarloEstimator(int samples, std::uint64_t seed);  // ConfigError for samples < 1
  ExpectationMethod method() const override { return ExpectationMethod::kMonteCarlo; }
  void begin(RandomCounter counter) override;
  double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                                 const GaussianMoments& q, const LatentSampler* sampler,
                                 Sites* targets) override;
  // The draws of the last evaluation: z_s (D x T each) and the standard normal eps_s they were
  // made from, z_s = m + offsets(eps_s), so that log q(z_s) = -|eps_s|^2 / 2 - (T D / 2) log 2pi
  // + log|J_q| / 2 (J_q: q's precision, GaussianMoments::log_det_precision) for either family.
  const std::vector<Eigen::MatrixXd>& latent_samples() const { return latent_samples_; }
  const std::vector<Eigen::MatrixXd>& standard_draws() const { return standard_draws_; }

 private:
  void draw(const GaussianMoments& q, const LatentSampler& sampler);

  int samples_;
  std::uint64_t seed_;
  RandomCounter counter_;
  std::vector<Eigen::MatrixXd> standard_draws_;  // eps_s, made at the first evaluation
  std::vector<Eigen::MatrixXd> latent_samples_;
  LikelihoodWorkspace work_;
};

// The estimator the settings name (ModelSettings::expectations, samples, seed).
std::unique_ptr<Estimator> make_estimator(const ModelSettings& settings);

}  // namespace spikevi
