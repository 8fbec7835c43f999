// Tests of the dynamics block (DESIGN.md §2 "The prior part", §3 MNIW).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"
#include "spikevi/model/dynamics.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using Mniw = MatrixNormalInverseWishart;
using spikevi::testing::max_abs_diff;
using spikevi::testing::random_normal;
using spikevi::testing::random_spd;

const double kLog2Pi = std::log(2.0 * std::numbers::pi);

// ---------------------------------------------------------------------------------------
// Oracles, written independently of src/model/dynamics.cpp.

MatrixXd augmented(const MatrixXd& A, const VectorXd& b) {
  MatrixXd At(A.rows(), A.cols() + 1);
  At << A, b;
  return At;
}

// A~ = [A B b] for the regressor (z_{t-1}, u_t, 1).
MatrixXd augmented(const MatrixXd& A, const MatrixXd& B, const VectorXd& b) {
  MatrixXd At(A.rows(), A.cols() + B.cols() + 1);
  At << A, B, b;
  return At;
}

// The regressor z~_{t-1} = (z_{t-1}, u_t, 1) of the transition into bin t (U = 0: (z_{t-1}, 1)).
VectorXd regressor(const MatrixXd& z, const MatrixXd* inputs, int t) {
  const Eigen::Index width = inputs == nullptr ? 0 : inputs->rows();
  VectorXd x(z.rows() + width + 1);
  x.head(z.rows()) = z.col(t - 1);
  if (width > 0) x.segment(z.rows(), width) = inputs->col(t);
  x(x.size() - 1) = 1.0;
  return x;
}

double log_det(const MatrixXd& spd) {
  return 2.0 * Eigen::LLT<MatrixXd>(spd).matrixL().toDenseMatrix().diagonal().array().log().sum();
}

double gaussian_log_density(const VectorXd& x, const VectorXd& mean, const MatrixXd& cov) {
  const VectorXd r = x - mean;
  return -0.5 *
         (r.dot(cov.ldlt().solve(r)) + static_cast<double>(x.size()) * kLog2Pi + log_det(cov));
}

// log p(z | A~, Q) = log N(z_0; mu0, Sigma0) + sum_{t>=1} log N(z_t; A z_{t-1} + B u_t + b, Q),
// A~ = [A B b] (U = 0, inputs == nullptr: A~ = [A b]).
double log_trajectory_density(const MatrixXd& At, const MatrixXd& Q, const VectorXd& mu0,
                              const MatrixXd& Sigma0, const MatrixXd& z,
                              const MatrixXd* inputs = nullptr) {
  double total = gaussian_log_density(z.col(0), mu0, Sigma0);
  for (int t = 1; t < z.cols(); ++t)
    total += gaussian_log_density(z.col(t), At * regressor(z, inputs, t), Q);
  return total;
}

// E_theta log p(z | theta) from the expectations alone, transition by transition:
// -(1/2) sum_t (D log 2 pi + E log|Q| + z_t'E[Q^-1]z_t - 2 z_t'E[Q^-1 A~]z~ + z~'E[A~'Q^-1 A~]z~).
double expected_log_trajectory_density(const DynamicsExpectations& e, const VectorXd& mu0,
                                       const MatrixXd& Sigma0, const MatrixXd& z,
                                       const MatrixXd* inputs) {
  const double dim = static_cast<double>(z.rows());
  double total = gaussian_log_density(z.col(0), mu0, Sigma0);
  for (int t = 1; t < z.cols(); ++t) {
    const VectorXd x = regressor(z, inputs, t);
    const VectorXd y = z.col(t);
    total -= 0.5 * (dim * kLog2Pi + e.E_logdet_Q + y.dot(e.E_Qinv * y) -
                    2.0 * y.dot(e.E_Qinv_At * x) + x.dot(e.E_At_Qinv_At * x));
  }
  return total;
}

// -z'J_p z/2 + h_p'z - c, block by block (J_p symmetric, lower blocks J_{t,t-1}).
double prior_quadratic_form(const PriorBlocks& prior, const MatrixXd& z) {
  const int dim = static_cast<int>(z.rows());
  double value = prior.shift.cwiseProduct(z).sum() - prior.constant;
  for (int t = 0; t < z.cols(); ++t) {
    const MatrixXd diagonal = prior.precision.diagonal.middleCols(t * dim, dim);
    value -= 0.5 * z.col(t).dot(diagonal * z.col(t));
    if (t == 0) continue;
    const MatrixXd lower = prior.precision.lower.middleCols(t * dim, dim);
    value -= z.col(t).dot(lower * z.col(t - 1));
  }
  return value;
}

struct Lds {
  MatrixXd A;
  VectorXd b;
  MatrixXd Q;
  VectorXd mu0;
  MatrixXd Sigma0;
};

Lds random_lds(int dim, std::mt19937_64& rng) {
  return Lds{0.4 * random_normal(dim, dim, rng), random_normal(dim, 1, rng),
             random_spd(dim, rng, 0.3, 1.0), random_normal(dim, 1, rng),
             random_spd(dim, rng, 0.5, 1.5)};
}

MatrixXd simulate(const Lds& lds, int bins, std::mt19937_64& rng) {
  const int dim = static_cast<int>(lds.b.size());
  const MatrixXd noise_chol = lds.Q.llt().matrixL();
  MatrixXd z(dim, bins);
  z.col(0) = lds.mu0 + lds.Sigma0.llt().matrixL().toDenseMatrix() * random_normal(dim, 1, rng);
  for (int t = 1; t < bins; ++t)
    z.col(t) = lds.A * z.col(t - 1) + lds.b + noise_chol * random_normal(dim, 1, rng);
  return z;
}

Mniw random_mniw(int dim, std::mt19937_64& rng, double nu_above_minimum = 5.5, int inputs = 0) {
  Mniw q;
  q.M = 0.5 * random_normal(dim, dim + inputs + 1, rng);
  q.V = random_spd(dim + inputs + 1, rng, 0.1, 0.5);
  q.Psi = random_spd(dim, rng, 0.5, 1.5);
  q.nu = dim - 1 + nu_above_minimum;
  return q;
}

double log_multivariate_gamma(double a, int dim) {
  double total = 0.25 * dim * (dim - 1) * std::log(std::numbers::pi);
  for (int j = 0; j < dim; ++j) total += std::lgamma(a - 0.5 * j);
  return total;
}

