#include "spikevi/inference/initialisation.hpp"

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/parallel/reproducible_sum.hpp"
#include "spikevi/math/smoothing.hpp"

namespace spikevi {
namespace {

Eigen::MatrixXd smoothed_log_counts(const TrialCounts& trial, double sd_bins) {
  const Eigen::MatrixXd log_counts = (trial.counts + 0.5).log().matrix();
  return gaussian_smooth_rows(log_counts, sd_bins);
}

}  // namespace

std::vector<GaussianMoments> pca_latents(const std::vector<TrialCounts>& trials, int dim,
                                         const InitialisationSettings& settings,
                                         Communicator& comm) {
  const Eigen::Index neurons = trials.empty() ? 0 : trials.front().counts.rows();
  // Pooled first and second moments of the smoothed log counts, summed exactly per trial so
  // that the start is the same on any number of ranks: one reduction.
  const std::size_t size = static_cast<std::size_t>(neurons + neurons * neurons + 1);
  ReproducibleSum pooled(size);
  std::vector<Eigen::MatrixXd> features;
  features.reserve(trials.size());
  Eigen::VectorXd contribution(static_cast<Eigen::Index>(size));
  for (const TrialCounts& trial : trials) {
    features.push_back(smoothed_log_counts(trial, settings.smoothing_sd_bins));
    Eigen::MatrixXd outer = Eigen::MatrixXd::Zero(neurons, neurons);
    outer.selfadjointView<Eigen::Lower>().rankUpdate(features.back());
    contribution << features.back().rowwise().sum(), outer.reshaped(),
        static_cast<double>(features.back().cols());
    pooled.add(std::span<const double>(contribution.data(), size));
  }
  pooled.allreduce(comm);
  const std::vector<double> buffer = pooled.values();
  const Eigen::VectorXd sum = Eigen::Map<const Eigen::VectorXd>(buffer.data(), neurons);
  const Eigen::MatrixXd outer =
      Eigen::Map<const Eigen::MatrixXd>(buffer.data() + neurons, neurons, neurons);
  const double bins = buffer.back();
  if (bins < 2) throw InputError("initialisation: fewer than 2 bins of data to fit");

  const Eigen::VectorXd mean = sum / bins;
  const Eigen::MatrixXd lower_cov = outer / bins - mean * mean.transpose();
  const Eigen::MatrixXd cov = lower_cov.selfadjointView<Eigen::Lower>();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(cov);
  // Eigenvalues ascend: the last `dim` columns are the leading components.
  Eigen::MatrixXd projection(neurons, dim);
  for (int i = 0; i < dim; ++i) {
    const Eigen::Index column = neurons - 1 - i;
    const double variance = std::max(eigen.eigenvalues()(column), 1e-12);
    projection.col(i) = eigen.eigenvectors().col(column) / std::sqrt(variance);
  }

  std::vector<GaussianMoments> latents(trials.size());
  for (std::size_t k = 0; k < trials.size(); ++k) {
    const Eigen::Index T = features[k].cols();
    GaussianMoments& q = latents[k];
    q.mean = projection.transpose() * (features[k].colwise() - mean);
    q.cov = (settings.latent_variance * Eigen::MatrixXd::Identity(dim, dim)).replicate(1, T);
    q.lag_cov = Eigen::MatrixXd::Zero(dim, dim * T);
    q.log_det_precision = 0.0;
  }
  return latents;
}

}  // namespace spikevi
