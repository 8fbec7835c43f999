// Reparameterized Monte Carlo through the families' factors (DESIGN.md §6): the estimates are
// unbiased for the exact ELBO and for the closed-form gradients g, G; the draws are keyed by
// (seed, counter), and log q(z_s) follows from eps_s alone.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numbers>

#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/inference/mean_field.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::GaussianTrial;
using testing::LinearGaussianModel;
using testing::random_linear_gaussian_model;
using testing::random_normal;
using testing::exact_expectations;
using testing::natural_gradient;
using testing::random_sites;
using testing::random_spd;
using testing::simulate_linear_gaussian;

struct MeanAndError {
  double mean = 0.0, standard_error = 0.0;
};

MeanAndError summarise(const std::vector<double>& values) {
  const Eigen::Map<const Eigen::ArrayXd> x(values.data(), static_cast<Eigen::Index>(values.size()));
  const double mean = x.mean();
  const double variance = (x - mean).square().sum() / (x.size() - 1.0);
  return {mean, std::sqrt(variance / x.size())};
}

class MonteCarloFamily : public ::testing::TestWithParam<FamilyKind> {};

TEST_P(MonteCarloFamily, ElboEstimateIsUnbiasedOnALinearGaussianModel) {
  const int D = 2, T = 8;
  std::mt19937_64 rng(21);
  const LinearGaussianModel m = random_linear_gaussian_model(D, 3, rng);
  const GaussianTrial trial(m, simulate_linear_gaussian(m, T, rng));
  const ReadoutKernels kernels(trial.readout);
  const std::vector<ModalityView> modalities{ModalityView{&trial.model, &kernels, &trial.y, 0.0}};
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  const Sites sites =
      random_sites(D, T, rng, 1.0);  // any q: unbiasedness does not need the optimum

  const auto evaluator = make_family_evaluator(GetParam());
  GaussMarkovState exact;
  evaluator->evaluate(prior, modalities, sites, exact_expectations(), exact);
  std::vector<double> estimates;
  for (std::uint64_t replicate = 0; replicate < 2000; ++replicate) {
    GaussMarkovState sampled;
    MonteCarloEstimator one_draw(1, 7);
    one_draw.begin(RandomCounter{replicate, 0, 0});
    evaluator->evaluate(prior, modalities, sites, one_draw, sampled);
    estimates.push_back(sampled.elbo);
  }
  const MeanAndError estimate = summarise(estimates);
  EXPECT_GT(estimate.standard_error, 0.0);
  EXPECT_LT(std::abs(estimate.mean - exact.elbo), 4.0 * estimate.standard_error)
      << "mean " << estimate.mean << " exact " << exact.elbo << " se " << estimate.standard_error;
}

TEST_P(MonteCarloFamily, GradientEstimatesAreUnbiasedForThePoissonClosedForm) {
  const int D = 2, T = 5, N = 4;
  std::mt19937_64 rng(8);
  Readout readout;
  readout.C = random_normal(N, D, rng, 0.5);
  readout.d = random_normal(N, 1, rng, 0.3);
  readout.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
  Eigen::ArrayXXd counts(N, T);
  std::poisson_distribution<int> poisson(1.5);
  for (Eigen::Index i = 0; i < counts.size(); ++i) counts.data()[i] = poisson(rng);
  const PoissonObservation model;
  const ReadoutKernels kernels(readout);
  const ModalityView modality{&model, &kernels, &counts, 0.0};
  const LinearGaussianModel m = random_linear_gaussian_model(D, 1, rng);
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  const Sites sites = random_sites(D, T, rng, 1.0);

  const auto evaluator = make_family_evaluator(GetParam());
  GaussMarkovState state;
  evaluator->evaluate(prior, {modality}, sites, exact_expectations(), state);
  Eigen::ArrayXXd mu, s2, ell, g, G;
  kernels.eta_moments(state.moments, mu, s2);
  model.expected_log_likelihood(counts, mu, s2, ell, g, G);

  const int replicates = 4000;
  Eigen::ArrayXXd g_sum = Eigen::ArrayXXd::Zero(N, T), g_squares = g_sum, G_sum = g_sum,
                  G_squares = g_sum;
  LikelihoodWorkspace work;
  MonteCarloEstimator one_draw(1, 3);
  for (int r = 0; r < replicates; ++r) {
    one_draw.begin(RandomCounter{static_cast<std::uint64_t>(r), 0, 0});
    GaussMarkovState sampled;
    evaluator->evaluate(prior, {modality}, sites, one_draw, sampled);
    monte_carlo_expectations(modality, one_draw.latent_samples(), work);
    g_sum += work.g;
    g_squares += work.g.square();
    G_sum += work.G;
    G_squares += work.G.square();
    EXPECT_LE(work.G.maxCoeff(), 0.0);  // Price with the analytic f'': never positive
  }
  const auto z_scores = [&](const Eigen::ArrayXXd& sum, const Eigen::ArrayXXd& squares,
                            const Eigen::ArrayXXd& exact) {
    const Eigen::ArrayXXd mean = sum / replicates;
    const Eigen::ArrayXXd variance =
        (squares / replicates - mean.square()) * replicates / (replicates - 1.0);
    return Eigen::ArrayXXd((mean - exact).abs() / (variance / replicates).sqrt());
  };
  EXPECT_LT(z_scores(g_sum, g_squares, g).maxCoeff(), 4.0);
  EXPECT_LT(z_scores(G_sum, G_squares, G).maxCoeff(), 4.0);
}