// log MNIW(A~, Q) = log IW(Q; Psi, nu) + log MN(A~; M, Q, V).
double mniw_log_density(const Mniw& th, const MatrixXd& At, const MatrixXd& Q) {
  const int dim = th.dim();
  const double cols = static_cast<double>(th.M.cols());
  const MatrixXd Q_inv = Q.inverse();
  const double log_det_Q = log_det(Q);
  const double log_iw = 0.5 * th.nu * log_det(th.Psi) - 0.5 * th.nu * dim * std::log(2.0) -
                        log_multivariate_gamma(0.5 * th.nu, dim) -
                        0.5 * (th.nu + dim + 1) * log_det_Q - 0.5 * (Q_inv * th.Psi).trace();
  const MatrixXd r = At - th.M;
  const double log_mn = -0.5 * (th.V.inverse() * r.transpose() * Q_inv * r).trace() -
                        0.5 * dim * cols * kLog2Pi - 0.5 * dim * log_det(th.V) -
                        0.5 * cols * log_det_Q;
  return log_iw + log_mn;
}

// Draws (A~, Q) from an MNIW: Q^-1 ~ Wishart(Psi^-1, nu) by the Bartlett decomposition,
// then A~ = M + chol(Q) Z chol(V)' with Z standard normal.
class MniwSampler {
 public:
  explicit MniwSampler(const Mniw& th)
      : th_(th),
        precision_scale_chol_(th.Psi.inverse().llt().matrixL()),
        v_chol_(th.V.llt().matrixL()) {}

  void draw(std::mt19937_64& rng, MatrixXd& At, MatrixXd& Q) {
    const int dim = th_.dim();
    MatrixXd bartlett = MatrixXd::Zero(dim, dim);
    for (int i = 0; i < dim; ++i) {
      std::chi_squared_distribution<double> chi2(th_.nu - i);
      bartlett(i, i) = std::sqrt(chi2(rng));
      for (int j = 0; j < i; ++j) bartlett(i, j) = normal_(rng);
    }
    const MatrixXd factor = precision_scale_chol_ * bartlett;
    const MatrixXd Q_raw = (factor * factor.transpose()).inverse();
    Q = 0.5 * (Q_raw + Q_raw.transpose());
    const MatrixXd q_chol = Q.llt().matrixL();
    At = th_.M +
         q_chol * random_normal(dim, static_cast<int>(th_.M.cols()), rng) * v_chol_.transpose();
  }

 private:
  Mniw th_;
  MatrixXd precision_scale_chol_;
  MatrixXd v_chol_;
  std::normal_distribution<double> normal_;
};

// Element-wise Monte Carlo mean and standard error.
class MonteCarlo {
 public:
  void add(const MatrixXd& x) {
    if (count_ == 0) {
      sum_ = MatrixXd::Zero(x.rows(), x.cols());
      sum_sq_ = sum_;
    }
    sum_ += x;
    sum_sq_ += x.cwiseProduct(x);
    count_ += 1.0;
  }
  void add(double x) { add(MatrixXd::Constant(1, 1, x)); }
  MatrixXd mean() const { return sum_ / count_; }
  MatrixXd standard_error() const {
    const MatrixXd m = mean();
    const MatrixXd variance = (sum_sq_ / count_ - m.cwiseProduct(m)) * count_ / (count_ - 1.0);
    return (variance / count_).cwiseSqrt();
  }

 private:
  MatrixXd sum_, sum_sq_;
  double count_ = 0.0;
};

// With a fixed seed a 4-SE band is exceeded by a correct formula with probability ~6e-5 per
// element, while a wrong formula (e.g. dropping the D V term) is off by many SEs.
void expect_within_standard_errors(const MonteCarlo& mc, const MatrixXd& exact, const char* what) {
  const MatrixXd error = (mc.mean() - exact).cwiseAbs();
  const MatrixXd bound = 4.0 * mc.standard_error();
  for (Eigen::Index i = 0; i < exact.size(); ++i)
    EXPECT_LE(error(i), bound(i)) << what << " element " << i << ": exact " << exact(i)
                                  << ", Monte Carlo " << mc.mean()(i);
}

double relative_diff(const MatrixXd& a, const MatrixXd& b) {
  return max_abs_diff(a, b) / std::max(1.0, b.cwiseAbs().maxCoeff());
}

// A Gaussian q(z_1:T) with random means, SPD marginal covariances and nonzero lag blocks.
GaussianMoments random_moments(int dim, int bins, std::mt19937_64& rng) {
  GaussianMoments q;
  q.mean = random_normal(dim, bins, rng);
  q.cov.resize(dim, dim * bins);
  q.lag_cov = MatrixXd::Zero(dim, dim * bins);
  for (int t = 0; t < bins; ++t) {
    q.cov.middleCols(t * dim, dim) = random_spd(dim, rng, 0.1, 0.5);
    if (t > 0) q.lag_cov.middleCols(t * dim, dim) = 0.2 * random_normal(dim, dim, rng);
  }
  return q;
}

// Per transition: z~ = (z_{t-1}, u_t, 1) has mean regressor(m, u, t) and covariance S_{t-1} in
// its z block only (the inputs are known).
TransitionStatistics brute_force_statistics(const GaussianMoments& q,
                                            const MatrixXd* inputs = nullptr) {
  const int dim = q.dim();
  const int width = inputs == nullptr ? 0 : static_cast<int>(inputs->rows());
  const int p = dim + width + 1;
  TransitionStatistics s = TransitionStatistics::zero(dim, width);
  for (int t = 1; t < q.bins(); ++t) {
    const VectorXd x = regressor(q.mean, inputs, t);
    MatrixXd cov_x = MatrixXd::Zero(p, p);
    cov_x.topLeftCorner(dim, dim) = q.cov_block(t - 1);
    MatrixXd cross_cov = MatrixXd::Zero(dim, p);
    cross_cov.leftCols(dim) = q.lag_block(t);
    s.Sxx += cov_x + x * x.transpose();
    s.Syx += cross_cov + q.mean.col(t) * x.transpose();
    s.Syy += q.cov_block(t) + q.mean.col(t) * q.mean.col(t).transpose();
    s.n += 1.0;
  }
  return s;
}

// Natural parameters as one flat comparison-friendly matrix per component.
void expect_natural_near(const Mniw::Natural& a, const Mniw::Natural& b, double tol) {
  EXPECT_LE(relative_diff(a.eta1, b.eta1), tol);
  EXPECT_LE(relative_diff(a.eta2, b.eta2), tol);
  EXPECT_LE(relative_diff(a.eta3, b.eta3), tol);
  EXPECT_NEAR(a.nu, b.nu, tol * std::max(1.0, std::abs(b.nu)));
}

// ---------------------------------------------------------------------------------------
// Prior blocks (DESIGN.md §2).

