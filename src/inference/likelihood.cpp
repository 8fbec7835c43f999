#include "spikevi/inference/likelihood.hpp"

namespace spikevi {

Sites Sites::zero(int dim, int bins) {
  return Sites{Eigen::MatrixXd::Zero(dim, static_cast<Eigen::Index>(dim) * bins),
               Eigen::MatrixXd::Zero(dim, bins)};
}

void monte_carlo_expectations(const ModalityView& modality,
                              const std::vector<Eigen::MatrixXd>& samples,
                              LikelihoodWorkspace& work) {
  const Eigen::ArrayXXd& x = *modality.data;
  const Readout& readout = modality.kernels->readout();
  const Eigen::Index rows = x.rows(), bins = x.cols();
  work.ell.setZero(rows, bins);
  work.g.setZero(rows, bins);
  work.G.setZero(rows, bins);
  work.at.wanted = {true, true, true, false, false};
  for (int k = 0; k < 3; ++k) work.at.of_order[k].resize(rows);
  for (const Eigen::MatrixXd& z : samples) {
    work.eta = ((readout.C * z).colwise() + readout.d).array();
    if (modality.offset) work.eta += *modality.offset;
    for (Eigen::Index t = 0; t < bins; ++t) {
      modality.model->pointwise(x, t, work.eta.col(t), work.at);
      work.ell.col(t) += work.at.of_order[0];
      work.g.col(t) += work.at.of_order[1];
      work.G.col(t) += work.at.of_order[2];
    }
  }
  const double count = static_cast<double>(samples.size());
  work.ell /= count;
  work.g /= count;
  work.G *= 0.5 / count;  // Price: d/ds2 E f = E f'' / 2
  modality.model->add_eta_free_terms(x, work.ell);
}

double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                               const GaussianMoments& q, LikelihoodWorkspace& work, Sites* targets,
                               const std::vector<Eigen::MatrixXd>* samples) {
  if (targets) {
    targets->precision.setZero(q.dim(), static_cast<Eigen::Index>(q.dim()) * q.bins());
    targets->shift.setZero(q.dim(), q.bins());
  }
  double total = 0.0;
  for (const ModalityView& modality : modalities) {
    if (modality.mlp) {  // the cubature of mlp_readout.hpp (ModelSettings refuses Monte Carlo)
      total += modality.mlp->expected_log_likelihood(*modality.model, *modality.data, q,
                                                     targets ? &targets->precision : nullptr,
                                                     targets ? &targets->shift : nullptr) +
               modality.log_base_measure;
      continue;
    }
    if (!samples) {
      modality.kernels->eta_moments(q, work.mu, work.s2);
      if (modality.offset) work.mu += *modality.offset;
      modality.model->expected_log_likelihood(*modality.data, work.mu, work.s2, work.ell, work.g,
                                              work.G);
    } else {
      monte_carlo_expectations(modality, *samples, work);
    }
    total += work.ell.sum() + modality.log_base_measure;
    if (!targets) continue;
    modality.kernels->add_site_targets(work.g, work.G, q.mean, targets->precision, targets->shift);
  }
  return total;
}

}  // namespace spikevi
