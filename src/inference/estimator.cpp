#include "spikevi/inference/estimator.hpp"

#include "spikevi/error.hpp"

namespace spikevi {

double DeterministicEstimator::expected_log_likelihood(const std::vector<ModalityView>& modalities,
                                                       const GaussianMoments& q,
                                                       const LatentSampler*, Sites* targets) {
  return spikevi::expected_log_likelihood(modalities, q, work_, targets);
}

MonteCarloEstimator::MonteCarloEstimator(int samples, std::uint64_t seed)
    : samples_(samples), seed_(seed) {
  if (samples < 1) throw ConfigError("--samples must be >= 1 (got " + std::to_string(samples) + ")");
  standard_draws_.assign(static_cast<std::size_t>(samples_), Eigen::MatrixXd());
}

void MonteCarloEstimator::begin(RandomCounter counter) {
  counter_ = counter;
  standard_draws_.assign(static_cast<std::size_t>(samples_), Eigen::MatrixXd());
}

// eps_s from the stream keyed by (seed, kMonteCarlo, iteration, trial, inner + s), made once per
// begin() and shape; z_s = m + offsets(eps_s).
void MonteCarloEstimator::draw(const GaussianMoments& q, const LatentSampler& sampler) {
  const int dim = q.dim(), bins = q.bins();
  latent_samples_.resize(standard_draws_.size());
  for (std::size_t s = 0; s < standard_draws_.size(); ++s) {
    Eigen::MatrixXd& eps = standard_draws_[s];
    if (eps.rows() != dim || eps.cols() != bins) {
      RandomStream stream({seed_, RandomPurpose::kMonteCarlo},
                          {counter_.iteration, counter_.trial, counter_.inner + s});
      eps.resize(dim, bins);
      for (Eigen::Index j = 0; j < eps.size(); ++j)
        eps.data()[j] = stream.normal(static_cast<std::uint64_t>(j));
    }
    latent_samples_[s] = q.mean + sampler.sample_offsets(eps);
  }
}

double MonteCarloEstimator::expected_log_likelihood(const std::vector<ModalityView>& modalities,
                                                    const GaussianMoments& q,
                                                    const LatentSampler* sampler, Sites* targets) {
  if (!sampler) throw std::logic_error("MonteCarloEstimator: no sampler given");
  draw(q, *sampler);
  return spikevi::expected_log_likelihood(modalities, q, work_, targets, &latent_samples_);
}

std::unique_ptr<Estimator> make_estimator(const ModelSettings& settings) {
  if (settings.expectations == ExpectationMethod::kMonteCarlo)
    return std::make_unique<MonteCarloEstimator>(settings.samples, settings.seed);
  return std::make_unique<DeterministicEstimator>(settings.expectations);
}

}  // namespace spikevi