TEST(PriorBlocks, EqualTheExactLogDensityOfAnLdsHeldAtPointValues) {
  std::mt19937_64 rng(11);
  const int dim = 3;
  const Lds lds = random_lds(dim, rng);
  const DynamicsExpectations point = DynamicsExpectations::point(lds.A, lds.b, lds.Q);
  for (int bins : {1, 2, 5}) {
    const PriorBlocks prior = prior_blocks(point, lds.mu0, lds.Sigma0, bins);
    for (int draw = 0; draw < 5; ++draw) {
      const MatrixXd z = random_normal(dim, bins, rng, 2.0);
      const double exact =
          log_trajectory_density(augmented(lds.A, lds.b), lds.Q, lds.mu0, lds.Sigma0, z);
      // Both sides are sums of O(10-100) terms computed with well-conditioned (cond < 20)
      // factorisations: round-off is ~1e-14 relative, so 1e-10 leaves a wide margin.
      EXPECT_NEAR(prior_quadratic_form(prior, z), exact, 1e-10 * std::abs(exact)) << "T = " << bins;
    }
  }
}

TEST(PriorBlocks, EqualTheMonteCarloAverageOfTheLogDensityUnderAnMniw) {
  std::mt19937_64 rng(12);
  for (int dim : {1, 3}) {
    const Lds lds = random_lds(dim, rng);
    const Mniw q = random_mniw(dim, rng);
    const int bins = 5;
    const PriorBlocks prior = prior_blocks(q.expectations(), lds.mu0, lds.Sigma0, bins);
    std::vector<MatrixXd> paths;
    VectorXd expected(3);
    for (int k = 0; k < 3; ++k) {
      paths.push_back(random_normal(dim, bins, rng));
      expected(k) = prior_quadratic_form(prior, paths.back());
    }
    MniwSampler sampler(q);
    MonteCarlo log_density;
    MatrixXd At, Q;
    for (int s = 0; s < 20000; ++s) {
      sampler.draw(rng, At, Q);
      VectorXd values(3);
      for (int k = 0; k < 3; ++k)
        values(k) = log_trajectory_density(At, Q, lds.mu0, lds.Sigma0, paths[k]);
      log_density.add(values);
    }
    expect_within_standard_errors(log_density, expected, "E log p(z | theta)");
  }
}

// ---------------------------------------------------------------------------------------
// MNIW expectations (DESIGN.md §3).

TEST(MatrixNormalInverseWishart, ExpectationsMatchMonteCarlo) {
  std::mt19937_64 rng(13);
  struct Shape {
    int dim, inputs;
  };
  for (const Shape shape : {Shape{1, 0}, Shape{3, 0}, Shape{2, 2}}) {
    const int dim = shape.dim;
    const Mniw q = random_mniw(dim, rng, 5.5, shape.inputs);
    const DynamicsExpectations e = q.expectations();
    MniwSampler sampler(q);
    MonteCarlo Qinv, Qinv_At, At_Qinv_At, logdet_Q;
    MatrixXd At, Q;
    for (int s = 0; s < 20000; ++s) {
      sampler.draw(rng, At, Q);
      const MatrixXd Q_inv = Q.inverse();
      Qinv.add(Q_inv);
      Qinv_At.add(Q_inv * At);
      At_Qinv_At.add(At.transpose() * Q_inv * At);
      logdet_Q.add(log_det(Q));
    }
    expect_within_standard_errors(Qinv, e.E_Qinv, "E[Q^-1]");
    expect_within_standard_errors(Qinv_At, e.E_Qinv_At, "E[Q^-1 A~]");
    expect_within_standard_errors(At_Qinv_At, e.E_At_Qinv_At, "E[A~'Q^-1 A~]");
    expect_within_standard_errors(logdet_Q, MatrixXd::Constant(1, 1, e.E_logdet_Q), "E log|Q|");
  }
}

TEST(MatrixNormalInverseWishart, ExpectationsTendToThePointValuesAsItConcentrates) {
  std::mt19937_64 rng(14);
  const int dim = 3;
  const Lds lds = random_lds(dim, rng);
  Mniw q;
  q.M = augmented(lds.A, lds.b);
  q.V = 1e-9 * MatrixXd::Identity(dim + 1, dim + 1);
  q.nu = 1e7;
  q.Psi = q.nu * lds.Q;
  const DynamicsExpectations e = q.expectations();
  const DynamicsExpectations point = DynamicsExpectations::point(lds.A, lds.b, lds.Q);
  // Exact for E[Q^-1] and E[Q^-1 A~] (up to round-off); E[A~'Q^-1A~] is off by D V = 3e-9;
  // E log|Q| by sum_i (i - 1)/nu + O(D/nu) ~ 1e-6.
  EXPECT_LE(max_abs_diff(e.E_Qinv, point.E_Qinv), 1e-10);
  EXPECT_LE(max_abs_diff(e.E_Qinv_At, point.E_Qinv_At), 1e-10);
  EXPECT_LE(max_abs_diff(e.E_At_Qinv_At, point.E_At_Qinv_At), 1e-8);
  EXPECT_NEAR(e.E_logdet_Q, point.E_logdet_Q, 1e-5);
}

// ---------------------------------------------------------------------------------------
// Conjugate update (DESIGN.md §3).

TEST(MatrixNormalInverseWishart, ConjugateUpdateIsTheBayesianRegressionPosterior) {
  std::mt19937_64 rng(15);
  const int dim = 2, bins = 40;
  const Lds lds = random_lds(dim, rng);
  GaussianMoments q;
  q.mean = simulate(lds, bins, rng);
  q.cov = MatrixXd::Zero(dim, dim * bins);
  q.lag_cov = MatrixXd::Zero(dim, dim * bins);
  TransitionStatistics stats = TransitionStatistics::zero(dim);
  stats.add_trial(q);

  // Regression of Y = z_{1..T-1} on X = (z_{0..T-2}; 1).
  MatrixXd X(dim + 1, bins - 1);
  X << q.mean.leftCols(bins - 1), MatrixXd::Ones(1, bins - 1);
  const MatrixXd Y = q.mean.rightCols(bins - 1);
  const Mniw prior = random_mniw(dim, rng, 2.5);
  const MatrixXd V0_inv = prior.V.inverse();
  const MatrixXd Vn = (V0_inv + X * X.transpose()).inverse();
  const MatrixXd Mn = (prior.M * V0_inv + Y * X.transpose()) * Vn;
  const MatrixXd Psi_n = prior.Psi + Y * Y.transpose() + prior.M * V0_inv * prior.M.transpose() -
                         Mn * Vn.inverse() * Mn.transpose();

  const Mniw posterior = Mniw::blend(prior, prior, stats, 1.0, 1.0);
  // Entries are O(1-100) and the solves involve matrices of condition number < 1e4: round-off
  // stays near 1e-12 relative.
  EXPECT_LE(relative_diff(posterior.V, Vn), 1e-10);
  EXPECT_LE(relative_diff(posterior.M, Mn), 1e-10);
  EXPECT_LE(relative_diff(posterior.Psi, Psi_n), 1e-10);
  EXPECT_DOUBLE_EQ(posterior.nu, prior.nu + bins - 1);
}

