// The MLP readout's cubature kernels against brute-force Monte Carlo, finite differences and,
// at A = 0, the linear readout's closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "spikevi/model/mlp_readout.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using spikevi::testing::random_normal;
using spikevi::testing::random_spd;

struct Problem {
  Readout linear;
  MlpReadout mlp;
  GaussianMoments q;
  Eigen::ArrayXXd x;
};

// N neurons, D latents, H hidden units, T bins; posterior covariances of scale `spread`.
Problem make_problem(int N, int D, int H, int T, double spread, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Problem p;
  p.linear.C = random_normal(N, D, rng, 0.4);
  p.linear.d = Eigen::VectorXd::Constant(N, -0.5) + random_normal(N, 1, rng, 0.3);
  p.linear.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
  p.mlp = MlpReadout::initial(N, D, H, seed);
  p.mlp.A = random_normal(N, H, rng, 0.5);
  p.q.mean = random_normal(D, T, rng, 0.7);
  p.q.cov.resize(D, T * D);
  for (int t = 0; t < T; ++t) p.q.cov.middleCols(t * D, D) = spread * random_spd(D, rng, 0.3, 1.0);
  p.q.lag_cov = Eigen::MatrixXd::Zero(D, T * D);
  std::poisson_distribution<int> counts(1.0);
  p.x.resize(N, T);
  for (Eigen::Index i = 0; i < p.x.size(); ++i) p.x.data()[i] = counts(rng);
  return p;
}

double log_rate(const Problem& p, int n, const Eigen::VectorXd& z) {
  return p.linear.C.row(n).dot(z) + p.linear.d(n) +
         p.mlp.A.row(n).dot((p.mlp.W * z + p.mlp.b).array().tanh().matrix());
}

// Brute-force Monte Carlo of E_q[exp(eta)], E_q[f] and E_q[grad_z f] of bin t (f = sum_n
// x eta - e^eta), with their standard errors.
struct MonteCarlo {
  Eigen::VectorXd rate, rate_se;  // per neuron
  double ell = 0, ell_se = 0;
  Eigen::VectorXd gradient, gradient_se;
  Eigen::MatrixXd curvature, curvature_se;  // E[-Hess_z f]
};

MonteCarlo monte_carlo(const Problem& p, int t, int draws) {
  const int N = p.linear.rows(), D = p.linear.dim();
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal;
  const Eigen::MatrixXd L = p.q.cov_block(t).llt().matrixL();
  (void)N;
  Eigen::ArrayXd r1 = Eigen::ArrayXd::Zero(N), r2 = r1;
  Eigen::ArrayXd g1 = Eigen::ArrayXd::Zero(D), g2 = g1;
  Eigen::ArrayXXd c1 = Eigen::ArrayXXd::Zero(D, D), c2 = c1;
  double e1 = 0, e2 = 0;
  Eigen::VectorXd eps(D);
  for (int s = 0; s < draws; ++s) {
    for (int i = 0; i < D; ++i) eps(i) = normal(rng);
    const Eigen::VectorXd z = p.q.mean.col(t) + L * eps;
    const Eigen::VectorXd h = (p.mlp.W * z + p.mlp.b).array().tanh().matrix();
    const Eigen::MatrixXd J =
        p.linear.C + p.mlp.A * (1.0 - h.array().square()).matrix().asDiagonal() * p.mlp.W;
    double f = 0;
    Eigen::VectorXd grad = Eigen::VectorXd::Zero(D);
    Eigen::MatrixXd curv = Eigen::MatrixXd::Zero(D, D);
    // tanh'' = -2 h (1 - h^2): the curvature of eta_n in z is W' diag(a_n tanh'') W.
    const Eigen::ArrayXd bend = -2.0 * h.array() * (1.0 - h.array().square());
    for (int n = 0; n < N; ++n) {
      const double eta = log_rate(p, n, z), rate = std::exp(eta);
      r1(n) += rate;
      r2(n) += rate * rate;
      f += p.x(n, t) * eta - rate;
      grad += (p.x(n, t) - rate) * J.row(n).transpose();
      curv += rate * J.row(n).transpose() * J.row(n);
      curv -= (p.x(n, t) - rate) * p.mlp.W.transpose() *
              (p.mlp.A.row(n).transpose().array() * bend).matrix().asDiagonal() * p.mlp.W;
    }
    e1 += f;
    e2 += f * f;
    g1 += grad.array();
    g2 += grad.array().square();
    c1 += curv.array();
    c2 += curv.array().square();
  }
  const double S = draws;
  auto se = [&](auto m1, auto m2) { return ((m2 / S - (m1 / S).square()) / S).sqrt(); };
  MonteCarlo mc;
  mc.rate = (r1 / S).matrix();
  mc.rate_se = se(r1, r2).matrix();
  mc.ell = e1 / S;
  mc.ell_se = std::sqrt((e2 / S - mc.ell * mc.ell) / S);
  mc.gradient = (g1 / S).matrix();
  mc.gradient_se = se(g1, g2).matrix();
  mc.curvature = (c1 / S).matrix();
  mc.curvature_se = se(c1, c2).matrix();
  return mc;
}

