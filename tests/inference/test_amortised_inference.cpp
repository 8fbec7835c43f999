// Amortised inference of one trial: the annealed ELBO's gradient through the Gauss-Markov
// chain and the encoder against finite differences, and the collapse diagnostics on models
// whose answer is known (DESIGN.md §6, §8).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/amortised_inference.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::exact_expectations;
using testing::random_normal;

Eigen::ArrayXXd random_counts(int neurons, int bins, std::mt19937_64& rng, double mean = 1.2) {
  std::poisson_distribution<int> poisson(mean);
  Eigen::ArrayXXd counts(neurons, bins);
  for (Eigen::Index i = 0; i < counts.size(); ++i) counts.data()[i] = poisson(rng);
  return counts;
}

// A Poisson trial under a stable random prior.
struct PoissonTrial {
  Readout readout;
  PoissonObservation model;
  Eigen::ArrayXXd counts;
  PriorBlocks prior;
  std::unique_ptr<ReadoutKernels> kernels;
  std::vector<ModalityView> modalities;
  PoissonTrial(int D, int N, int T, double loading_sd, std::mt19937_64& rng) {
    readout.C = loading_sd > 0 ? random_normal(N, D, rng, loading_sd) : Eigen::MatrixXd::Zero(N, D);
    readout.d = random_normal(N, 1, rng, 0.3);
    readout.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
    counts = random_counts(N, T, rng);
    const Eigen::MatrixXd A = 0.9 * Eigen::MatrixXd::Identity(D, D);
    prior = prior_blocks(DynamicsExpectations::point(A, Eigen::VectorXd::Zero(D),
                                                     0.1 * Eigen::MatrixXd::Identity(D, D)),
                         Eigen::VectorXd::Zero(D), Eigen::MatrixXd::Identity(D, D), T);
    kernels = std::make_unique<ReadoutKernels>(readout);
    modalities = {ModalityView{&model, kernels.get(), &counts, 0.0}};
  }
};

double annealed_elbo(const LocalProblem& problem, const SiteEncoder& encoder,
                     const Eigen::ArrayXXd& input, double beta) {
  GaussMarkovState state;
  Eigen::VectorXd unused;
  EncoderPass pass;
  return amortised_trial(problem, encoder, input, beta, state, unused, pass);
}

TEST(AmortisedInference, AnnealedElboGradientMatchesFiniteDifferencesThroughTheChain) {
  std::mt19937_64 rng(9);
  const PoissonTrial trial(2, 5, 7, 0.6, rng);
  GaussMarkovEvaluator family;
  const LocalProblem problem{trial.prior, trial.modalities, family, exact_expectations()};
  const EncoderShape shape{.inputs = 5, .hidden = 4, .window = 3, .latents = 2};
  SiteEncoder encoder(shape, 3);
  Eigen::VectorXd weights = encoder.parameters();
  std::normal_distribution<double> normal(0.0, 0.3);
  for (Eigen::Index i = 0; i < weights.size(); ++i) weights(i) += normal(rng);
  encoder.set_parameters(weights);

  for (const double beta : {1.0, 0.3, 0.0}) {
    GaussMarkovState state;
    Eigen::VectorXd gradient;
    EncoderPass pass;
    const double value =
        amortised_trial(problem, encoder, trial.counts, beta, state, gradient, pass);
    // ELBO_beta = beta ELBO + (1 - beta) E[ell]; at beta = 1 it is the ELBO.
    EXPECT_NEAR(value, beta * state.elbo + (1 - beta) * state.expected_log_lik, 1e-12);
    const double h = 1e-5;
    for (Eigen::Index i = 0; i < weights.size(); ++i) {
      Eigen::VectorXd plus = weights, minus = weights;
      plus(i) += h;
      minus(i) -= h;
      const double fd = (annealed_elbo(problem, SiteEncoder(shape, plus), trial.counts, beta) -
                         annealed_elbo(problem, SiteEncoder(shape, minus), trial.counts, beta)) /
                        (2 * h);
      // The site gradient's dS term is itself a central difference (relative error ~1e-9) and
      // the ELBO is O(10) nats: 1e-6 relative is far above both errors, far below a wrong term.
      EXPECT_NEAR(gradient(i), fd, 1e-6 * (1.0 + std::abs(fd)))
          << "beta " << beta << " weight " << i;
    }
  }
}