TEST(MatrixNormalInverseWishart, FullStepDoesNotNeedAValidCurrentValue) {
  std::mt19937_64 rng(27);
  const Mniw prior = random_mniw(2, rng);
  TransitionStatistics stats = TransitionStatistics::zero(2);
  stats.add_trial(random_moments(2, 6, rng));
  const Mniw from_prior = Mniw::blend(prior, prior, stats, 2.0, 1.0);
  const Mniw from_empty = Mniw::blend(Mniw{}, prior, stats, 2.0, 1.0);
  EXPECT_EQ(max_abs_diff(from_empty.M, from_prior.M), 0.0);
  EXPECT_EQ(max_abs_diff(from_empty.Psi, from_prior.Psi), 0.0);
  EXPECT_EQ(from_empty.nu, from_prior.nu);
}

TEST(MatrixNormalInverseWishart, NaturalParametersRoundTrip) {
  std::mt19937_64 rng(16);
  const Mniw q = random_mniw(3, rng);
  const Mniw back = Mniw::from_natural(q.natural());
  // Two SPD solves of condition number < 1e3: round-off ~1e-13.
  EXPECT_LE(relative_diff(back.M, q.M), 1e-12);
  EXPECT_LE(relative_diff(back.V, q.V), 1e-12);
  EXPECT_LE(relative_diff(back.Psi, q.Psi), 1e-12);
  EXPECT_EQ(back.nu, q.nu);
}

TEST(MatrixNormalInverseWishart, HalfStepIsTheMidpointInNaturalParameters) {
  std::mt19937_64 rng(17);
  const int dim = 3;
  const Mniw current = random_mniw(dim, rng);
  const Mniw prior = Mniw::weak_prior(dim);
  TransitionStatistics stats = TransitionStatistics::zero(dim);
  stats.add_trial(random_moments(dim, 8, rng));
  const double scale = 3.0;

  const Mniw::Natural from = current.natural();
  const Mniw::Natural base = prior.natural();
  Mniw::Natural midpoint;
  midpoint.eta1 = 0.5 * (from.eta1 + base.eta1 + scale * stats.Sxx);
  midpoint.eta2 = 0.5 * (from.eta2 + base.eta2 + scale * stats.Syx);
  midpoint.eta3 = 0.5 * (from.eta3 + base.eta3 + scale * stats.Syy);
  midpoint.nu = 0.5 * (from.nu + base.nu + scale * stats.n);
  // A natural -> moment -> natural round trip: round-off ~1e-13 relative.
  expect_natural_near(Mniw::blend(current, prior, stats, scale, 0.5).natural(), midpoint, 1e-10);
}

TEST(MatrixNormalInverseWishart, WeakPriorHasTheRequestedMeanNoiseCovariance) {
  const Mniw prior = Mniw::weak_prior(4, 10.0, 0.1);
  EXPECT_EQ(prior.nu, 7.0);
  EXPECT_LE(max_abs_diff(prior.mean_Q(), 0.1 * MatrixXd::Identity(4, 4)), 1e-15);
  EXPECT_LE(max_abs_diff(prior.V, 10.0 * MatrixXd::Identity(5, 5)), 0.0);
  EXPECT_EQ(prior.M.cwiseAbs().maxCoeff(), 0.0);
}

// ---------------------------------------------------------------------------------------
// KL divergence (DESIGN.md §3, the objective's global term).

TEST(MatrixNormalInverseWishart, KlOfADistributionFromItselfIsZero) {
  std::mt19937_64 rng(18);
  for (int dim : {1, 2, 4}) {
    const Mniw q = random_mniw(dim, rng);
    // Every term cancels exactly except traces of V0^-1 V and Psi^-1 Psi0 (round-off ~1e-15).
    EXPECT_NEAR(q.kl_divergence(q), 0.0, 1e-12) << "D = " << dim;
  }
  const Mniw driven = random_mniw(2, rng, 5.5, 3);
  EXPECT_NEAR(driven.kl_divergence(driven), 0.0, 1e-12) << "D = 2, U = 3";
}

TEST(MatrixNormalInverseWishart, KlMatchesMonteCarlo) {
  std::mt19937_64 rng(19);
  const int dim = 2;
  const Mniw q = random_mniw(dim, rng, 6.0);
  Mniw p = random_mniw(dim, rng, 3.5);
  p.V *= 4.0;
  MniwSampler sampler(q);
  MonteCarlo log_ratio;
  MatrixXd At, Q;
  for (int s = 0; s < 20000; ++s) {
    sampler.draw(rng, At, Q);
    log_ratio.add(mniw_log_density(q, At, Q) - mniw_log_density(p, At, Q));
  }
  expect_within_standard_errors(log_ratio, MatrixXd::Constant(1, 1, q.kl_divergence(p)),
                                "KL(q || p)");
}

TEST(MatrixNormalInverseWishart, KlWithInputsMatchesMonteCarlo) {
  std::mt19937_64 rng(31);
  const int dim = 2, inputs = 2;  // P = 5 columns: the D P and log|V| terms see U
  const Mniw q = random_mniw(dim, rng, 6.0, inputs);
  Mniw p = random_mniw(dim, rng, 3.5, inputs);
  p.V *= 4.0;
  MniwSampler sampler(q);
  MonteCarlo log_ratio;
  MatrixXd At, Q;
  for (int s = 0; s < 20000; ++s) {
    sampler.draw(rng, At, Q);
    log_ratio.add(mniw_log_density(q, At, Q) - mniw_log_density(p, At, Q));
  }
  expect_within_standard_errors(log_ratio, MatrixXd::Constant(1, 1, q.kl_divergence(p)),
                                "KL(q || p), U = 2");
}

TEST(MatrixNormalInverseWishart, KlIsNonNegativeOnRandomPairs) {
  std::mt19937_64 rng(20);
  std::uniform_real_distribution<double> extra(0.2, 20.0);
  for (int pair = 0; pair < 40; ++pair) {
    const int dim = 1 + pair % 4;
    const Mniw q = random_mniw(dim, rng, extra(rng));
    const Mniw p = random_mniw(dim, rng, extra(rng));
    EXPECT_GE(q.kl_divergence(p), 0.0) << "pair " << pair;
  }
}

// ---------------------------------------------------------------------------------------
// Transition statistics (DESIGN.md §3).

