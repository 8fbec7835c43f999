#include "spikevi/parallel/sharding.hpp"

#include <algorithm>
#include <cassert>

namespace spikevi {

Share rank_share(std::size_t count, int rank, int ranks) {
  const auto r = static_cast<std::size_t>(rank);
  const auto p = static_cast<std::size_t>(ranks);
  return Share{count * r / p, count * (r + 1) / p};
}

std::vector<GaussianMoments> allgather_moments(const std::vector<GaussianMoments>& local,
                                               Share share, const std::vector<int>& lengths,
                                               int dim, Communicator& comm) {
  assert(local.size() == share.size());
  const std::size_t per_bin = static_cast<std::size_t>(dim) * (2 * dim + 1);
  std::vector<std::size_t> offset(lengths.size() + 1, 0);
  for (std::size_t k = 0; k < lengths.size(); ++k)
    offset[k + 1] = offset[k] + static_cast<std::size_t>(lengths[k]) * per_bin + 1;

  // Per trial: log|J|, the D x T means, the D x TD covariances and lag covariances.
  std::vector<double> buffer(offset.back(), 0.0);
  for (std::size_t i = 0; i < local.size(); ++i) {
    const GaussianMoments& q = local[i];
    double* out = buffer.data() + offset[share.begin + i];
    *out++ = q.log_det_precision;
    out = std::copy_n(q.mean.data(), q.mean.size(), out);
    out = std::copy_n(q.cov.data(), q.cov.size(), out);
    std::copy_n(q.lag_cov.data(), q.lag_cov.size(), out);
  }
  comm.allreduce_sum(buffer);

  std::vector<GaussianMoments> all(lengths.size());
  for (std::size_t k = 0; k < lengths.size(); ++k) {
    const Eigen::Index T = lengths[k];
    const double* in = buffer.data() + offset[k];
    all[k].log_det_precision = in[0];
    all[k].mean = Eigen::Map<const Eigen::MatrixXd>(in + 1, dim, T);
    all[k].cov = Eigen::Map<const Eigen::MatrixXd>(in + 1 + dim * T, dim, dim * T);
    all[k].lag_cov = Eigen::Map<const Eigen::MatrixXd>(in + 1 + dim * T * (dim + 1), dim, dim * T);
  }
  return all;
}

}  // namespace spikevi
