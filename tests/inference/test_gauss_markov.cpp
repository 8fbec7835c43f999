// The Gauss-Markov family and its local step, against exact answers: for a linear-Gaussian
// model with point globals, one CVI step with rho = 1 from any start is the RTS smoother and
// the site-form ELBO is the Kalman filter's log-likelihood (DESIGN.md §2 "The exactness test").
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "spikevi/inference/gauss_markov.hpp"
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

// Independent covariance-form Kalman filter and RTS smoother (missing channels skipped).
struct KalmanResult {
  Eigen::MatrixXd mean;                   // D x T
  std::vector<Eigen::MatrixXd> cov, lag;  // lag[t] = Cov(z_t, z_{t-1})
  double log_likelihood = 0.0;
};

KalmanResult kalman_rts(const LinearGaussianModel& m, const Eigen::ArrayXXd& y) {
  const Eigen::Index D = m.A.rows();
  const int T = static_cast<int>(y.cols());
  std::vector<Eigen::VectorXd> mf(T), mp(T);
  std::vector<Eigen::MatrixXd> Pf(T), Pp(T);
  KalmanResult out;
  for (int t = 0; t < T; ++t) {
    mp[t] = t == 0 ? m.mu0 : Eigen::VectorXd(m.A * mf[t - 1] + m.b);
    Pp[t] = t == 0 ? m.Sigma0 : Eigen::MatrixXd(m.A * Pf[t - 1] * m.A.transpose() + m.Q);
    std::vector<Eigen::Index> seen;
    for (Eigen::Index j = 0; j < y.rows(); ++j)
      if (!std::isnan(y(j, t))) seen.push_back(j);
    mf[t] = mp[t];
    Pf[t] = Pp[t];
    if (seen.empty()) continue;
    const Eigen::Index n = static_cast<Eigen::Index>(seen.size());
    Eigen::MatrixXd Wo(n, D);
    Eigen::VectorXd residual(n), R(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      Wo.row(i) = m.W.row(seen[i]);
      residual(i) = y(seen[i], t) - m.W.row(seen[i]).dot(mp[t]) - m.e(seen[i]);
      R(i) = m.R(seen[i]);
    }
    const Eigen::MatrixXd Sy = Wo * Pp[t] * Wo.transpose() + Eigen::MatrixXd(R.asDiagonal());
    const Eigen::LLT<Eigen::MatrixXd> llt(Sy);
    const double log_det = 2.0 * Eigen::MatrixXd(llt.matrixL()).diagonal().array().log().sum();
    out.log_likelihood +=
        -0.5 * (n * std::log(2 * std::numbers::pi) + log_det + residual.dot(llt.solve(residual)));
    const Eigen::MatrixXd gain =
        Pp[t] * Wo.transpose() * llt.solve(Eigen::MatrixXd::Identity(n, n));
    mf[t] = mp[t] + gain * residual;
    Pf[t] = Pp[t] - gain * Sy * gain.transpose();
  }
  out.mean.resize(D, T);
  out.cov.assign(T, Eigen::MatrixXd());
  out.lag.assign(T, Eigen::MatrixXd::Zero(D, D));
  out.mean.col(T - 1) = mf[T - 1];
  out.cov[T - 1] = Pf[T - 1];
  for (int t = T - 2; t >= 0; --t) {
    const Eigen::MatrixXd G = Pf[t] * m.A.transpose() * Pp[t + 1].inverse();
    out.mean.col(t) = mf[t] + G * (out.mean.col(t + 1) - mp[t + 1]);
    out.cov[t] = Pf[t] + G * (out.cov[t + 1] - Pp[t + 1]) * G.transpose();
    out.lag[t + 1] = out.cov[t + 1] * G.transpose();
  }
  return out;
}

class ExactnessTest : public ::testing::TestWithParam<int> {};

TEST_P(ExactnessTest, OneFullStepFromAnyStartIsTheKalmanSmootherAndTheElboItsLikelihood) {
  const int T = GetParam();
  const int D = 3;
  std::mt19937_64 rng(17 + T);
  const LinearGaussianModel m = random_linear_gaussian_model(D, 4, rng);
  GaussianTrial trial(m, simulate_linear_gaussian(m, T, rng));
  const ReadoutKernels kernels(trial.readout);
  const std::vector<ModalityView> modalities{
      ModalityView{&trial.model, &kernels, &trial.y, trial.model.log_base_measure(trial.y)}};
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);

  GaussMarkovEvaluator evaluator;
  GaussMarkovState start, step;
  evaluator.evaluate(prior, modalities, random_sites(D, T, rng), exact_expectations(), start);
  evaluator.evaluate(prior, modalities, start.targets, exact_expectations(), step);

  const KalmanResult kalman = kalman_rts(m, trial.y);
  // Both sides are O(T D^3) double-precision recursions of well-conditioned matrices
  // (eigenvalues of Q, R, Sigma0 in [0.1, 1.5]): agreement to 1e-9 leaves room for ~1e4 ulps.
  EXPECT_LT(testing::max_abs_diff(step.moments.mean, kalman.mean), 1e-9);
  for (int t = 0; t < T; ++t) {
    EXPECT_LT(testing::max_abs_diff(step.moments.cov_block(t), kalman.cov[t]), 1e-9) << "bin " << t;
    EXPECT_LT(testing::max_abs_diff(step.moments.lag_block(t), kalman.lag[t]), 1e-9) << "bin " << t;
  }
  EXPECT_NEAR(step.elbo, kalman.log_likelihood, 1e-8 * std::abs(kalman.log_likelihood));
  // The arbitrary start is a worse q: its ELBO is strictly lower.
  EXPECT_LT(start.elbo, step.elbo - 1e-6);
}

