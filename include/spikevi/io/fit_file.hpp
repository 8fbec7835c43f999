#pragma once
// The results file of `spikevi fit` (FIT.h5), readable with h5py or MATLAB. Arrays are
// row-major with shapes outermost first:
//   /elbo [iterations]                       objective trace (DESIGN.md §3)
//   /trace/{elbo_per_spike,relative_change,seconds,local_iterations (mean per trial),
//           batch_trials, rho, undone_readout_rows} [iterations]
//   /globals/{C [N,D], d [N], A [D,D], b [D], Q [D,D] (posterior mean), mu0 [D], Sigma0 [D,D]},
//   /globals/B [D,U] with U known inputs (/inputs)
//   /globals/readout_covariance [N,D+1,D+1]  Laplace covariance P_n^-1 of (c_n, d_n)
//   /globals/dynamics/{M [D,D+U+1], V [D+U+1,D+U+1], Psi [D,D], nu}   q([A B b], Q), MNIW
//   /globals/dynamics_prior/{M,V,Psi,nu}, /globals/readout_prior/{mean, precision}
//   /globals/NAME [N] and /globals/NAME_log_precision [N] (or NAME_logit_precision) per row
//     parameter of the spike model (row_parameters.hpp): the negative binomial's dispersion,
//     the shapes r_n (variance = mean + mean^2/r_n), with the Laplace precision of log r_n
//   /globals/continuous/NAME/{W [C,D], e [C], R [C], readout_covariance [C,D+1,D+1],
//     readout_precision [C,D+1,D+1]} per Gaussian modality
//   root attributes observation (poisson | negative_binomial | bernoulli), family, expectations
//   /latents/trials [K], /latents/mean [K,bins,D], /latents/cov [K,bins,D,D] (NaN padding)
//   /timing attributes: seconds_{total,local,global,allreduce,initialisation,io,other},
//     load_imbalance, peak_rss_bytes (max over ranks), ranks, iterations (see `spikevi fit`)
//   root attributes: elbo, elbo_per_spike, evidence_laplace, termination, and provenance
//   (version, git_revision, date, ranks, data); /config attributes: the options used.
// Everything is in the canonical gauge of gauge.hpp.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/inference/model_settings.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/global_state.hpp"

namespace spikevi {

struct FitRecord {
  GlobalState globals;
  std::vector<IterationRecord> trace;
  std::string termination;
  double elbo = 0.0;  // on all trials at the final state (the last trace entry in full batch)
  double evidence_laplace = 0.0;
  double spike_count = 0.0;
  std::vector<int> trials;               // fitted trials, file indices
  std::vector<GaussianMoments> latents;  // one per entry of `trials`
  int padded_bins = 0;                   // second dimension of /latents/mean
  std::map<std::string, std::string> configuration;
  std::map<std::string, std::string> provenance;
  std::map<std::string, double> timing;  // written as attributes of /timing
  ModelSettings model;                   // observation, family, expectations
};

void write_fit(const std::string& path, const FitRecord& record);

// The globals of a fit file (for evaluate/decode), with the spike model's row parameters
// `row_parameters`; throws InputError naming what is missing.
GlobalState read_fit_globals(const std::string& path,
                             const std::vector<RowParameterSpec>& row_parameters = {});

// The globals with the model they belong to (files without the attributes: Poisson,
// Gauss-Markov, closed form).
struct FitModel {
  GlobalState globals;
  ModelSettings model;  // spike model, family and expectations of the fit
  // The spike model of these globals, with its deterministic expectations.
  std::unique_ptr<ObservationModel> spike_model() const;
};
// The spike model named by the file's `observation` attribute is looked up in `models`.
FitModel read_fit_model(const std::string& path,
                        const SpikeModelCatalogue& models = builtin_spike_models());

// InputError (naming both files) unless `data` has the fit's neurons and known inputs.
void check_fit_matches_data(const FitModel& fit, const std::string& fit_path, const Dataset& data);

// The whole data set of `data_path`, read for `fit` (evaluate, decode): a file of another neuron
// count is refused from its metadata, before any trial is held; then check_fit_matches_data.
Dataset read_dataset_for_fit(const std::string& data_path, const FitModel& fit,
                             const std::string& fit_path);

}  // namespace spikevi
