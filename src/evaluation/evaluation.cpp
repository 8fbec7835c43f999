#include "spikevi/evaluation/evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/local_step.hpp"

namespace spikevi {
namespace {

const Split& require_split(const Dataset& data) {
  if (!data.split || data.split->test_trials.empty() || data.split->heldout_neurons.empty())
    throw InputError(data.path +
                     ": /split/test_trials and /split/heldout_neurons are needed "
                     "for co-smoothing");
  return *data.split;
}

}  // namespace

std::vector<Eigen::MatrixXd> predicted_rates(const Readout& readout,
                                             const std::vector<GaussianMoments>& latents,
                                             const ObservationModel& model) {
  const ReadoutKernels kernels(readout);
  std::vector<Eigen::MatrixXd> rates;
  rates.reserve(latents.size());
  Eigen::ArrayXXd mu, s2, mean;
  for (const GaussianMoments& q : latents) {
    kernels.eta_moments(q, mu, s2);
    model.predicted_mean(mu, s2, mean);
    rates.push_back(mean.matrix());
  }
  return rates;
}

BaselineResult cosmoothing_baseline(const Dataset& data, SmoothingFeatures features, int threads) {
  const Split& split = require_split(data);
  const std::vector<int> heldin = split.heldin_neurons();
  SmoothingBaselineSettings settings;
  settings.features = features;
  settings.threads = threads;
  BaselineResult result;
  result.features = features;
  result.fit = smoothing_baseline(
      select_trials_and_rows(data.counts, data.first_trial, split.train_trials, heldin),
      select_trials_and_rows(data.counts, data.first_trial, split.train_trials,
                             split.heldout_neurons),
      select_trials_and_rows(data.counts, data.first_trial, split.test_trials, heldin), settings);
  result.bits_per_spike = bits_per_spike(result.fit.rates, heldout_counts(data));
  return result;
}

Baselines cosmoothing_baselines(const Dataset& data, int threads) {
  return Baselines{cosmoothing_baseline(data, SmoothingFeatures::kRaw, threads),
                   cosmoothing_baseline(data, SmoothingFeatures::kLog, threads)};
}

std::vector<Eigen::MatrixXd> heldout_counts(const Dataset& data) {
  const Split& split = require_split(data);
  return select_trials_and_rows(data.counts, data.first_trial, split.test_trials,
                                split.heldout_neurons);
}

std::vector<Eigen::MatrixXd> test_history_features(const HistoryCoupling& history,
                                                   const Dataset& data) {
  if (!history.active()) return {};
  const Split& split = require_split(data);
  for (int row : history.basis.rows)
    if (std::find(split.heldout_neurons.begin(), split.heldout_neurons.end(), row) !=
        split.heldout_neurons.end())
      throw InputError("co-smoothing: the fit's history terms read neuron " + std::to_string(row) +
                       ", held out in " + data.path +
                       ": refit with --history on a file whose /split/heldout_neurons it is");
  std::vector<Eigen::MatrixXd> features;
  for (const TrialCounts& trial : make_trial_counts(data, split.test_trials, {}))
    features.push_back(history.basis.features(trial.counts));
  return features;
}

CosmoothingResult cosmooth(const InferenceModel& model, const Dataset& data,
                           const LocalStepSettings& settings) {
  const Split& split = require_split(data);
  const std::vector<int> heldin = split.heldin_neurons();
  std::vector<TrialCounts> test = make_trial_counts(data, split.test_trials, heldin);
  const std::vector<Eigen::MatrixXd> features = test_history_features(model.history, data);
  for (std::size_t k = 0; k < features.size(); ++k) test[k].history_features = features[k];
  const std::vector<GaussMarkovState> states = infer_latents(model.rows(heldin), test, settings);

  std::vector<GaussianMoments> latents;
  for (const GaussMarkovState& state : states) latents.push_back(state.moments);
  CosmoothingResult result;
  const InferenceModel heldout = model.rows(split.heldout_neurons);
  const std::unique_ptr<ObservationModel> observation = heldout.observation();
  const ReadoutKernels kernels(heldout.readout);
  const GaussianCubature cubature = model.model.cubature(model.readout.dim());
  const std::unique_ptr<MlpKernels> mlp = heldout.mlp_kernels(cubature);
  Eigen::ArrayXXd mean, variance, rates;
  for (std::size_t k = 0; k < latents.size(); ++k) {
    const GaussianMoments& q = latents[k];
    if (mlp) {  // the MLP readout: rates and eta moments by its cubature
      mlp->eta_moments(q, mean, variance);
      rates = mlp->predicted_mean(*observation, q);
    } else {
      kernels.eta_moments(q, mean, variance);
      if (heldout.history.active()) mean += heldout.history.offset(features[k]);
      observation->predicted_mean(mean, variance, rates);  // as predicted_rates does
    }
    result.rates.push_back(rates.matrix());
    result.eta_mean.push_back(mean.matrix());
    result.eta_variance.push_back(variance.matrix());
  }
  result.bits_per_spike = bits_per_spike(result.rates, heldout_counts(data));
  return result;
}

namespace {

Readout truth_readout(const Truth& truth) {
  Readout readout;
  readout.C = truth.C;
  readout.d = truth.d;
  const Eigen::Index side = truth.C.cols() + 1;
  readout.precision = Eigen::MatrixXd::Identity(side, side).replicate(1, truth.C.rows());
  return readout;
}

}  // namespace

InferenceModel truth_model(const Truth& truth, const SpikeModelCatalogue& models) {
  const std::shared_ptr<const SpikeModel> spikes = models.get(truth.observation);
  RowParameters row_parameters =
      RowParameters::at_prior(spikes->row_parameters(), static_cast<int>(truth.C.rows()));
  for (RowParameter& parameter : row_parameters.parameters)
    parameter.values = truth.row_parameters.at(parameter.spec.name);
  MlpReadout mlp;
  if (truth.mlp_W.size() > 0) mlp = MlpReadout{truth.mlp_A, truth.mlp_W, truth.mlp_b};
  return InferenceModel{LatentPrior{DynamicsExpectations::point(truth.A, truth.b, truth.Q, truth.B),
                                    truth.mu0, truth.Sigma0},
                        truth_readout(truth),
                        ModelSettings::for_model(spikes),
                        row_parameters,
                        mlp,
                        HistoryCoupling{}};
}

}  // namespace spikevi