TEST(TransitionStatistics, EqualBruteForceSumsForCorrelatedMoments) {
  std::mt19937_64 rng(21);
  const GaussianMoments q = random_moments(3, 7, rng);
  TransitionStatistics stats = TransitionStatistics::zero(3);
  stats.add_trial(q);
  const TransitionStatistics expected = brute_force_statistics(q);
  // Same sums in a different order: round-off ~1e-15 relative.
  EXPECT_LE(relative_diff(stats.Sxx, expected.Sxx), 1e-13);
  EXPECT_LE(relative_diff(stats.Syx, expected.Syx), 1e-13);
  EXPECT_LE(relative_diff(stats.Syy, expected.Syy), 1e-13);
  EXPECT_EQ(stats.n, 6.0);
}

TEST(TransitionStatistics, AccumulateTrialsAndWeightedShards) {
  std::mt19937_64 rng(22);
  const GaussianMoments a = random_moments(2, 5, rng);
  const GaussianMoments b = random_moments(2, 1, rng);
  const GaussianMoments c = random_moments(2, 4, rng);
  TransitionStatistics shard = TransitionStatistics::zero(2);
  shard.add_trial(a);
  shard.add_trial(b);  // a single bin has no transition
  TransitionStatistics total = TransitionStatistics::zero(2);
  total.add_trial(c);
  total.add(shard, 2.0);
  const TransitionStatistics ea = brute_force_statistics(a);
  const TransitionStatistics ec = brute_force_statistics(c);
  EXPECT_LE(relative_diff(total.Sxx, ec.Sxx + 2.0 * ea.Sxx), 1e-13);
  EXPECT_LE(relative_diff(total.Syx, ec.Syx + 2.0 * ea.Syx), 1e-13);
  EXPECT_LE(relative_diff(total.Syy, ec.Syy + 2.0 * ea.Syy), 1e-13);
  EXPECT_EQ(total.n, 3.0 + 2.0 * 4.0);
}

// ---------------------------------------------------------------------------------------
// Known inputs u_t: A~ = [A B b], z~_{t-1} = (z_{t-1}, u_t, 1) (DESIGN.md §1-3).

// U x T inputs whose column 0 is NaN: it drives no transition, so it must never be read.
MatrixXd random_inputs(int inputs, int bins, std::mt19937_64& rng) {
  MatrixXd u = random_normal(inputs, bins, rng);
  u.col(0).setConstant(std::numeric_limits<double>::quiet_NaN());
  return u;
}

TEST(PriorBlocks, WithInputsEqualTheExactLogDensityOfAnLdsHeldAtPointValues) {
  std::mt19937_64 rng(32);
  const int dim = 2, inputs = 2;
  const Lds lds = random_lds(dim, rng);
  const MatrixXd B = random_normal(dim, inputs, rng);
  const DynamicsExpectations point = DynamicsExpectations::point(lds.A, lds.b, lds.Q, B);
  EXPECT_EQ(point.inputs(), inputs);
  for (int bins : {1, 2, 5}) {
    const MatrixXd u = random_inputs(inputs, bins, rng);
    const PriorBlocks prior = prior_blocks(point, lds.mu0, lds.Sigma0, bins, &u);
    for (int draw = 0; draw < 5; ++draw) {
      const MatrixXd z = random_normal(dim, bins, rng, 2.0);
      const double exact =
          log_trajectory_density(augmented(lds.A, B, lds.b), lds.Q, lds.mu0, lds.Sigma0, z, &u);
      // As without inputs: O(10-100) well-conditioned terms, round-off ~1e-14 relative.
      EXPECT_NEAR(prior_quadratic_form(prior, z), exact, 1e-10 * std::abs(exact)) << "T = " << bins;
    }
  }
}

TEST(PriorBlocks, WithInputsUseTheBlocksOfTheExpectedAugmentedQuadratic) {
  // Under a non-degenerate MNIW, E log p(z | theta) summed transition by transition from
  // E[Q^-1], E[Q^-1 A~], E[A~'Q^-1 A~] (the D V term included) and E log|Q|, with no block
  // bookkeeping: prior_blocks must reproduce it for any z.
  std::mt19937_64 rng(33);
  const int dim = 2, inputs = 2, bins = 5;
  const Lds lds = random_lds(dim, rng);
  const Mniw q = random_mniw(dim, rng, 5.5, inputs);
  const DynamicsExpectations e = q.expectations();
  const MatrixXd u = random_inputs(inputs, bins, rng);
  const PriorBlocks prior = prior_blocks(e, lds.mu0, lds.Sigma0, bins, &u);
  for (int draw = 0; draw < 5; ++draw) {
    const MatrixXd z = random_normal(dim, bins, rng, 2.0);
    const double exact = expected_log_trajectory_density(e, lds.mu0, lds.Sigma0, z, &u);
    EXPECT_NEAR(prior_quadratic_form(prior, z), exact, 1e-10 * std::abs(exact));
  }
  // The V-terms matter: plugging in the means (E[A~'Q^-1 A~] = M'E[Q^-1]M) changes the constant.
  DynamicsExpectations plug_in = e;
  plug_in.E_At_Qinv_At = q.M.transpose() * e.E_Qinv * q.M;
  const PriorBlocks biased = prior_blocks(plug_in, lds.mu0, lds.Sigma0, bins, &u);
  // Dropping the PSD D V term lowers c by sum_t u~_t'(D V_u~u~)u~_t / 2 > 0.
  EXPECT_GT(prior.constant - biased.constant, 1e-3);
}

TEST(PriorBlocks, WithInputsEqualTheMonteCarloAverageOfTheLogDensityUnderAnMniw) {
  std::mt19937_64 rng(34);
  const int dim = 2, inputs = 2, bins = 5;
  const Lds lds = random_lds(dim, rng);
  const Mniw q = random_mniw(dim, rng, 5.5, inputs);
  const MatrixXd u = random_inputs(inputs, bins, rng);
  const PriorBlocks prior = prior_blocks(q.expectations(), lds.mu0, lds.Sigma0, bins, &u);
  std::vector<MatrixXd> paths;
  VectorXd expected(3);
  for (int k = 0; k < 3; ++k) {
    paths.push_back(random_normal(dim, bins, rng));
    expected(k) = prior_quadratic_form(prior, paths.back());
  }
  MniwSampler sampler(q);
  MonteCarlo log_density;
  MatrixXd At, Q;
  for (int s = 0; s < 20000; ++s) {
    sampler.draw(rng, At, Q);
    VectorXd values(3);
    for (int k = 0; k < 3; ++k)
      values(k) = log_trajectory_density(At, Q, lds.mu0, lds.Sigma0, paths[k], &u);
    log_density.add(values);
  }
  expect_within_standard_errors(log_density, expected, "E log p(z | theta), U = 2");
}