// One bin of a problem as its own one-bin trial.
Problem single_bin(const Problem& p, int t) {
  Problem one = p;
  const int D = p.linear.dim();
  one.q.mean = p.q.mean.col(t);
  one.q.cov = p.q.cov_block(t);
  one.q.lag_cov = Eigen::MatrixXd::Zero(D, D);
  one.x = p.x.col(t);
  return one;
}

// The cubature estimates of bin 0 agree with 400000 Monte Carlo draws to 5 standard errors
// (plus the rule's own error, relative: 1e-9 for 12-point Gauss-Hermite, 2% for the values of the
// third-degree spherical-radial rule at posterior spreads ~0.1, as in a fitted model).
void expect_agrees_with_monte_carlo(const GaussianCubature& rule, double spread, double rule_error,
                                    double curvature_error) {
  const Problem p = single_bin(make_problem(6, 2, 4, 3, spread, 7), 0);
  const MlpKernels kernels(p.linear, p.mlp, rule);
  const PoissonObservation model;
  const MonteCarlo mc = monte_carlo(p, 0, 400000);

  const Eigen::ArrayXXd rate = kernels.predicted_mean(model, p.q);
  for (int n = 0; n < 6; ++n)
    EXPECT_NEAR(rate(n, 0), mc.rate(n), 5 * mc.rate_se(n) + rule_error * mc.rate(n)) << n;
  Eigen::MatrixXd precision = Eigen::MatrixXd::Zero(2, 2), shift = Eigen::MatrixXd::Zero(2, 1);
  const double ell = kernels.expected_log_likelihood(model, p.x, p.q, &precision, &shift);
  EXPECT_NEAR(ell, mc.ell, 5 * mc.ell_se + rule_error * std::abs(mc.ell));
  // shift = g + P m, so g = shift - P m.
  const Eigen::VectorXd g = shift.col(0) - precision * p.q.mean.col(0);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(g(i), mc.gradient(i), 5 * mc.gradient_se(i) + rule_error * mc.curvature.norm());
    for (int j = 0; j < 2; ++j)
      EXPECT_NEAR(precision(i, j), mc.curvature(i, j),
                  5 * mc.curvature_se(i, j) + curvature_error * mc.curvature.norm());
  }
  EXPECT_GE(Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(precision).eigenvalues().minCoeff(),
            0.0);
}

TEST(MlpKernels, GaussHermiteCubatureAgreesWithBruteForceMonteCarlo) {
  expect_agrees_with_monte_carlo(GaussianCubature::gauss_hermite_product(2, 12), 0.5, 1e-9, 1e-8);
}

TEST(MlpKernels, SphericalRadialCubatureAgreesWithMonteCarloAtPosteriorSpreads) {
  // The curvature is the derivative of a third-degree rule in S, exact only for quadratic f:
  // measured 3.5% off in one entry here, so 6%.
  expect_agrees_with_monte_carlo(GaussianCubature::spherical_radial(2), 0.1, 0.02, 0.06);
}

// Bin 0 of a rotated rule and of the default two-shell rule: the same error budget as the
// unrotated rule (each bin's rule is exact to degree three, as it is).
TEST(MlpKernels, RotatedSphericalRadialCubatureAgreesWithMonteCarloAtPosteriorSpreads) {
  expect_agrees_with_monte_carlo(GaussianCubature::spherical_radial(2).rotated(256), 0.1, 0.02,
                                 0.06);
}