namespace spikevi {
namespace {

// z'Jz for a block-tridiagonal J and a path z (D x T).
double quadratic_form(const BlockTridiagonal& J, const Eigen::MatrixXd& z) {
  const int dim = J.block_size();
  double total = 0.0;
  for (Eigen::Index t = 0; t < z.cols(); ++t) {
    total += z.col(t).dot(J.diagonal.middleCols(t * dim, dim) * z.col(t));
    if (t > 0) total += 2.0 * z.col(t).dot(J.lower.middleCols(t * dim, dim) * z.col(t - 1));
  }
  return total;
}

// log p(x | z) of one path: the pointwise log-likelihood at eta = C z + d, the terms free of
// eta and the base measure.
double path_log_likelihood(const ObservationModel& model, const Readout& readout,
                           const Eigen::ArrayXXd& x, const Eigen::MatrixXd& z,
                           double log_base_measure, const Eigen::ArrayXXd* offset) {
  Eigen::ArrayXXd eta = ((readout.C * z).colwise() + readout.d).array();
  if (offset) eta += *offset;
  PointwiseDerivatives at;
  at.wanted = {true, false, false, false, false};
  at.of_order[0].resize(x.rows());
  Eigen::ArrayXXd eta_free = Eigen::ArrayXXd::Zero(x.rows(), x.cols());
  model.add_eta_free_terms(x, eta_free);
  double total = eta_free.sum() + log_base_measure;
  for (Eigen::Index t = 0; t < x.cols(); ++t) {
    model.pointwise(x, t, eta.col(t), at);
    total += at.of_order[0].sum();
  }
  return total;
}

struct LogMeanExp {
  double value = 0.0;
  double standard_error = 0.0;
};

// log mean_s exp(w_s) and its delta-method standard error sd(e^w) / (sqrt(S) mean(e^w)).
LogMeanExp log_mean_exp(const Eigen::ArrayXd& log_weights) {
  const double largest = log_weights.maxCoeff();
  const Eigen::ArrayXd weights = (log_weights - largest).exp();
  const double mean = weights.mean();
  const double samples = static_cast<double>(weights.size());
  const double variance = samples > 1 ? (weights - mean).square().sum() / (samples - 1.0) : 0.0;
  return {largest + std::log(mean), std::sqrt(variance / samples) / mean};
}

}  // namespace

HeldoutScores heldout_scores(const GlobalState& globals, const ModelSettings& model,
                             const std::vector<TrialCounts>& trials,
                             const LocalStepSettings& settings, int samples, std::uint64_t seed) {
  if (samples < 1)
    throw ConfigError("--samples must be >= 1 (got " + std::to_string(samples) + ")");
  const auto spike_model = model.deterministic().spike_observation(globals.spike_parameters);
  const LatentPrior point = LatentPrior::point_estimate(globals);
  const ReadoutKernels kernels(globals.spikes);
  const GaussianCubature cubature = model.cubature(globals.dim());
  const std::unique_ptr<MlpKernels> mlp =
      globals.mlp.active() ? std::make_unique<MlpKernels>(globals.spikes, globals.mlp, cubature)
                           : nullptr;
  const std::unique_ptr<FamilyEvaluator> evaluator = make_family_evaluator(model.family);
  DeterministicEstimator deterministic;
  MonteCarloEstimator importance(samples, seed);  // the proposal's draws
  const double log_2pi = std::log(2.0 * std::numbers::pi);

  HeldoutScores scores;
  scores.samples = samples;
  double variance = 0.0;
  for (const TrialCounts& trial : trials) {
    const int bins = static_cast<int>(trial.counts.cols()), dim = globals.dim();
    const PriorBlocks prior = point.blocks(bins, trial.inputs_or_null());
    const double base = spike_model->log_base_measure(trial.counts);
    const Eigen::ArrayXXd offset = history_offset(globals.history, trial);
    const Eigen::ArrayXXd* offset_or_null = globals.history.active() ? &offset : nullptr;
    const std::vector<ModalityView> modalities{
        ModalityView{spike_model.get(), &kernels, &trial.counts, base, mlp.get(), offset_or_null}};
    GaussMarkovState state;
    const LocalProblem problem{prior, modalities, *evaluator, deterministic};
    problem.evaluate(Sites::zero(dim, bins), state);
    cvi_local_step(problem, state, settings);
    scores.elbo += state.elbo;
    scores.spike_count += trial.counts.sum();

    // Draws from q at the converged sites: one more evaluation with Monte Carlo expectations.
    importance.begin(RandomCounter{0, static_cast<std::uint64_t>(trial.position), 0});
    GaussMarkovState sampled;
    evaluator->evaluate(prior, modalities, state.sites, importance, sampled);
    const double log_q_constant =
        -0.5 * bins * dim * log_2pi + 0.5 * sampled.moments.log_det_precision;
    Eigen::ArrayXd log_weights(samples);
    for (int s = 0; s < samples; ++s) {
      const Eigen::MatrixXd& z = importance.latent_samples()[static_cast<std::size_t>(s)];
      const double log_prior = -0.5 * quadratic_form(prior.precision, z) +
                               prior.shift.cwiseProduct(z).sum() - prior.constant;
      const double log_q =
          log_q_constant -
          0.5 * importance.standard_draws()[static_cast<std::size_t>(s)].squaredNorm();
      const double log_likelihood =
          mlp ? mlp->path_log_likelihood(*spike_model, trial.counts, z) + base
              : path_log_likelihood(*spike_model, globals.spikes, trial.counts, z, base,
                                    offset_or_null);
      log_weights(s) = log_likelihood + log_prior - log_q;
    }
    const LogMeanExp estimate = log_mean_exp(log_weights);
    scores.log_likelihood += estimate.value;
    variance += estimate.standard_error * estimate.standard_error;
  }
  scores.log_likelihood_se = std::sqrt(variance);
  return scores;
}

}  // namespace spikevi