INSTANTIATE_TEST_SUITE_P(Families, MonteCarloFamily,
                         ::testing::Values(FamilyKind::kGaussMarkov, FamilyKind::kMeanField),
                         [](const auto& info) {
                           return info.param == FamilyKind::kMeanField ? "MeanField"
                                                                       : "GaussMarkov";
                         });

TEST(MonteCarlo, DrawsAreKeyedBySeedAndCounterAndGiveTheExactLogDensity) {
  const int D = 2, T = 6;
  std::mt19937_64 rng(2);
  const LinearGaussianModel m = random_linear_gaussian_model(D, 2, rng);
  const GaussianTrial trial(m, simulate_linear_gaussian(m, T, rng));
  const ReadoutKernels kernels(trial.readout);
  const std::vector<ModalityView> modalities{ModalityView{&trial.model, &kernels, &trial.y, 0.0}};
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  const Sites sites = random_sites(D, T, rng, 1.0);
  GaussMarkovEvaluator evaluator;
  GaussMarkovState a, b, c;
  MonteCarloEstimator draws(3, 5);
  draws.begin({4, 9, 0});
  evaluator.evaluate(prior, modalities, sites, draws, a);
  const std::vector<Eigen::MatrixXd> first = draws.latent_samples();
  const std::vector<Eigen::MatrixXd> first_eps = draws.standard_draws();
  draws.begin({4, 9, 0});
  evaluator.evaluate(prior, modalities, sites, draws, b);
  EXPECT_EQ(a.elbo, b.elbo);  // bitwise: the same key gives the same draws
  draws.begin({4, 10, 0});
  evaluator.evaluate(prior, modalities, sites, draws, c);
  EXPECT_NE(a.elbo, c.elbo);

  // log q(z) = -|eps|^2/2 - (TD/2) log 2pi + log|J|/2 against the dense Gaussian density.
  Eigen::MatrixXd J = prior.precision.to_dense();
  for (int t = 0; t < T; ++t) J.block(t * D, t * D, D, D) += sites.precision.middleCols(t * D, D);
  const Eigen::VectorXd mean = a.moments.mean.reshaped();
  const double log_det = 2.0 * Eigen::MatrixXd(J.llt().matrixL()).diagonal().array().log().sum();
  EXPECT_NEAR(a.moments.log_det_precision, log_det, 1e-10 * std::abs(log_det));
  for (std::size_t s = 0; s < first.size(); ++s) {
    const Eigen::VectorXd deviation = first[s].reshaped() - mean;
    const double dense = -0.5 * deviation.dot(J * deviation) -
                         0.5 * T * D * std::log(2 * std::numbers::pi) + 0.5 * log_det;
    const double from_eps = -0.5 * first_eps[s].squaredNorm() -
                            0.5 * T * D * std::log(2 * std::numbers::pi) +
                            0.5 * a.moments.log_det_precision;
    EXPECT_NEAR(from_eps, dense, 1e-9 * std::abs(dense));
  }
}