TEST(MlpKernels, TwoShellCubatureAgreesWithMonteCarloAtPosteriorSpreads) {
  expect_agrees_with_monte_carlo(GaussianCubature::randomised_spherical_radial(2, 256), 0.1, 0.02,
                                 0.06);
}

// The site targets are the derivatives of the cubature estimate E in m_t (g_t) and S_t
// (P_t = -2 dE/dS_t, where the PSD projection is inactive), the row statistics
// and the (A, W, b) gradient are the derivatives of the per-row estimate: central differences.
void expect_gradients_match_finite_differences(const GaussianCubature& rule) {
  const int N = 5, D = 2, H = 3, T = 4;
  Problem p = make_problem(N, D, H, T, 0.2, 11);
  const PoissonObservation model;
  const double h = 1e-6;
  auto total = [&](const Problem& at) {
    return MlpKernels(at.linear, at.mlp, rule)
        .expected_log_likelihood(model, at.x, at.q, nullptr, nullptr);
  };
  Eigen::MatrixXd precision = Eigen::MatrixXd::Zero(D, T * D), shift = Eigen::MatrixXd::Zero(D, T);
  MlpKernels(p.linear, p.mlp, rule).expected_log_likelihood(model, p.x, p.q, &precision, &shift);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < D; ++i) {
      Problem plus = p, minus = p;
      plus.q.mean(i, t) += h;
      minus.q.mean(i, t) -= h;
      const double fd = (total(plus) - total(minus)) / (2 * h);
      const double g = shift(i, t) - precision.middleCols(t * D, D).row(i).dot(p.q.mean.col(t));
      EXPECT_NEAR(g, fd, 1e-6 * (1 + std::abs(fd))) << t << " " << i;
    }
  int checked_blocks = 0;
  for (int t = 0; t < T; ++t) {
    const Eigen::MatrixXd block = precision.middleCols(t * D, D);
    if (Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(block).eigenvalues().minCoeff() < 1e-8)
      continue;  // the projection acted: P_t is no longer the derivative
    ++checked_blocks;
    for (int i = 0; i < D; ++i)
      for (int j = 0; j <= i; ++j) {
        Problem plus = p, minus = p;
        auto bump = [&](Problem& at, double by) {
          at.q.cov(i, t * D + j) += by;
          if (i != j) at.q.cov(j, t * D + i) += by;
        };
        bump(plus, h);
        bump(minus, -h);
        // dE = (i == j ? 1 : 2) (dE/dS)_ij h
        const double fd = (total(plus) - total(minus)) / (2 * h) / (i == j ? 1.0 : 2.0);
        EXPECT_NEAR(block(i, j), -2.0 * fd, 1e-5 * (1 + std::abs(fd))) << t << " " << i << j;
      }
  }
  EXPECT_GT(checked_blocks, 0);

  ReadoutStatistics rows = ReadoutStatistics::zero(N, D);
  MlpGradient gradient = MlpGradient::zero(N, D, H);
  MlpKernels(p.linear, p.mlp, rule).add_statistics(model, p.x, p.q, rows, gradient);
  EXPECT_NEAR(rows.log_likelihood.sum(), total(p), 1e-9 * std::abs(total(p)));
  auto check = [&](double& parameter, double analytic, const char* what) {
    const double saved = parameter;
    parameter = saved + h;
    const double up = total(p);
    parameter = saved - h;
    const double down = total(p);
    parameter = saved;
    EXPECT_NEAR(analytic, (up - down) / (2 * h), 1e-6 * (1 + std::abs(analytic))) << what;
  };
  for (int n = 0; n < N; ++n) {
    for (int i = 0; i < D; ++i) check(p.linear.C(n, i), rows.gradient(i, n), "c");
    check(p.linear.d(n), rows.gradient(D, n), "d");
    for (int k = 0; k < H; ++k) check(p.mlp.A(n, k), gradient.A(n, k), "A");
  }
  for (int k = 0; k < H; ++k) {
    for (int i = 0; i < D; ++i) check(p.mlp.W(k, i), gradient.W(k, i), "W");
    check(p.mlp.b(k), gradient.b(k), "b");
  }
  // -Hessian of row n in (c_n, d_n): central differences of the gradient.
  for (int n = 0; n < N; ++n)
    for (int j = 0; j <= D; ++j) {
      Problem plus = p, minus = p;
      (j < D ? plus.linear.C(n, j) : plus.linear.d(n)) += h;
      (j < D ? minus.linear.C(n, j) : minus.linear.d(n)) -= h;
      ReadoutStatistics up = ReadoutStatistics::zero(N, D), down = up;
      MlpGradient unused = MlpGradient::zero(N, D, H);
      MlpKernels(plus.linear, plus.mlp, rule).add_statistics(model, p.x, p.q, up, unused);
      MlpKernels(minus.linear, minus.mlp, rule).add_statistics(model, p.x, p.q, down, unused);
      for (int i = 0; i <= D; ++i) {
        const double fd = -(up.gradient(i, n) - down.gradient(i, n)) / (2 * h);
        EXPECT_NEAR(rows.hessian(i, n * (D + 1) + j), fd, 1e-5 * (1 + std::abs(fd)));
      }
    }
}

