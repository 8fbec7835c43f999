#include "spikevi/likelihood.hpp"

namespace spikevi {

Sites Sites::zero(int dim, int bins) {
  return Sites{Eigen::MatrixXd::Zero(dim, static_cast<Eigen::Index>(dim) * bins),
               Eigen::MatrixXd::Zero(dim, bins)};
}

double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                               const GaussianMoments& q, LikelihoodWorkspace& work,
                               Sites* targets) {
  if (targets) {
    targets->precision.setZero(q.dim(), static_cast<Eigen::Index>(q.dim()) * q.bins());
    targets->shift.setZero(q.dim(), q.bins());
  }
  double total = 0.0;
  for (const ModalityView& modality : modalities) {
    modality.kernels->eta_moments(q, work.mu, work.s2);
    modality.model->expected_log_likelihood(*modality.data, work.mu, work.s2, work.ell, work.g,
                                            work.G);
    total += work.ell.sum() + modality.log_base_measure;
    if (!targets) continue;
    modality.kernels->add_site_targets(work.g, work.G, q.mean, targets->precision, targets->shift);
  }
  return total;
}

}  // namespace spikevi
