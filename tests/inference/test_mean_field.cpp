// The mean-field family against exact answers on a linear-Gaussian model with point globals
// (DESIGN.md §2): the sites are then exact, so one local step gives the mean-field optimum,
// whose variances are the inverse diagonal of the true posterior precision (hence never larger
// than the true marginal variances) and whose means are the exact posterior means.
#include <gtest/gtest.h>

#include <cmath>
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

struct Problem {
  LinearGaussianModel m;
  GaussianTrial trial;
  ReadoutKernels kernels;
  PriorBlocks prior;
  std::vector<ModalityView> modalities;
  Problem(int D, int T, std::mt19937_64& rng)
      : m(random_linear_gaussian_model(D, 4, rng)),
        trial(m, simulate_linear_gaussian(m, T, rng)),
        kernels(trial.readout),
        prior(prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T)),
        modalities{ModalityView{&trial.model, &kernels, &trial.y, 0.0}} {}

  // The true posterior precision and shift, dense: J_p + sum over observed channels of
  // w_j w_j' / R_j at each bin, h_p + w_j (y_j - e_j) / R_j.
  std::pair<Eigen::MatrixXd, Eigen::VectorXd> exact_natural_parameters() const {
    const int D = static_cast<int>(m.A.rows()), T = static_cast<int>(trial.y.cols());
    Eigen::MatrixXd J = prior.precision.to_dense();
    Eigen::VectorXd h = prior.shift.reshaped();
    for (int t = 0; t < T; ++t)
      for (Eigen::Index j = 0; j < trial.y.rows(); ++j) {
        if (std::isnan(trial.y(j, t))) continue;
        const Eigen::VectorXd w = m.W.row(j).transpose();
        J.block(t * D, t * D, D, D) += w * w.transpose() / m.R(j);
        h.segment(t * D, D) += w * (trial.y(j, t) - m.e(j)) / m.R(j);
      }
    return {J, h};
  }
};

TEST(MeanField, OneStepGivesTheInverseDiagonalOfTheTruePrecisionAndTheExactMeans) {
  const int D = 3, T = 12;
  std::mt19937_64 rng(5);
  Problem p(D, T, rng);
  MeanFieldEvaluator evaluator;
  GaussMarkovState state;
  evaluator.evaluate(p.prior, p.modalities, random_sites(D, T, rng), exact_expectations(), state);
  GaussMarkovState stepped;
  evaluator.evaluate(p.prior, p.modalities, state.targets, exact_expectations(), stepped);  // rho = 1 from any start

  const auto [J, h] = p.exact_natural_parameters();
  const Eigen::MatrixXd covariance = J.inverse();
  const Eigen::VectorXd mean = J.ldlt().solve(h);
  for (int t = 0; t < T; ++t) {
    const auto S_t = stepped.moments.cov_block(t);
    for (int i = 0; i < D; ++i) {
      const int k = t * D + i;
      EXPECT_NEAR(S_t(i, i), 1.0 / J(k, k), 1e-12 / J(k, k)) << "t " << t << " i " << i;
      EXPECT_LE(S_t(i, i), covariance(k, k) * (1 + 1e-12));  // never above the true variance
      EXPECT_NEAR(stepped.moments.mean(i, t), mean(k), 1e-9 * (1 + std::abs(mean(k))));
      for (int j = 0; j < D; ++j)
        if (j != i) EXPECT_EQ(S_t(i, j), 0.0);
    }
    EXPECT_EQ(stepped.moments.lag_block(t).cwiseAbs().maxCoeff(), 0.0);
  }
}