// The free-bits path: the gradient of E_q[ell] that amortised_trial adds beside ELBO_beta's is
// bit for bit the one of a pass at beta = 0 (checked against finite differences above).
TEST(AmortisedInference, TheLikelihoodGradientBesideIsThatOfBetaZero) {
  std::mt19937_64 rng(9);
  const PoissonTrial trial(2, 5, 7, 0.6, rng);
  GaussMarkovEvaluator family;
  const LocalProblem problem{trial.prior, trial.modalities, family, exact_expectations()};
  const EncoderShape shape{.inputs = 5, .hidden = 4, .window = 3, .latents = 2};
  const SiteEncoder encoder(shape, 3);
  GaussMarkovState state;
  Eigen::VectorXd annealed, likelihood, at_zero;
  EncoderPass pass;
  amortised_trial(problem, encoder, trial.counts, 0.3, state, annealed, pass, &likelihood);
  amortised_trial(problem, encoder, trial.counts, 0.0, state, at_zero, pass);
  ASSERT_EQ(likelihood.size(), at_zero.size());
  EXPECT_EQ(likelihood, at_zero);
  EXPECT_GT((likelihood - annealed).cwiseAbs().maxCoeff(), 1e-6);
}

// Prior marginals by the forward recursion mu_t = A mu_t-1 + b, P_t = A P_t-1 A' + Q, and the
// exact posterior by dense Gaussian conditioning on y_t = W z_t + e + N(0, diag R): an oracle
// that shares no code with the block-tridiagonal smoother.
TEST(CollapseDiagnostics, PerDimensionKlIsTheClosedFormOnALinearGaussianModel) {
  const int D = 2, T = 6, channels = 3;
  std::mt19937_64 rng(12);
  const testing::LinearGaussianModel m = testing::random_linear_gaussian_model(D, channels, rng);
  Eigen::ArrayXXd y = random_normal(channels, T, rng, 1.0).array();

  std::vector<Eigen::VectorXd> mu(T);
  std::vector<Eigen::MatrixXd> P(T);
  mu[0] = m.mu0;
  P[0] = m.Sigma0;
  for (int t = 1; t < T; ++t) {
    mu[t] = m.A * mu[t - 1] + m.b;
    P[t] = m.A * P[t - 1] * m.A.transpose() + m.Q;
  }
  Eigen::MatrixXd prior_cov(T * D, T * D);
  Eigen::VectorXd prior_mean(T * D);
  for (int t = 0; t < T; ++t) {
    prior_mean.segment(t * D, D) = mu[t];
    Eigen::MatrixXd power = Eigen::MatrixXd::Identity(D, D);
    for (int s = t; s < T; ++s) {  // Cov(z_s, z_t) = A^(s-t) P_t
      prior_cov.block(s * D, t * D, D, D) = power * P[t];
      prior_cov.block(t * D, s * D, D, D) = (power * P[t]).transpose();
      power = m.A * power;
    }
  }
  const Eigen::MatrixXd Rinv = m.R.cwiseInverse().asDiagonal();
  Eigen::MatrixXd information = prior_cov.inverse();
  Eigen::VectorXd potential = information * prior_mean;
  Sites sites = Sites::zero(D, T);
  for (int t = 0; t < T; ++t) {
    const Eigen::MatrixXd L = m.W.transpose() * Rinv * m.W;
    const Eigen::VectorXd l = m.W.transpose() * Rinv * (y.col(t).matrix() - m.e);
    information.block(t * D, t * D, D, D) += L;
    potential.segment(t * D, D) += l;
    sites.precision.middleCols(t * D, D) = L;
    sites.shift.col(t) = l;
  }
  const Eigen::MatrixXd posterior_cov = information.inverse();
  const Eigen::VectorXd posterior_mean = posterior_cov * potential;
  Eigen::VectorXd expected = Eigen::VectorXd::Zero(D);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < D; ++i) {
      const double s2 = posterior_cov(t * D + i, t * D + i), p2 = P[t](i, i);
      const double diff = posterior_mean(t * D + i) - mu[t](i);
      expected(i) += 0.5 * (std::log(p2 / s2) + (s2 + diff * diff) / p2 - 1.0) / T;
    }

  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  testing::GaussianTrial trial(m, y);
  const ReadoutKernels kernels(trial.readout);
  GaussMarkovEvaluator family;
  GaussMarkovState state;
  family.evaluate(prior, {ModalityView{&trial.model, &kernels, &trial.y, 0.0}}, sites,
                  exact_expectations(), state);
  const CollapseSums sums = collapse_sums(prior, state.moments);
  EXPECT_EQ(sums.bins, T);
  EXPECT_GT(expected.minCoeff(), 0.05);  // the data move both dimensions
  for (int i = 0; i < D; ++i) EXPECT_NEAR(sums.kl_per_dimension()(i), expected(i), 1e-9);
  // The posterior-mean variance over bins, also from the oracle.
  for (int i = 0; i < D; ++i) {
    Eigen::VectorXd means(T);
    for (int t = 0; t < T; ++t) means(t) = posterior_mean(t * D + i);
    const double variance = (means.array() - means.mean()).square().mean();
    EXPECT_NEAR(sums.mean_variance()(i), variance, 1e-9);
  }
}

