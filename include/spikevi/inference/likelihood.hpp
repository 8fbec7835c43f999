#pragma once
// The observation side of one trial: every modality (spikes, continuous channels) that shares
// the trial's latents, evaluated together at a Gaussian q(z) (DESIGN.md §1-2).
#include <Eigen/Dense>
#include <vector>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/mlp_readout.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

// One modality as one trial sees it. Non-owning: the caller keeps model, kernels, data alive.
struct ModalityView {
  const ObservationModel* model = nullptr;
  const ReadoutKernels* kernels = nullptr;
  const Eigen::ArrayXXd* data = nullptr;  // rows x T (NaN = missing where the model allows)
  double log_base_measure = 0.0;          // model->log_base_measure(data), computed once
  // --readout mlp (spikes only): the MLP readout's cubature replaces `kernels`' closed forms.
  const MlpKernels* mlp = nullptr;
  // --history K (spikes only): the known offset B f_t of eta (rows x T, history.hpp), added to
  // the kernels' eta mean (and to every Monte Carlo eta); null without history terms.
  const Eigen::ArrayXXd* offset = nullptr;
};

// Gaussian site parameters per bin (DESIGN.md §2): L_t (D x TD) and l_t (D x T).
struct Sites {
  Eigen::MatrixXd precision;  // D x TD
  Eigen::MatrixXd shift;      // D x T
  static Sites zero(int dim, int bins);
  int bins() const { return static_cast<int>(shift.cols()); }
};

// Scratch arrays reused across evaluations (no allocation in the sweep once sized).
struct LikelihoodWorkspace {
  Eigen::ArrayXXd mu, s2, ell, g, G;
  Eigen::ArrayXXd eta;
  PointwiseDerivatives at;
};

// The Monte Carlo estimates (DESIGN.md §6) of ell, g, G of one modality over the latent paths
// `samples` (z_s ~ q, D x T each; into work.ell, work.g, work.G): the averages of f, f', f''/2
// over eta_s = C z_s + d (+ the view's offset) (Bonnet and Price with the analytic second
// derivative, so G <= 0 for log-concave models), the terms free of eta included.
void monte_carlo_expectations(const ModalityView& modality,
                              const std::vector<Eigen::MatrixXd>& samples,
                              LikelihoodWorkspace& work);

// sum_t E_q[ell_t] over all modalities (base measures included) and, when `targets` is not
// null, the natural-gradient site targets (-2 d ell/d S_t, d ell/d m_t - 2 (d ell/d S_t) m_t)
// summed over modalities: each modality's own expectations or, with `samples`, their Monte
// Carlo estimates over those latent paths (the estimators of estimator.hpp).
double expected_log_likelihood(const std::vector<ModalityView>& modalities,
                               const GaussianMoments& q, LikelihoodWorkspace& work, Sites* targets,
                               const std::vector<Eigen::MatrixXd>* samples = nullptr);

}  // namespace spikevi