// ELBO = E_q log p(y | z) + E_q log p(z) - E_q log q(z), written out densely.
double dense_mean_field_elbo(const Problem& p, const GaussianMoments& q) {
  const int D = q.dim(), T = q.bins();
  const double log_2pi = std::log(2.0 * std::numbers::pi);
  const Eigen::MatrixXd J_p = p.prior.precision.to_dense();
  Eigen::MatrixXd S = Eigen::MatrixXd::Zero(T * D, T * D);
  for (int t = 0; t < T; ++t) S.block(t * D, t * D, D, D) = q.cov_block(t);
  const Eigen::VectorXd m = q.mean.reshaped();
  double elbo = -0.5 * (J_p * (S + m * m.transpose())).trace() + p.prior.shift.reshaped().dot(m) -
                p.prior.constant;
  for (int t = 0; t < T; ++t) {
    for (Eigen::Index j = 0; j < p.trial.y.rows(); ++j) {
      if (std::isnan(p.trial.y(j, t))) continue;
      const Eigen::VectorXd w = p.m.W.row(j).transpose();
      const double resid = p.trial.y(j, t) - w.dot(q.mean.col(t)) - p.m.e(j);
      elbo += -0.5 * std::log(2 * std::numbers::pi * p.m.R(j)) -
              0.5 * (resid * resid + w.dot(q.cov_block(t) * w)) / p.m.R(j);
    }
    for (int i = 0; i < D; ++i) elbo += 0.5 * (log_2pi + 1.0 + std::log(q.cov_block(t)(i, i)));
  }
  return elbo;
}

TEST(MeanField, ElboEqualsTheDenseFormulaAndStaysBelowTheExactLogLikelihood) {
  const int D = 2, T = 9;
  std::mt19937_64 rng(11);
  Problem p(D, T, rng);
  MeanFieldEvaluator mean_field;
  GaussMarkovEvaluator gauss_markov;
  GaussMarkovState start, mf, gm;
  mean_field.evaluate(p.prior, p.modalities, random_sites(D, T, rng), exact_expectations(), start);
  EXPECT_NEAR(start.elbo, dense_mean_field_elbo(p, start.moments), 1e-9 * std::abs(start.elbo));
  mean_field.evaluate(p.prior, p.modalities, start.targets, exact_expectations(), mf);
  EXPECT_NEAR(mf.elbo, dense_mean_field_elbo(p, mf.moments), 1e-9 * std::abs(mf.elbo));
  // Gauss-Markov at the same (exact) sites is the exact posterior: its ELBO is log p(y).
  gauss_markov.evaluate(p.prior, p.modalities, start.targets, exact_expectations(), gm);
  EXPECT_LT(mf.elbo, gm.elbo);
  EXPECT_GT(mf.elbo, start.elbo);
}

TEST(MeanField, LocalStepOnPoissonCountsAscendsAndEndsBelowGaussMarkov) {
  const int D = 2, T = 30, N = 12;
  std::mt19937_64 rng(3);
  const LinearGaussianModel m = random_linear_gaussian_model(D, N, rng);
  Readout readout;
  readout.C = 0.5 * m.W;
  readout.d = Eigen::VectorXd::Constant(N, -0.5);
  readout.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
  Eigen::ArrayXXd counts(N, T);
  std::poisson_distribution<int> poisson(0.8);
  for (Eigen::Index i = 0; i < counts.size(); ++i) counts.data()[i] = poisson(rng);
  const PoissonObservation model;
  const ReadoutKernels kernels(readout);
  const std::vector<ModalityView> modalities{
      ModalityView{&model, &kernels, &counts, model.log_base_measure(counts)}};
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);

  double final_elbo[2];
  for (FamilyKind family : {FamilyKind::kMeanField, FamilyKind::kGaussMarkov}) {
    const auto evaluator = make_family_evaluator(family);
    GaussMarkovState state;
    evaluator->evaluate(prior, modalities, Sites::zero(D, T), exact_expectations(), state);
    const double start = state.elbo;
    const LocalStepReport report = cvi_local_step(LocalProblem{prior, modalities, *evaluator, exact_expectations()}, state, {});
    EXPECT_TRUE(report.converged);
    EXPECT_GE(state.elbo, start);
    final_elbo[family == FamilyKind::kMeanField ? 0 : 1] = state.elbo;
  }
  // The Gauss-Markov family contains every mean-field q: its optimum is at least as high.
  EXPECT_LT(final_elbo[0], final_elbo[1]);
}

TEST(MeanField, FamilyNamesRoundTrip) {
  EXPECT_EQ(parse_family("mean-field"), FamilyKind::kMeanField);
  EXPECT_EQ(parse_family(family_name(FamilyKind::kGaussMarkov)), FamilyKind::kGaussMarkov);
  EXPECT_THROW(parse_family("meanfield"), ConfigError);
}

}  // namespace
}  // namespace spikevi