TEST(CollapseDiagnostics, PackingRoundTripsAndCountsDimensionsAboveTheThreshold) {
  CollapseSums sums = CollapseSums::zero(3);
  sums.kl << 1, 2, 3;
  sums.mean << 0, 0, 0;
  sums.mean_squared << 0.5, 0.02, 0.0;  // over 2 bins: variances 0.25, 0.01, 0
  sums.bins = 2;
  std::vector<double> packed(10);
  sums.pack_into(packed.data());
  const CollapseSums back = CollapseSums::unpack(packed.data(), 3);
  EXPECT_EQ(back.kl, sums.kl);
  EXPECT_EQ(back.mean_squared, sums.mean_squared);
  EXPECT_EQ(back.bins, 2.0);
  EXPECT_EQ(back.active_units(), 1);  // 0.01 is not above 0.01
  CollapseSums twice = back;
  twice.add(back);
  EXPECT_EQ(twice.kl_per_dimension(), sums.kl_per_dimension());
}

// A decoder that ignores z (C = 0): the likelihood is flat in z, so the best q is the prior.
// The encoder trained on the ELBO must learn sites -> 0: KL -> 0, and with
// mu0 = 0, b = 0 the posterior mean stays 0: no active unit.
TEST(CollapseDiagnostics, ADecoderThatIgnoresTheLatentsGivesZeroKlAndNoActiveUnits) {
  const int D = 2, N = 5, T = 12;
  std::mt19937_64 rng(2);
  std::vector<std::unique_ptr<PoissonTrial>> owned;  // the views point into each trial
  for (int k = 0; k < 3; ++k) owned.push_back(std::make_unique<PoissonTrial>(D, N, T, 0.0, rng));
  std::vector<const PoissonTrial*> trials;
  for (const auto& trial : owned) trials.push_back(trial.get());
  GaussMarkovEvaluator family;
  SiteEncoder encoder(EncoderShape{.inputs = N, .hidden = 4, .window = 3, .latents = D}, 1);
  // At the prior itself (zero sites) the diagnostics are exactly zero.
  {
    GaussMarkovState at_prior;
    family.evaluate(trials[0]->prior, trials[0]->modalities, Sites::zero(D, T),
                    exact_expectations(), at_prior);
    const CollapseSums sums = collapse_sums(trials[0]->prior, at_prior.moments);
    EXPECT_LT(sums.kl_per_dimension().cwiseAbs().maxCoeff(), 1e-12);
    EXPECT_EQ(sums.active_units(), 0);
  }
  const double initial_kl = [&] {
    GaussMarkovState state;
    Eigen::VectorXd g;
    EncoderPass pass;
    amortised_trial(
        LocalProblem{trials[0]->prior, trials[0]->modalities, family, exact_expectations()},
        encoder, trials[0]->counts, 1.0, state, g, pass);
    return collapse_sums(trials[0]->prior, state.moments).kl_per_dimension().sum();
  }();
  EXPECT_GT(initial_kl, 0.05);  // the initial encoder's sites (precision 1) move q off the prior
  AdamState moments;
  const AdamSettings adam{.learning_rate = 0.05};
  CollapseSums sums = CollapseSums::zero(D);
  for (int step = 0; step < 600; ++step) {
    Eigen::VectorXd gradient = Eigen::VectorXd::Zero(encoder.parameters().size());
    sums = CollapseSums::zero(D);
    for (const PoissonTrial* trial : trials) {
      GaussMarkovState state;
      EncoderPass pass;
      amortised_trial(LocalProblem{trial->prior, trial->modalities, family, exact_expectations()},
                      encoder, trial->counts, 1.0, state, gradient, pass);
      sums.add(collapse_sums(trial->prior, state.moments));
    }
    encoder.set_parameters(encoder.parameters() +
                           moments.step(gradient.array(), adam, adam.learning_rate).matrix());
  }
  EXPECT_LT(sums.kl_per_dimension().maxCoeff(), 1e-3) << sums.kl_per_dimension().transpose();
  EXPECT_EQ(sums.active_units(), 0);
}

}  // namespace
}  // namespace spikevi