INSTANTIATE_TEST_SUITE_P(RaggedLengths, ExactnessTest, ::testing::Values(1, 2, 5, 60));

// One simulated linear-Gaussian trial of T bins with its modality and prior, for local steps.
struct SimulatedTrial {
  LinearGaussianModel m;
  GaussianTrial trial;
  ReadoutKernels kernels;
  std::vector<ModalityView> modalities;
  PriorBlocks prior;

  SimulatedTrial(int D, int T, std::mt19937_64& rng)
      : m(random_linear_gaussian_model(D, 3, rng)),
        trial(m, simulate_linear_gaussian(m, T, rng)),
        kernels(trial.readout),
        modalities{ModalityView{&trial.model, &kernels, &trial.y, 0.0}},
        prior(prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T)) {}
  double exact_log_likelihood() const { return kalman_rts(m, trial.y).log_likelihood; }
};

TEST(GaussMarkovLocalStep, ConvergesToTheKalmanSmootherAndNeverLowersTheElbo) {
  const int T = 40;
  const int D = 2;
  std::mt19937_64 rng(5);
  const SimulatedTrial problem(D, T, rng);
  const auto& [m, trial, kernels, modalities, prior] = problem;
  GaussMarkovEvaluator evaluator;
  GaussMarkovState state;
  evaluator.evaluate(prior, modalities, Sites::zero(D, T), exact_expectations(), state);
  const double start = state.elbo;
  const LocalStepReport report =
      cvi_local_step(LocalProblem{prior, modalities, evaluator, exact_expectations()}, state, LocalStepSettings{});
  EXPECT_TRUE(report.converged);
  EXPECT_GE(state.elbo, start);
  EXPECT_NEAR(state.elbo, kalman_rts(m, trial.y).log_likelihood, 1e-8 * std::abs(state.elbo));
}

// Warm sites that make J indefinite under the new prior (a strongly negative site precision)
// are abandoned for the prior's zero sites; valid warm sites are kept. Both reach the Kalman
// smoother (a Gaussian model: the exact posterior).
TEST(GaussMarkovWarmLocalStep, RestartsFromThePriorWhenTheWarmSitesAreInvalid) {
  const int T = 30;
  const int D = 2;
  std::mt19937_64 rng(11);
  const SimulatedTrial problem(D, T, rng);
  const auto& [m, trial, kernels, modalities, prior] = problem;
  const double exact = problem.exact_log_likelihood();
  GaussMarkovEvaluator evaluator;

  GaussMarkovState invalid;
  invalid.sites = Sites::zero(D, T);
  invalid.sites.precision.middleCols(7 * D, D) = -1e6 * Eigen::MatrixXd::Identity(D, D);
  const LocalStepReport restarted =
      warm_local_step(LocalProblem{prior, modalities, evaluator, exact_expectations()}, invalid, LocalStepSettings{}, natural_gradient());
  EXPECT_TRUE(restarted.restarted);
  EXPECT_NEAR(invalid.elbo, exact, 1e-8 * std::abs(exact));

  GaussMarkovState valid;
  valid.sites = random_sites(D, T, rng);
  const LocalStepReport warm =
      warm_local_step(LocalProblem{prior, modalities, evaluator, exact_expectations()}, valid, LocalStepSettings{}, natural_gradient());
  EXPECT_FALSE(warm.restarted);
  EXPECT_NEAR(valid.elbo, exact, 1e-8 * std::abs(exact));
}

TEST(SiteFormElbo, EqualsTheGenericElboOfTheSameGaussian) {
  // ELBO = E[ell] + E_q[log p(z)] + H[q] evaluated directly from the moments must equal the
  // site form for any sites (DESIGN.md §2): checks J_p, h_p, c and the site algebra together.
  const int T = 7;
  const int D = 3;
  std::mt19937_64 rng(11);
  const LinearGaussianModel m = random_linear_gaussian_model(D, 2, rng);
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  GaussMarkovEvaluator evaluator;
  GaussMarkovState state;
  evaluator.evaluate(prior, {}, random_sites(D, T, rng), exact_expectations(), state);
  const GaussianMoments& q = state.moments;
  // E_q[log p(z)] = -tr(J_p E[zz'])/2 + h_p'm - c with E[zz'] from the block moments.
  const Eigen::MatrixXd J = prior.precision.to_dense();
  Eigen::MatrixXd second = Eigen::MatrixXd::Zero(T * D, T * D);
  for (int t = 0; t < T; ++t) {
    second.block(t * D, t * D, D, D) = q.cov_block(t);
    if (t > 0) {
      second.block(t * D, (t - 1) * D, D, D) = q.lag_block(t);
      second.block((t - 1) * D, t * D, D, D) = q.lag_block(t).transpose();
    }
  }
  const Eigen::Map<const Eigen::VectorXd> mean(q.mean.data(), T * D);
  const Eigen::Map<const Eigen::VectorXd> h(prior.shift.data(), T * D);
  const double log_prior =
      -0.5 * (J.cwiseProduct(second).sum() + mean.dot(J * mean)) + h.dot(mean) - prior.constant;
  const double generic = log_prior + q.entropy();
  EXPECT_NEAR(state.elbo, generic, 1e-10 * std::abs(generic));
}

}  // namespace
}  // namespace spikevi