TEST(MlpKernels, GradientsMatchFiniteDifferencesOfTheCubatureEstimate) {
  expect_gradients_match_finite_differences(GaussianCubature::gauss_hermite_product(2, 3));
}

// The same with every bin's nodes turned by its own rotation (three rotations, four bins, so
// bins 0 and 3 share one): the targets must use each bin's nodes.
TEST(MlpKernels, GradientsMatchFiniteDifferencesOfTheRotatedCubatureEstimate) {
  expect_gradients_match_finite_differences(GaussianCubature::spherical_radial(2).rotated(3));
  expect_gradients_match_finite_differences(GaussianCubature::randomised_spherical_radial(2, 3));
}

// With A = 0 the MLP readout is the linear one: the 12-point rule reproduces the closed-form
// Poisson expectations and the exact site targets (Gauss-Newton is exact for a linear eta).
TEST(MlpKernels, WithoutHiddenLoadingsEqualsTheLinearReadout) {
  const int N = 7, D = 2, T = 5;
  Problem p = make_problem(N, D, 3, T, 0.3, 5);
  p.mlp.A.setZero();
  const GaussianCubature rule = GaussianCubature::gauss_hermite_product(D, 12);
  const PoissonObservation model;
  Eigen::MatrixXd precision = Eigen::MatrixXd::Zero(D, T * D), shift = Eigen::MatrixXd::Zero(D, T);
  const double ell = MlpKernels(p.linear, p.mlp, rule)
                         .expected_log_likelihood(model, p.x, p.q, &precision, &shift);

  const ReadoutKernels linear(p.linear);
  Eigen::ArrayXXd mu, s2, e, g, G;
  linear.eta_moments(p.q, mu, s2);
  model.expected_log_likelihood(p.x, mu, s2, e, g, G);
  Eigen::MatrixXd exact_precision = Eigen::MatrixXd::Zero(D, T * D);
  Eigen::MatrixXd exact_shift = Eigen::MatrixXd::Zero(D, T);
  linear.add_site_targets(g, G, p.q.mean, exact_precision, exact_shift);
  EXPECT_NEAR(ell, e.sum(), 1e-9 * std::abs(e.sum()));
  EXPECT_LT((precision - exact_precision).cwiseAbs().maxCoeff(), 1e-9 * exact_precision.norm());
  EXPECT_LT((shift - exact_shift).cwiseAbs().maxCoeff(), 1e-9 * exact_shift.norm());
}

TEST(MlpReadout, PriorAndRowSelection) {
  MlpReadout mlp = MlpReadout::initial(4, 2, 3, 1);
  EXPECT_EQ(mlp.A.squaredNorm(), 0.0);
  EXPECT_GT(mlp.W.squaredNorm(), 0.0);
  mlp.A.setConstant(1.0);
  const double count = 4 * 3 + 3 * 2 + 3;
  EXPECT_NEAR(
      mlp.log_prior(2.0),
      0.5 * count * std::log(2.0 / (2 * M_PI)) - (12 + mlp.W.squaredNorm() + mlp.b.squaredNorm()),
      1e-12);
  const MlpReadout kept = mlp.select_rows({3, 1});
  EXPECT_EQ(kept.A.rows(), 2);
  EXPECT_EQ(kept.W, mlp.W);
}

}  // namespace
}  // namespace spikevi