// A Poisson trial with point dynamics, for the gradient and Adam tests.
struct PoissonTrial {
  Readout readout;
  Eigen::ArrayXXd counts;
  PoissonObservation model;
  PriorBlocks prior;
  std::unique_ptr<ReadoutKernels> kernels;
  std::vector<ModalityView> modalities;
  PoissonTrial(int D, int T, int N, std::mt19937_64& rng) {
    readout.C = random_normal(N, D, rng, 0.5);
    readout.d = Eigen::VectorXd::Constant(N, 0.2);
    readout.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
    counts.resize(N, T);
    std::poisson_distribution<int> poisson(1.2);
    for (Eigen::Index i = 0; i < counts.size(); ++i) counts.data()[i] = poisson(rng);
    const LinearGaussianModel m = random_linear_gaussian_model(D, 1, rng);
    prior = prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
    kernels = std::make_unique<ReadoutKernels>(readout);
    modalities = {ModalityView{&model, kernels.get(), &counts, model.log_base_measure(counts)}};
  }
};

TEST_P(MonteCarloFamily, SiteGradientMatchesCentralDifferencesOfTheElbo) {
  const int D = 2, T = 6, N = 5;
  std::mt19937_64 rng(12);
  const PoissonTrial p(D, T, N, rng);
  const auto evaluator = make_family_evaluator(GetParam());
  Sites sites = random_sites(D, T, rng, 1.0);
  GaussMarkovState state;
  evaluator->evaluate(p.prior, p.modalities, sites, exact_expectations(), state);
  Sites gradient;
  evaluator->site_gradient(state, gradient);
  const auto elbo_at = [&](const Sites& at) {
    GaussMarkovState s;
    evaluator->evaluate(p.prior, p.modalities, at, exact_expectations(), s);
    return s.elbo;
  };
  const double h = 1e-5;
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < D; ++i) {
      Sites up = sites, down = sites;
      up.shift(i, t) += h;
      down.shift(i, t) -= h;
      const double numeric = (elbo_at(up) - elbo_at(down)) / (2 * h);
      EXPECT_NEAR(gradient.shift(i, t), numeric, 1e-6 * (1 + std::abs(numeric))) << t << " " << i;
      for (int j = 0; j <= i; ++j) {
        // L_t stays symmetric: move (i, j) and (j, i) together.
        up = sites;
        down = sites;
        const int row = i, col = t * D + j, mirrored_row = j, mirrored_col = t * D + i;
        up.precision(row, col) += h;
        down.precision(row, col) -= h;
        if (i != j) {
          up.precision(mirrored_row, mirrored_col) += h;
          down.precision(mirrored_row, mirrored_col) -= h;
        }
        const double slope = (elbo_at(up) - elbo_at(down)) / (2 * h);
        const double analytic = gradient.precision(row, col) +
                                (i != j ? gradient.precision(mirrored_row, mirrored_col) : 0.0);
        EXPECT_NEAR(analytic, slope, 1e-5 * (1 + std::abs(slope))) << t << " " << i << j;
      }
    }
  }
}

TEST_P(MonteCarloFamily, AdamLocalStepReachesTheNaturalGradientOptimumInMoreSteps) {
  const int D = 2, T = 20, N = 8;
  std::mt19937_64 rng(13);
  const PoissonTrial p(D, T, N, rng);
  const auto evaluator = make_family_evaluator(GetParam());
  GaussMarkovState natural, adam;
  evaluator->evaluate(p.prior, p.modalities, Sites::zero(D, T), exact_expectations(), natural);
  evaluator->evaluate(p.prior, p.modalities, Sites::zero(D, T), exact_expectations(), adam);
  const LocalStepReport natural_report =
      cvi_local_step(LocalProblem{p.prior, p.modalities, *evaluator, exact_expectations()}, natural, LocalStepSettings{});
  const LocalStepReport adam_report =
      adam_local_step(LocalProblem{p.prior, p.modalities, *evaluator, exact_expectations()}, adam, LocalStepSettings{.tolerance = 1e-8, .max_iterations = 20000}, AdamSettings{.learning_rate = 0.02});
  EXPECT_TRUE(adam_report.converged);
  // The same concave optimum (log-concave likelihood, Gaussian family): within 1e-6 relative.
  EXPECT_NEAR(adam.elbo, natural.elbo, 1e-6 * std::abs(natural.elbo));
  EXPECT_GT(adam_report.iterations, 5 * natural_report.iterations);
}

}  // namespace
}  // namespace spikevi
