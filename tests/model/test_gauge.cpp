// The canonical gauge (DESIGN.md §3): its defining properties, and that it changes nothing a
// user can observe (predicted rates, the dynamics KL, evidence_laplace's readout terms).
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/model/gauge.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::random_normal;
using testing::random_spd;

struct Fixture {
  GlobalState globals;
  std::vector<GaussianMoments> latents;
};

Fixture random_fit(int N, int D, std::mt19937_64& rng) {
  Fixture f;
  GlobalState& g = f.globals;
  g.dynamics_prior = MatrixNormalInverseWishart::weak_prior(D);
  g.dynamics = MatrixNormalInverseWishart{random_normal(D, D + 1, rng, 0.3),
                                          random_spd(D + 1, rng, 0.05, 0.1),
                                          random_spd(D, rng, 0.5, 1.0), D + 20.0};
  g.mu0 = random_normal(D, 1, rng);
  g.Sigma0 = random_spd(D, rng);
  g.spikes_prior = ReadoutPrior::weak(D);
  g.spikes.C = random_normal(N, D, rng);
  g.spikes.d = random_normal(N, 1, rng);
  g.spikes.precision.resize(D + 1, N * (D + 1));
  for (int n = 0; n < N; ++n)
    g.spikes.precision.middleCols(n * (D + 1), D + 1) = random_spd(D + 1, rng, 5.0, 20.0);
  for (int k = 0; k < 3; ++k) {
    const int T = 4 + k;
    GaussianMoments q;
    q.mean = random_normal(D, T, rng, 2.0).colwise() + Eigen::VectorXd::Constant(D, 1.5);
    q.cov.resize(D, D * T);
    q.lag_cov = random_normal(D, D * T, rng, 0.01);
    for (int t = 0; t < T; ++t) q.cov.middleCols(t * D, D) = random_spd(D, rng, 0.1, 0.5);
    q.log_det_precision = 3.0;
    f.latents.push_back(q);
  }
  return f;
}

TEST(AffineGauge, CanonicalFormHasOrthonormalSignedLoadingsAndCentredLatents) {
  std::mt19937_64 rng(3);
  const Fixture f = random_fit(12, 3, rng);
  const AffineGauge gauge = AffineGauge::canonical(f.globals.spikes, f.latents);
  const Eigen::MatrixXd C = gauge.apply(f.globals.spikes).C;
  EXPECT_LT(testing::max_abs_diff(C.transpose() * C, Eigen::MatrixXd::Identity(3, 3)), 1e-12);
  for (int j = 0; j < 3; ++j) {
    Eigen::Index largest = 0;
    C.col(j).cwiseAbs().maxCoeff(&largest);
    EXPECT_GT(C(largest, j), 0.0) << "column " << j;
  }
  // Rows of M = S V' are ordered by the singular values of the original C.
  EXPECT_GE(gauge.M.row(0).norm(), gauge.M.row(1).norm());
  EXPECT_GE(gauge.M.row(1).norm(), gauge.M.row(2).norm());
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(3);
  double bins = 0;
  for (const GaussianMoments& q : f.latents) {
    mean += gauge.apply(q).mean.rowwise().sum();
    bins += q.bins();
  }
  EXPECT_LT((mean / bins).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(AffineGauge, LeavesPredictionsKlAndLaplaceEvidenceUnchanged) {
  std::mt19937_64 rng(4);
  const Fixture f = random_fit(9, 3, rng);
  const AffineGauge gauge = AffineGauge::canonical(f.globals.spikes, f.latents);
  const GlobalState moved = gauge.apply(f.globals);

  Eigen::ArrayXXd mu, s2, mu_moved, s2_moved;
  const ReadoutKernels before(f.globals.spikes), after(moved.spikes);
  before.eta_moments(f.latents[1], mu, s2);
  after.eta_moments(gauge.apply(f.latents[1]), mu_moved, s2_moved);
  EXPECT_LT((mu - mu_moved).abs().maxCoeff(), 1e-10);
  EXPECT_LT((s2 - s2_moved).abs().maxCoeff(), 1e-10);

  EXPECT_NEAR(moved.dynamics.kl_divergence(moved.dynamics_prior),
              f.globals.dynamics.kl_divergence(f.globals.dynamics_prior), 1e-9);
  // log p0(w) + Laplace correction: the Jacobians of w' = T^-T w cancel.
  const double evidence_terms =
      f.globals.spikes_prior.log_density(f.globals.spikes) + f.globals.laplace_correction();
  EXPECT_NEAR(moved.spikes_prior.log_density(moved.spikes) + moved.laplace_correction(),
              evidence_terms, 1e-9 * std::abs(evidence_terms));

  // The mean dynamics follow z' = M z + v: A' = M A M^-1, b' = M b + v - A' v.
  const Eigen::MatrixXd A_moved = gauge.M * f.globals.dynamics.mean_A() * gauge.M.inverse();
  EXPECT_LT(testing::max_abs_diff(moved.dynamics.mean_A(), A_moved), 1e-10);
  EXPECT_LT(testing::max_abs_diff(moved.dynamics.mean_b(), gauge.M * f.globals.dynamics.mean_b() +
                                                               gauge.v - A_moved * gauge.v),
            1e-10);
  EXPECT_LT(testing::max_abs_diff(moved.mu0, gauge.M * f.globals.mu0 + gauge.v), 1e-12);
  // Entropy of q(z') = entropy of q(z) + T log|det M|.
  const double shift = f.latents[0].bins() * std::log(std::abs(gauge.M.determinant()));
  EXPECT_NEAR(gauge.apply(f.latents[0]).entropy(), f.latents[0].entropy() + shift, 1e-10);
}

}  // namespace
}  // namespace spikevi
