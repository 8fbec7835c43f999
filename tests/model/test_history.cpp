// History terms (history.hpp): the features of a trial, the basis, the statistics of the weights
// against finite differences, and the natural-gradient step.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/inference/global_statistics.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/model/history.hpp"
#include "spikevi/model/observation_model.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using Eigen::ArrayXXd;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using spikevi::testing::random_normal;

// Three neurons, of which rows 0 and 2 are held in; four bins.
ArrayXXd tiny_counts() {
  ArrayXXd x(3, 4);
  x << 1, 0, 2, 3,  //
      9, 9, 9, 9,   // held out: must never reach the features
      0, 1, 1, 0;
  return x;
}

HistoryBasis tiny_basis() {
  HistoryBasis basis;
  basis.lags = 2;
  basis.rows = {0, 2};
  basis.mean = VectorXd(2);
  basis.mean << 1.0, 0.5;
  basis.projection = MatrixXd(1, 2);
  basis.projection << 2.0, -1.0;
  return basis;
}

TEST(HistoryBasis, FeaturesStackTheProjectedPastBinsOfTheHeldInRows) {
  const MatrixXd f = tiny_basis().features(tiny_counts());
  // a_s = 2 (x_0s - 1) - (x_2s - 0.5): s = 0..3 -> 2(0) - (-0.5) = 0.5, 2(-1) - 0.5 = -2.5,
  // 2(1) - 0.5 = 1.5, 2(2) + 0.5 = 4.5. Row 0 = a_{t-1}, row 1 = a_{t-2}, zero before the trial.
  MatrixXd expected(2, 4);
  expected << 0.0, 0.5, -2.5, 1.5,  //
      0.0, 0.0, 0.5, -2.5;
  EXPECT_EQ(f, expected);
}

TEST(HistoryBasis, FeaturesIgnoreTheHeldOutRows) {
  ArrayXXd other = tiny_counts();
  other.row(1) = 0.0;
  EXPECT_EQ(tiny_basis().features(other), tiny_basis().features(tiny_counts()));
}

TEST(HistoryBasis, PrincipalDirectionsGiveUnitVarianceFeaturesWithAFixedSign) {
  std::mt19937_64 rng(5);
  std::poisson_distribution<int> spikes(2.0);
  ArrayXXd x(4, 400);
  for (Eigen::Index t = 0; t < x.cols(); ++t) {
    const double shared = spikes(rng);
    for (Eigen::Index n = 0; n < 4; ++n) x(n, t) = shared * (n + 1) + spikes(rng);
  }
  const HistorySettings settings{1, 2, 1.0, {0, 1, 2, 3}};
  const HistoryBasis basis = make_history_basis(settings, count_moments(x, settings.rows));
  ASSERT_EQ(basis.components(), 2);
  const MatrixXd a = basis.projection * (x.matrix().colwise() - basis.mean);
  const MatrixXd covariance = a * a.transpose() / static_cast<double>(x.cols());
  EXPECT_LT((covariance - MatrixXd::Identity(2, 2)).cwiseAbs().maxCoeff(), 1e-10);
  // The first direction loads every row the same way (the shared input): all positive.
  EXPECT_GT(basis.projection.row(0).minCoeff(), 0.0);
  // The same basis again from the same moments, bit for bit.
  EXPECT_EQ(make_history_basis(settings, count_moments(x, settings.rows)).projection,
            basis.projection);
}

TEST(HistoryBasis, RefusesMoreComponentsThanHeldInRows) {
  const HistorySettings settings{1, 3, 1.0, {0, 2}};
  EXPECT_THROW(make_history_basis(settings, count_moments(tiny_counts(), settings.rows)),
               ConfigError);
  EXPECT_EQ((HistorySettings{1, 0, 1.0, {0, 2}}.resolved_components()), 2);
  EXPECT_EQ((HistorySettings{1, 0, 1.0, {0, 1, 2, 3, 4, 5}}.resolved_components()), 4);
}

// sum_t E_q log p(x_nt | mu_nt + b' f_t, s2_nt) of row n for the weights b.
double row_objective(const ObservationModel& model, const ArrayXXd& x, const ArrayXXd& mu,
                     const ArrayXXd& s2, const MatrixXd& features, const MatrixXd& B) {
  ArrayXXd ell, g, G;
  const ArrayXXd shifted = mu + (B * features).array();
  model.expected_log_likelihood(x, shifted, s2, ell, g, G);
  return ell.sum();
}