TEST(PriorBlocks, AnEmptyInputMatrixOrAnEmptyBChangesNoBit) {
  std::mt19937_64 rng(35);
  const int dim = 3, bins = 6;
  const Lds lds = random_lds(dim, rng);
  const DynamicsExpectations plain = DynamicsExpectations::point(lds.A, lds.b, lds.Q);
  const DynamicsExpectations empty_B =
      DynamicsExpectations::point(lds.A, lds.b, lds.Q, MatrixXd(dim, 0));
  EXPECT_EQ(empty_B.inputs(), 0);
  EXPECT_EQ(empty_B.E_Qinv_At, plain.E_Qinv_At);
  EXPECT_EQ(empty_B.E_At_Qinv_At, plain.E_At_Qinv_At);
  const MatrixXd none(0, bins);
  for (const DynamicsExpectations& e : {plain, random_mniw(dim, rng).expectations()}) {
    const PriorBlocks a = prior_blocks(e, lds.mu0, lds.Sigma0, bins);
    const PriorBlocks b = prior_blocks(e, lds.mu0, lds.Sigma0, bins, &none);
    EXPECT_EQ(a.precision.diagonal, b.precision.diagonal);
    EXPECT_EQ(a.precision.lower, b.precision.lower);
    EXPECT_EQ(a.shift, b.shift);
    EXPECT_EQ(a.constant, b.constant);
  }
}

TEST(TransitionStatistics, WithInputsEqualBruteForceSums) {
  std::mt19937_64 rng(36);
  const int dim = 3, inputs = 2;
  const GaussianMoments a = random_moments(dim, 7, rng);
  const GaussianMoments b = random_moments(dim, 4, rng);
  const MatrixXd ua = random_inputs(inputs, 7, rng);
  const MatrixXd ub = random_inputs(inputs, 4, rng);
  TransitionStatistics stats = TransitionStatistics::zero(dim, inputs);
  EXPECT_EQ(stats.inputs(), inputs);
  stats.add_trial(a, &ua);
  const TransitionStatistics expected = brute_force_statistics(a, &ua);
  // Same sums in a different order: round-off ~1e-15 relative.
  EXPECT_LE(relative_diff(stats.Sxx, expected.Sxx), 1e-13);
  EXPECT_LE(relative_diff(stats.Syx, expected.Syx), 1e-13);
  EXPECT_LE(relative_diff(stats.Syy, expected.Syy), 1e-13);
  EXPECT_EQ(stats.n, 6.0);
  EXPECT_EQ(stats.Sxx.block(0, dim, dim, inputs), stats.Sxx.block(dim, 0, inputs, dim).transpose());
  TransitionStatistics shard = TransitionStatistics::zero(dim, inputs);
  shard.add_trial(b, &ub);
  stats.add(shard, 2.0);
  const TransitionStatistics eb = brute_force_statistics(b, &ub);
  EXPECT_LE(relative_diff(stats.Sxx, expected.Sxx + 2.0 * eb.Sxx), 1e-13);
  EXPECT_LE(relative_diff(stats.Syx, expected.Syx + 2.0 * eb.Syx), 1e-13);
  EXPECT_EQ(stats.n, 6.0 + 2.0 * 3.0);
}

TEST(TransitionStatistics, WithoutInputsAcceptNoneOrAnEmptyMatrix) {
  std::mt19937_64 rng(37);
  const GaussianMoments q = random_moments(2, 5, rng);
  TransitionStatistics a = TransitionStatistics::zero(2);
  TransitionStatistics b = TransitionStatistics::zero(2, 0);
  const MatrixXd none(0, 5);
  a.add_trial(q);
  b.add_trial(q, &none);
  EXPECT_EQ(a.inputs(), 0);
  EXPECT_EQ(a.Sxx, b.Sxx);
  EXPECT_EQ(a.Syx, b.Syx);
  EXPECT_EQ(a.Syy, b.Syy);
}

TEST(MatrixNormalInverseWishart, ConjugateUpdateWithInputsIsTheBayesianRegressionPosterior) {
  std::mt19937_64 rng(38);
  const int dim = 2, inputs = 2, bins = 40;
  const Lds lds = random_lds(dim, rng);
  const MatrixXd B = random_normal(dim, inputs, rng);
  const MatrixXd u = random_inputs(inputs, bins, rng);
  GaussianMoments q;
  q.mean = MatrixXd(dim, bins);
  q.mean.col(0) = random_normal(dim, 1, rng);
  for (int t = 1; t < bins; ++t)
    q.mean.col(t) = lds.A * q.mean.col(t - 1) + B * u.col(t) + lds.b + random_normal(dim, 1, rng);
  q.cov = MatrixXd::Zero(dim, dim * bins);
  q.lag_cov = MatrixXd::Zero(dim, dim * bins);
  TransitionStatistics stats = TransitionStatistics::zero(dim, inputs);
  stats.add_trial(q, &u);

  // Regression of Y = z_{1..T-1} on X = (z_{0..T-2}; u_{1..T-1}; 1).
  MatrixXd X(dim + inputs + 1, bins - 1);
  X << q.mean.leftCols(bins - 1), u.rightCols(bins - 1), MatrixXd::Ones(1, bins - 1);
  const MatrixXd Y = q.mean.rightCols(bins - 1);
  const Mniw prior = random_mniw(dim, rng, 2.5, inputs);
  const MatrixXd V0_inv = prior.V.inverse();
  const MatrixXd Vn = (V0_inv + X * X.transpose()).inverse();
  const MatrixXd Mn = (prior.M * V0_inv + Y * X.transpose()) * Vn;
  const MatrixXd Psi_n = prior.Psi + Y * Y.transpose() + prior.M * V0_inv * prior.M.transpose() -
                         Mn * Vn.inverse() * Mn.transpose();

  const Mniw posterior = Mniw::blend(prior, prior, stats, 1.0, 1.0);
  // As without inputs: entries O(1-100), condition numbers < 1e4, round-off ~1e-12 relative.
  EXPECT_LE(relative_diff(posterior.V, Vn), 1e-10);
  EXPECT_LE(relative_diff(posterior.M, Mn), 1e-10);
  EXPECT_LE(relative_diff(posterior.Psi, Psi_n), 1e-10);
  EXPECT_DOUBLE_EQ(posterior.nu, prior.nu + bins - 1);
  EXPECT_EQ(posterior.inputs(), inputs);
  // Half a step from the posterior toward the same target stays put (natural parameters).
  const Mniw again = Mniw::blend(posterior, prior, stats, 1.0, 0.5);
  EXPECT_LE(relative_diff(again.M, posterior.M), 1e-10);
}

