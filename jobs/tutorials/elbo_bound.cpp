// Tutorial (a): the ELBO is a lower bound on log p(y), tight for the right family.
//
// One linear-Gaussian trial (latents z_t = A z_{t-1} + b + noise, observations
// y_t = W z_t + e + noise) with its parameters held fixed. Its evidence log p(y) is known
// exactly from a Kalman filter (the prediction-error decomposition, written here independently
// of spikevi). Then spikevi's own local step fits q(z) in both families:
//   * Gauss-Markov: the exact posterior is in the family, so the converged ELBO equals log p(y)
//     (DESIGN.md §2: one CVI step from any start lands on it);
//   * mean-field: the posterior's correlations between bins and dimensions are lost, the gap
//     log p(y) - ELBO = KL(q || p(z | y)) > 0, and the marginal variances are too small
//     (mean-field matches the diagonal of the posterior *precision*, not of the covariance).
// Prints both ELBOs, the evidence, the gaps and the variance ratios, then `figure` lines.
// Usage: tutorial_elbo_bound [--bins T] [--latents D] [--channels C] [--seed S]
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/variational_family.hpp"
#include "spikevi/model/dynamics.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/readout.hpp"

namespace {

struct LinearGaussian {
  Eigen::MatrixXd A, Q, Sigma0, W;
  Eigen::VectorXd b, mu0, e, R;
};

Eigen::MatrixXd standard_normal(int rows, int cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd out(rows, cols);
  for (double& value : out.reshaped()) value = normal(rng);
  return out;
}

// A stable model: A a scaled rotation (strong correlations over time), W mixing the latents.
LinearGaussian make_model(int latents, int channels, std::mt19937_64& rng) {
  LinearGaussian m;
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(standard_normal(latents, latents, rng));
  m.A = 0.95 * Eigen::MatrixXd(qr.householderQ());
  m.b = 0.1 * standard_normal(latents, 1, rng);
  m.Q = 0.1 * Eigen::MatrixXd::Identity(latents, latents);
  m.mu0 = Eigen::VectorXd::Zero(latents);
  m.Sigma0 = Eigen::MatrixXd::Identity(latents, latents);
  m.W = standard_normal(channels, latents, rng);
  m.e = standard_normal(channels, 1, rng);
  m.R = Eigen::VectorXd::Constant(channels, 0.5);
  return m;
}

Eigen::ArrayXXd simulate(const LinearGaussian& m, int bins, std::mt19937_64& rng) {
  const Eigen::MatrixXd q_factor = m.Q.llt().matrixL();
  const Eigen::MatrixXd start_factor = m.Sigma0.llt().matrixL();
  Eigen::VectorXd z = m.mu0 + start_factor * standard_normal(m.A.rows(), 1, rng);
  Eigen::ArrayXXd y(m.W.rows(), bins);
  for (int t = 0; t < bins; ++t) {
    if (t > 0) z = m.A * z + m.b + q_factor * standard_normal(m.A.rows(), 1, rng);
    const Eigen::ArrayXd noise = standard_normal(m.W.rows(), 1, rng).array();
    y.col(t) = (m.W * z + m.e).array() + m.R.array().sqrt() * noise;
  }
  return y;
}

// log p(y) = sum_t log N(y_t; W m_t|t-1 + e, W P_t|t-1 W' + R), the Kalman filter's
// one-step-ahead predictions (the prediction-error decomposition).
double kalman_log_evidence(const LinearGaussian& m, const Eigen::ArrayXXd& y) {
  Eigen::VectorXd predicted_mean = m.mu0;
  Eigen::MatrixXd predicted_cov = m.Sigma0;
  const double log_two_pi = std::log(2.0 * M_PI);
  double log_evidence = 0.0;
  for (Eigen::Index t = 0; t < y.cols(); ++t) {
    if (t > 0) {
      predicted_mean = m.A * predicted_mean + m.b;
      predicted_cov = m.A * predicted_cov * m.A.transpose() + m.Q;
    }
    const Eigen::VectorXd innovation = y.col(t).matrix() - m.W * predicted_mean - m.e;
    Eigen::MatrixXd innovation_cov = m.W * predicted_cov * m.W.transpose();
    innovation_cov.diagonal() += m.R;
    const Eigen::LLT<Eigen::MatrixXd> factor(innovation_cov);
    const Eigen::VectorXd whitened = factor.matrixL().solve(innovation);
    const double log_det = 2.0 * factor.matrixLLT().diagonal().array().log().sum();
    log_evidence -= 0.5 * (innovation.size() * log_two_pi + log_det + whitened.squaredNorm());
    const Eigen::MatrixXd gain =
        predicted_cov * m.W.transpose() *
        factor.solve(Eigen::MatrixXd::Identity(innovation.size(), innovation.size()));
    predicted_mean += gain * innovation;
    predicted_cov -= gain * m.W * predicted_cov;
  }
  return log_evidence;
}

// The posterior precision J of z = (z_1..z_T) as a dense matrix: the prior's
// blockdiag(Sigma0^-1, Q^-1, ...) + the transitions' A'Q^-1A / -Q^-1 A couplings, plus the
// observations' W'R^-1 W in every bin. The mean-field optimum for a Gaussian posterior is
// q = N(m, diag(1 / J_ii)), so KL(q || p(z | y)) = (sum_i log J_ii - log|J|) / 2: an
// independent check of the mean-field gap.
Eigen::MatrixXd dense_posterior_precision(const LinearGaussian& m, int bins) {
  const Eigen::Index D = m.A.rows();
  const Eigen::MatrixXd Q_inv = m.Q.inverse();
  const Eigen::MatrixXd observation = m.W.transpose() * m.R.cwiseInverse().asDiagonal() * m.W;
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(bins * D, bins * D);
  for (int t = 0; t < bins; ++t) {
    J.block(t * D, t * D, D, D) += (t == 0 ? m.Sigma0.inverse() : Q_inv) + observation;
    if (t + 1 < bins) {
      J.block(t * D, t * D, D, D) += m.A.transpose() * Q_inv * m.A;
      J.block((t + 1) * D, t * D, D, D) -= Q_inv * m.A;
      J.block(t * D, (t + 1) * D, D, D) -= m.A.transpose() * Q_inv;
    }
  }
  return J;
}

struct FamilyFit {
  double elbo = 0.0;
  int steps = 0;
  Eigen::MatrixXd variances;  // D x T, the marginal variances of q
};

FamilyFit fit_family(spikevi::FamilyKind kind, const spikevi::PriorBlocks& prior,
                     const std::vector<spikevi::ModalityView>& modalities, int latents, int bins) {
  spikevi::DeterministicEstimator estimator;
  const auto family = spikevi::make_family_evaluator(kind);
  const spikevi::LocalProblem problem{prior, modalities, *family, estimator};
  spikevi::GaussMarkovState state;
  problem.evaluate(spikevi::Sites::zero(latents, bins), state);  // start at q = the prior
  spikevi::LocalStepSettings settings;
  settings.tolerance = 1e-10;
  settings.max_iterations = 10000;
  const spikevi::LocalStepReport report = spikevi::cvi_local_step(problem, state, settings);
  FamilyFit fit;
  fit.elbo = state.elbo;
  fit.steps = report.iterations;
  fit.variances.resize(latents, bins);
  for (int t = 0; t < bins; ++t) fit.variances.col(t) = state.moments.cov_block(t).diagonal();
  return fit;
}

double quantile(Eigen::ArrayXd values, double p) {
  std::sort(values.data(), values.data() + values.size());
  return values(static_cast<Eigen::Index>(p * static_cast<double>(values.size() - 1)));
}

int option(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int bins = option(argc, argv, "--bins", 200), latents = option(argc, argv, "--latents", 3);
  const int channels = option(argc, argv, "--channels", 10);
  std::mt19937_64 rng(static_cast<std::uint64_t>(option(argc, argv, "--seed", 1)));
  const LinearGaussian model = make_model(latents, channels, rng);
  const Eigen::ArrayXXd y = simulate(model, bins, rng);

  spikevi::Readout readout;
  readout.C = model.W;
  readout.d = model.e;
  readout.precision = Eigen::MatrixXd::Identity(latents + 1, latents + 1).replicate(1, channels);
  const spikevi::ReadoutKernels kernels(readout);
  const spikevi::GaussianObservation observation(model.R);
  const std::vector<spikevi::ModalityView> modalities{
      {&observation, &kernels, &y, observation.log_base_measure(y)}};
  const spikevi::PriorBlocks prior =
      spikevi::prior_blocks(spikevi::DynamicsExpectations::point(model.A, model.b, model.Q),
                            model.mu0, model.Sigma0, bins);

  const double log_evidence = kalman_log_evidence(model, y);
  const FamilyFit gauss_markov =
      fit_family(spikevi::FamilyKind::kGaussMarkov, prior, modalities, latents, bins);
  const FamilyFit mean_field =
      fit_family(spikevi::FamilyKind::kMeanField, prior, modalities, latents, bins);
  const Eigen::ArrayXd ratio =
      (mean_field.variances.array() / gauss_markov.variances.array()).reshaped();

  std::printf("one linear-Gaussian trial: T = %d bins, D = %d latents, %d channels\n", bins,
              latents, channels);
  std::printf("  log p(y), Kalman filter            %14.6f\n", log_evidence);
  std::printf("  ELBO, Gauss-Markov family          %14.6f   (%d CVI steps)\n", gauss_markov.elbo,
              gauss_markov.steps);
  std::printf("  ELBO, mean-field family            %14.6f   (%d CVI steps)\n", mean_field.elbo,
              mean_field.steps);
  std::printf(
      "  gap log p(y) - ELBO: Gauss-Markov %.3g nats, mean-field %.4f nats"
      " (= KL(q || p(z | y)))\n",
      log_evidence - gauss_markov.elbo, log_evidence - mean_field.elbo);
  const Eigen::MatrixXd J = dense_posterior_precision(model, bins);
  const Eigen::LLT<Eigen::MatrixXd> J_factor(J);
  const double closed_form_gap = 0.5 * (J.diagonal().array().log().sum() -
                                        2.0 * J_factor.matrixLLT().diagonal().array().log().sum());
  const Eigen::ArrayXd closed_form_ratio =
      J.diagonal().array().inverse() /
      J_factor.solve(Eigen::MatrixXd::Identity(J.rows(), J.cols())).diagonal().array();
  std::printf("  closed form of the mean-field gap (sum log J_ii - log|J|)/2: %.4f nats\n",
              closed_form_gap);
  std::printf("  mean-field / exact marginal variance: median %.3f, 10%% %.3f, 90%% %.3f\n",
              quantile(ratio, 0.5), quantile(ratio, 0.1), quantile(ratio, 0.9));
  std::printf("  closed form 1 / (J_ii (J^-1)_ii): median %.3f\n",
              quantile(closed_form_ratio, 0.5));
  std::printf("figure gauss_markov_gap = %.3e\n", log_evidence - gauss_markov.elbo);
  std::printf("figure mean_field_gap = %.6f\n", log_evidence - mean_field.elbo);
  std::printf("figure mean_field_variance_ratio_median = %.4f\n", quantile(ratio, 0.5));
  std::printf("figure mean_field_gap_error = %.3e\n",
              std::abs(log_evidence - mean_field.elbo - closed_form_gap));
  return 0;
}
