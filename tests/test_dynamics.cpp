// Tests of the dynamics block (DESIGN.md §2 "The prior part", §3 MNIW).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "spikevi/dynamics.hpp"
#include "spikevi/error.hpp"
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
// Oracles, written independently of src/dynamics.cpp.

MatrixXd augmented(const MatrixXd& A, const VectorXd& b) {
  MatrixXd At(A.rows(), A.cols() + 1);
  At << A, b;
  return At;
}

double log_det(const MatrixXd& spd) {
  return 2.0 * Eigen::LLT<MatrixXd>(spd).matrixL().toDenseMatrix().diagonal().array().log().sum();
}

double gaussian_log_density(const VectorXd& x, const VectorXd& mean, const MatrixXd& cov) {
  const VectorXd r = x - mean;
  return -0.5 *
         (r.dot(cov.ldlt().solve(r)) + static_cast<double>(x.size()) * kLog2Pi + log_det(cov));
}

// log p(z | A~, Q) = log N(z_0; mu0, Sigma0) + sum_{t>=1} log N(z_t; A z_{t-1} + b, Q).
double log_trajectory_density(const MatrixXd& At, const MatrixXd& Q, const VectorXd& mu0,
                              const MatrixXd& Sigma0, const MatrixXd& z) {
  const int dim = static_cast<int>(z.rows());
  double total = gaussian_log_density(z.col(0), mu0, Sigma0);
  for (int t = 1; t < z.cols(); ++t) {
    const VectorXd predicted = At.leftCols(dim) * z.col(t - 1) + At.col(dim);
    total += gaussian_log_density(z.col(t), predicted, Q);
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

Mniw random_mniw(int dim, std::mt19937_64& rng, double nu_above_minimum = 5.5) {
  Mniw q;
  q.M = 0.5 * random_normal(dim, dim + 1, rng);
  q.V = random_spd(dim + 1, rng, 0.1, 0.5);
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
    At = th_.M + q_chol * random_normal(dim, dim + 1, rng) * v_chol_.transpose();
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

TransitionStatistics brute_force_statistics(const GaussianMoments& q) {
  const int dim = q.dim();
  TransitionStatistics s = TransitionStatistics::zero(dim);
  for (int t = 1; t < q.bins(); ++t) {
    VectorXd x(dim + 1);
    x << q.mean.col(t - 1), 1.0;
    MatrixXd cov_x = MatrixXd::Zero(dim + 1, dim + 1);
    cov_x.topLeftCorner(dim, dim) = q.cov_block(t - 1);
    MatrixXd cross_cov = MatrixXd::Zero(dim, dim + 1);
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
  for (int dim : {1, 3}) {
    const Mniw q = random_mniw(dim, rng);
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

TEST(PriorBlocks, RejectANonPositiveDefiniteInitialCovariance) {
  std::mt19937_64 rng(26);
  const Lds lds = random_lds(2, rng);
  const DynamicsExpectations point = DynamicsExpectations::point(lds.A, lds.b, lds.Q);
  EXPECT_THROW(prior_blocks(point, lds.mu0, -lds.Sigma0, 3), NumericalError);
}

}  // namespace
}  // namespace spikevi