TEST(MatrixNormalInverseWishart, ConjugateUpdateFromALongDrivenTrajectoryRecoversABAndb) {
  std::mt19937_64 rng(39);
  const int dim = 2, inputs = 2, bins = 20000;
  MatrixXd A(dim, dim);
  A << 0.8, -0.3, 0.2, 0.7;  // eigenvalues 0.75 +- 0.24i: stable
  MatrixXd B(dim, inputs);
  B << 1.0, -0.5, 0.3, 0.8;
  const VectorXd b = VectorXd::LinSpaced(dim, 0.5, -0.2);
  const MatrixXd Q = random_spd(dim, rng, 0.2, 0.3);
  const MatrixXd u = random_inputs(inputs, bins, rng);
  const MatrixXd noise_chol = Q.llt().matrixL();
  GaussianMoments q;  // exact latent paths: zero (lag) covariances
  q.mean = MatrixXd::Zero(dim, bins);
  for (int t = 1; t < bins; ++t)
    q.mean.col(t) =
        A * q.mean.col(t - 1) + B * u.col(t) + b + noise_chol * random_normal(dim, 1, rng);
  q.cov = MatrixXd::Zero(dim, dim * bins);
  q.lag_cov = MatrixXd::Zero(dim, dim * bins);
  TransitionStatistics stats = TransitionStatistics::zero(dim, inputs);
  stats.add_trial(q, &u);
  const Mniw prior = Mniw::weak_prior(dim, 10.0, 0.1, inputs);
  EXPECT_EQ(prior.M.cols(), dim + inputs + 1);
  const Mniw posterior = Mniw::blend(prior, prior, stats, 1.0, 1.0);

  // Given Q the posterior of A~ is MN(M, Q, V): entry (i, j) has sd sqrt(Q_ii V_jj), with Q at
  // its posterior mean. By Bernstein-von Mises the truth lies within 5 sd of M (two-sided
  // probability 6e-7 per entry, 10 entries, fixed seed; the largest error here is 3.1 sd).
  // The sd ~ sqrt(Q_ii / (T Var x_j)) is 2e-3 to 6e-3 here; requiring it below 0.02 keeps the
  // band tight, not vacuous.
  const MatrixXd mean_Q = posterior.mean_Q();
  const MatrixXd truth = augmented(A, B, b);
  for (int i = 0; i < dim; ++i)
    for (int j = 0; j < truth.cols(); ++j) {
      const double sd = std::sqrt(mean_Q(i, i) * posterior.V(j, j));
      EXPECT_LT(sd, 0.02) << "(" << i << ", " << j << ")";
      EXPECT_LE(std::abs(posterior.M(i, j) - truth(i, j)), 5.0 * sd)
          << "(" << i << ", " << j << ")";
    }
  EXPECT_EQ(posterior.mean_A(), posterior.M.leftCols(dim));
  EXPECT_EQ(posterior.mean_B(), posterior.M.middleCols(dim, inputs));
  EXPECT_EQ(posterior.mean_b(), posterior.M.col(dim + inputs));
  // The sample covariance of n = T - 1 residuals has entry sd <= sqrt(2/n) max_i Q_ii ~ 0.01
  // max_i Q_ii: 5 sd.
  EXPECT_LE(max_abs_diff(mean_Q, Q), 5.0 * std::sqrt(2.0 / (bins - 1)) * Q.diagonal().maxCoeff());
}

TEST(MatrixNormalInverseWishart, WeakPriorWithInputsHasOneColumnPerRegressor) {
  const Mniw prior = Mniw::weak_prior(3, 10.0, 0.1, 2);
  EXPECT_EQ(prior.inputs(), 2);
  EXPECT_EQ(prior.M.rows(), 3);
  EXPECT_EQ(prior.M.cols(), 6);
  EXPECT_LE(max_abs_diff(prior.V, 10.0 * MatrixXd::Identity(6, 6)), 0.0);
  EXPECT_EQ(prior.mean_B().rows(), 3);
  EXPECT_EQ(prior.mean_B().cols(), 2);
  const DynamicsExpectations e = prior.expectations();
  EXPECT_EQ(e.inputs(), 2);
  EXPECT_EQ(e.E_At_Qinv_At.rows(), 6);
}

TEST(MatrixNormalInverseWishart, NaturalParametersWithInputsRoundTrip) {
  std::mt19937_64 rng(40);
  const Mniw q = random_mniw(3, rng, 5.5, 2);
  const Mniw back = Mniw::from_natural(q.natural());
  EXPECT_LE(relative_diff(back.M, q.M), 1e-12);
  EXPECT_LE(relative_diff(back.V, q.V), 1e-12);
  EXPECT_LE(relative_diff(back.Psi, q.Psi), 1e-12);
}

TEST(Inputs, ShapeMismatchesAreRefused) {
  std::mt19937_64 rng(41);
  const int dim = 2, inputs = 2, bins = 4;
  const Lds lds = random_lds(dim, rng);
  const GaussianMoments q = random_moments(dim, bins, rng);
  const MatrixXd u = random_normal(inputs, bins, rng);
  const MatrixXd too_short = random_normal(inputs, bins - 1, rng);
  const MatrixXd too_many = random_normal(inputs + 1, bins, rng);

  TransitionStatistics driven = TransitionStatistics::zero(dim, inputs);
  EXPECT_THROW(driven.add_trial(q), InputError);
  EXPECT_THROW(driven.add_trial(q, &too_short), InputError);
  EXPECT_THROW(driven.add_trial(q, &too_many), InputError);
  TransitionStatistics plain = TransitionStatistics::zero(dim);
  EXPECT_THROW(plain.add_trial(q, &u), InputError);

  const DynamicsExpectations point =
      DynamicsExpectations::point(lds.A, lds.b, lds.Q, random_normal(dim, inputs, rng));
  EXPECT_THROW(prior_blocks(point, lds.mu0, lds.Sigma0, bins), InputError);
  EXPECT_THROW(prior_blocks(point, lds.mu0, lds.Sigma0, bins, &too_short), InputError);
  EXPECT_THROW(
      prior_blocks(DynamicsExpectations::point(lds.A, lds.b, lds.Q), lds.mu0, lds.Sigma0, bins, &u),
      InputError);
  EXPECT_THROW(DynamicsExpectations::point(lds.A, lds.b, lds.Q, random_normal(dim + 1, 1, rng)),
               InputError);

  driven.add_trial(q, &u);
  const Mniw prior = Mniw::weak_prior(dim);
  EXPECT_THROW(Mniw::blend(prior, prior, driven, 1.0, 1.0), InputError);
  const Mniw driven_prior = Mniw::weak_prior(dim, 10.0, 0.1, inputs);
  EXPECT_THROW(Mniw::blend(prior, driven_prior, driven, 1.0, 0.5), InputError);
  EXPECT_NO_THROW(Mniw::blend(driven_prior, driven_prior, driven, 1.0, 0.5));
}

// ---------------------------------------------------------------------------------------
// Errors.