TEST(HistoryStatistics, GradientAndCurvatureMatchFiniteDifferences) {
  std::mt19937_64 rng(11);
  const int rows = 1, bins = 30, features = 3;
  const MatrixXd f = random_normal(features, bins, rng, 0.8);
  const ArrayXXd mu = random_normal(rows, bins, rng, 0.5).array();
  const ArrayXXd s2 = random_normal(rows, bins, rng, 0.2).array().square() + 0.05;
  ArrayXXd x(rows, bins);
  std::poisson_distribution<int> spikes(1.5);
  for (Eigen::Index t = 0; t < bins; ++t) x(0, t) = spikes(rng);
  const MatrixXd B = random_normal(rows, features, rng, 0.3);
  const PoissonObservation model;

  ArrayXXd ell, g, G;
  const ArrayXXd shifted = mu + (B * f).array();
  model.expected_log_likelihood(x, shifted, s2, ell, g, G);
  HistoryStatistics stats = HistoryStatistics::zero(rows, features);
  stats.add_trial(f, g, G);

  const double h = 1e-5;
  for (int i = 0; i < features; ++i) {
    MatrixXd up = B, down = B;
    up(0, i) += h;
    down(0, i) -= h;
    const double numeric =
        (row_objective(model, x, mu, s2, f, up) - row_objective(model, x, mu, s2, f, down)) /
        (2 * h);
    EXPECT_NEAR(stats.gradient(i, 0), numeric, 1e-6 * (1 + std::abs(numeric)));
    for (int j = 0; j < features; ++j) {
      MatrixXd pp = B, pm = B, mp = B, mm = B;
      pp(0, i) += h, pp(0, j) += h;
      pm(0, i) += h, pm(0, j) -= h;
      mp(0, i) -= h, mp(0, j) += h;
      mm(0, i) -= h, mm(0, j) -= h;
      const double second =
          (row_objective(model, x, mu, s2, f, pp) - row_objective(model, x, mu, s2, f, pm) -
           row_objective(model, x, mu, s2, f, mp) + row_objective(model, x, mu, s2, f, mm)) /
          (4 * h * h);
      EXPECT_NEAR(stats.curvature(i, j), -second, 1e-4 * (1 + std::abs(second)));
    }
  }
}

TEST(HistoryCoupling, FullNewtonStepFromThePriorReachesTheQuadraticOptimum) {
  // For a quadratic objective (constant curvature H, gradient g at b = 0) one step with rho = 1
  // lands on (lambda I + H)^-1 g, the maximiser of g'b - b'Hb/2 - lambda |b|^2/2.
  HistoryBasis basis = tiny_basis();
  HistoryCoupling coupling = HistoryCoupling::at_prior(basis, 2, 0.5);
  HistoryStatistics stats = HistoryStatistics::zero(2, 2);
  stats.gradient << 1.0, -2.0, 0.5, 3.0;
  stats.curvature << 2.0, 0.3, 1.0, 0.0,  //
      0.3, 1.0, 0.0, 4.0;
  history_natural_gradient_step(coupling, stats, 1.0, VectorXd::Ones(2));
  for (int n = 0; n < 2; ++n) {
    const MatrixXd P = 0.5 * MatrixXd::Identity(2, 2) + stats.curvature.middleCols(2 * n, 2);
    const VectorXd expected = P.llt().solve(VectorXd(stats.gradient.col(n)));
    EXPECT_LT((coupling.B.row(n).transpose() - expected).cwiseAbs().maxCoeff(), 1e-14);
    EXPECT_LT((coupling.precision.middleCols(2 * n, 2) - P).cwiseAbs().maxCoeff(), 1e-14);
  }
  // A row kept out of the step (rho_n = 0) stays.
  const HistoryCoupling before = coupling;
  VectorXd rho(2);
  rho << 0.0, 1.0;
  history_natural_gradient_step(coupling, stats, 1.0, rho);
  EXPECT_EQ(coupling.B.row(0), before.B.row(0));
}

TEST(HistoryCoupling, TheOffsetShiftsTheLikelihoodsEtaMean) {
  std::mt19937_64 rng(3);
  const int rows = 3, bins = 4, dim = 2;
  Readout readout{random_normal(rows, dim, rng, 0.4), random_normal(rows, 1, rng, 0.3).col(0),
                  MatrixXd::Identity(dim + 1, dim + 1).replicate(1, rows)};
  const ReadoutKernels kernels(readout);
  GaussianMoments q;
  q.mean = random_normal(dim, bins, rng, 0.5);
  q.cov = (0.1 * MatrixXd::Identity(dim, dim)).replicate(1, bins);
  q.lag_cov = MatrixXd::Zero(dim, bins * dim);
  const ArrayXXd x = tiny_counts();
  const ArrayXXd offset = random_normal(rows, bins, rng, 0.5).array();
  const PoissonObservation model;
  LikelihoodWorkspace work;
  const double with = expected_log_likelihood(
      {ModalityView{&model, &kernels, &x, 0.0, nullptr, &offset}}, q, work, nullptr);
  ArrayXXd mu, s2, ell, g, G;
  kernels.eta_moments(q, mu, s2);
  mu += offset;
  model.expected_log_likelihood(x, mu, s2, ell, g, G);
  EXPECT_NEAR(with, ell.sum(), 1e-12);
  EXPECT_NEAR(row_log_likelihood(kernels, model, x, q, &offset).sum(), ell.sum(), 1e-12);
}

}  // namespace
}  // namespace spikevi