TEST(MatrixNormalInverseWishart, FromNaturalRejectsANonPositiveDefinitePsi) {
  std::mt19937_64 rng(23);
  Mniw::Natural eta = random_mniw(2, rng).natural();
  eta.eta3 = eta.eta2 * eta.eta1.inverse() * eta.eta2.transpose();  // Psi = 0
  eta.eta3(0, 0) -= 1.0;
  try {
    Mniw::from_natural(eta);
    FAIL() << "expected NumericalError";
  } catch (const NumericalError& error) {
    EXPECT_NE(std::string(error.what()).find("Psi"), std::string::npos) << error.what();
  }
}

TEST(MatrixNormalInverseWishart, FromNaturalRejectsTooFewDegreesOfFreedom) {
  std::mt19937_64 rng(24);
  Mniw::Natural eta = random_mniw(3, rng).natural();
  eta.nu = 2.0;  // must exceed D - 1 = 2
  EXPECT_THROW(Mniw::from_natural(eta), NumericalError);
}

TEST(MatrixNormalInverseWishart, MeanQRequiresMoreThanDPlusOneDegreesOfFreedom) {
  std::mt19937_64 rng(25);
  Mniw q = random_mniw(2, rng);
  q.nu = 3.0;
  EXPECT_THROW(q.mean_Q(), NumericalError);
}

// Draws against the closed-form moments of the MNIW (Q ~ IW(Psi, nu), A~ | Q ~ MN(M, Q, V)):
// E[Q] = Psi / (nu - D - 1), E[Q^-1] = nu Psi^-1, E[A~] = M,
// E[(A~ - M)_ia (A~ - M)_jb] = E[Q]_ij V_ab, and E[(A~ - M)' Q^-1 (A~ - M)] = D V, which holds
// only when A~ is drawn with the same Q (not with E[Q] or an independent Q). Each sample mean
// is compared with its exact value within 5 of its own Monte Carlo standard errors (estimated
// from the draws): a correct sampler fails one such check with probability below 1e-6; the
// fixed seed makes it deterministic.
void expect_closed_form_moments(int dim, double nu, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Mniw q = random_mniw(dim, rng);
  q.nu = nu;
  const int draws = 40000;
  const MatrixXd mean_Q = q.mean_Q();
  const MatrixXd mean_Q_inverse = q.nu * q.Psi.inverse();
  const Eigen::Index p = q.M.cols();
  // Per draw: the entries of Q, of Q^-1, of A~, the products (A~ - M)_ia (A~ - M)_jb, and of
  // (A~ - M)' Q^-1 (A~ - M).
  std::vector<std::pair<std::string, double>> exact;
  for (int i = 0; i < dim; ++i)
    for (int j = 0; j < dim; ++j) {
      exact.emplace_back("Q", mean_Q(i, j));
      exact.emplace_back("Q^-1", mean_Q_inverse(i, j));
    }
  for (Eigen::Index a = 0; a < p; ++a)
    for (int i = 0; i < dim; ++i) exact.emplace_back("A~", q.M(i, a));
  for (Eigen::Index a = 0; a < p; ++a)
    for (Eigen::Index b = 0; b < p; ++b) {
      for (int i = 0; i < dim; ++i)
        for (int j = 0; j < dim; ++j) exact.emplace_back("A~ A~'", mean_Q(i, j) * q.V(a, b));
      exact.emplace_back("A~' Q^-1 A~", dim * q.V(a, b));
    }
  const auto count = static_cast<Eigen::Index>(exact.size());
  VectorXd sum = VectorXd::Zero(count), sum_squares = VectorXd::Zero(count);
  for (int l = 0; l < draws; ++l) {
    RandomStream stream({seed, RandomPurpose::kCalibration}, {9, static_cast<std::uint64_t>(l), 0});
    const Mniw::Draw x = q.draw(stream);
    ASSERT_EQ(x.At.rows(), dim);
    ASSERT_EQ(x.At.cols(), p);
    const MatrixXd offset = x.At - q.M;
    const MatrixXd Q_inverse = x.Q.inverse();
    const MatrixXd whitened = offset.transpose() * Q_inverse * offset;
    VectorXd values(count);
    Eigen::Index k = 0;
    for (int i = 0; i < dim; ++i)
      for (int j = 0; j < dim; ++j) {
        values(k++) = x.Q(i, j);
        values(k++) = Q_inverse(i, j);
      }
    for (Eigen::Index a = 0; a < p; ++a)
      for (int i = 0; i < dim; ++i) values(k++) = x.At(i, a);
    for (Eigen::Index a = 0; a < p; ++a)
      for (Eigen::Index b = 0; b < p; ++b) {
        for (int i = 0; i < dim; ++i)
          for (int j = 0; j < dim; ++j) values(k++) = offset(i, a) * offset(j, b);
        values(k++) = whitened(a, b);
      }
    sum += values;
    sum_squares += values.cwiseProduct(values);
  }
  for (Eigen::Index k = 0; k < count; ++k) {
    const double mean = sum(k) / draws;
    const double standard_error = std::sqrt((sum_squares(k) / draws - mean * mean) / draws);
    EXPECT_NEAR(mean, exact[static_cast<std::size_t>(k)].second, 5 * standard_error)
        << exact[static_cast<std::size_t>(k)].first << " moment " << k << ", D = " << dim;
  }
}

// Real nu > D + 3, so that the variances of Q, and the standard errors, exist.
TEST(MatrixNormalInverseWishart, DrawsHaveTheClosedFormMoments) {
  expect_closed_form_moments(2, 9.5, 31);
  expect_closed_form_moments(3, 12.3, 33);
}

TEST(MatrixNormalInverseWishart, DrawIsAFunctionOfTheStream) {
  std::mt19937_64 rng(32);
  const Mniw q = random_mniw(3, rng);
  RandomStream first({1, RandomPurpose::kCalibration}, {1, 2, 3});
  RandomStream again({1, RandomPurpose::kCalibration}, {1, 2, 3});
  const Mniw::Draw a = q.draw(first), b = q.draw(again);
  EXPECT_TRUE((a.At.array() == b.At.array()).all());
  EXPECT_TRUE((a.Q.array() == b.Q.array()).all());
  EXPECT_TRUE(a.Q.llt().info() == Eigen::Success);
}

TEST(PriorBlocks, RejectANonPositiveDefiniteInitialCovariance) {
  std::mt19937_64 rng(26);
  const Lds lds = random_lds(2, rng);
  const DynamicsExpectations point = DynamicsExpectations::point(lds.A, lds.b, lds.Q);
  EXPECT_THROW(prior_blocks(point, lds.mu0, -lds.Sigma0, 3), NumericalError);
}

}  // namespace
}  // namespace spikevi
