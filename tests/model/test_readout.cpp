// Readout kernels (DESIGN.md §9), statistics and natural-gradient step (DESIGN.md §3).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <utility>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/model/readout.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using Eigen::ArrayXXd;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using spikevi::testing::max_abs_diff;
using spikevi::testing::random_normal;
using spikevi::testing::random_spd;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- Fixtures: random trials, readouts and data ----

GaussianMoments random_moments(int dim, int bins, std::mt19937_64& rng) {
  GaussianMoments q;
  q.mean = random_normal(dim, bins, rng, 0.7);
  q.cov.resize(dim, bins * dim);
  for (int t = 0; t < bins; ++t) q.cov.middleCols(t * dim, dim) = random_spd(dim, rng, 0.05, 0.4);
  q.lag_cov = MatrixXd::Zero(dim, bins * dim);
  return q;
}

Readout random_readout(int rows, int dim, std::mt19937_64& rng, double offset = 0.3) {
  Readout r{random_normal(rows, dim, rng, 0.4), random_normal(rows, 1, rng, 0.3).col(0),
            MatrixXd(dim + 1, rows * (dim + 1))};
  r.d.array() += offset;
  for (int n = 0; n < rows; ++n)
    r.precision.middleCols(n * (dim + 1), dim + 1) = random_spd(dim + 1, rng);
  return r;
}

// Poisson counts drawn at the rates exp(mu) of the readout's mean eta.
ArrayXXd poisson_counts(const Readout& r, const GaussianMoments& q, std::mt19937_64& rng) {
  const MatrixXd rate = ((r.C * q.mean).colwise() + r.d).array().exp().matrix();
  ArrayXXd x(rate.rows(), rate.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) x(i) = std::poisson_distribution<int>(rate(i))(rng);
  return x;
}

// Gaussian observations around the readout's mean with every fourth entry missing.
ArrayXXd gaussian_values(const Readout& r, const GaussianMoments& q, std::mt19937_64& rng) {
  ArrayXXd y = ((r.C * q.mean).colwise() + r.d).array() +
               0.5 * random_normal(r.rows(), q.bins(), rng).array();
  for (Eigen::Index i = 0; i < y.size(); i += 4) y(i) = kNaN;
  return y;
}

struct Trial {
  ArrayXXd x;
  GaussianMoments q;
};

// Per-row sum over trials of E_q log p(x_n | w_n, z), through the kernels and the model.
VectorXd expected_log_likelihood(const Readout& r, const ObservationModel& model,
                                 const std::vector<Trial>& trials) {
  VectorXd total = VectorXd::Zero(r.rows());
  const ReadoutKernels kernels(r);
  for (const Trial& trial : trials) {
    ArrayXXd mu, s2, ell, g, G;
    kernels.eta_moments(trial.q, mu, s2);
    model.expected_log_likelihood(trial.x, mu, s2, ell, g, G);
    total += ell.rowwise().sum().matrix();
  }
  return total;
}

ReadoutStatistics statistics(const Readout& r, const ObservationModel& model,
                             const std::vector<Trial>& trials) {
  ReadoutStatistics stats = ReadoutStatistics::zero(r.rows(), r.dim());
  for (const Trial& trial : trials) stats.add_trial(r, model, trial.x, trial.q);
  return stats;
}

// Readout with component i of every row w_n = (c_n, d_n) shifted by h.
Readout shifted(Readout r, int i, double h) {
  if (i < r.dim()) {
    r.C.col(i).array() += h;
  } else {
    r.d.array() += h;
  }
  return r;
}

// Block n of a (D+1) x N(D+1) matrix.
MatrixXd block(const MatrixXd& blocks, int n) {
  const auto p = blocks.rows();
  return blocks.middleCols(n * p, p);
}

// mu~_t = (m_t, 1), S~_t = [[S_t, 0], [0, 0]].
VectorXd augmented_mean(const GaussianMoments& q, int t) {
  VectorXd m(q.dim() + 1);
  m << q.mean.col(t), 1.0;
  return m;
}
MatrixXd augmented_cov(const GaussianMoments& q, int t) {
  MatrixXd s = MatrixXd::Zero(q.dim() + 1, q.dim() + 1);
  s.topLeftCorner(q.dim(), q.dim()) = q.cov_block(t);
  return s;
}
VectorXd row_params(const Readout& r, int n) {
  VectorXd w(r.dim() + 1);
  w << r.C.row(n).transpose(), r.d(n);
  return w;
}

// ---- ReadoutKernels ----

TEST(ReadoutKernels, EtaMomentsEqualPerNeuronFormulas) {
  std::mt19937_64 rng(1);
  const Readout r = random_readout(7, 3, rng);
  const GaussianMoments q = random_moments(3, 5, rng);
  ArrayXXd mu, s2;
  ReadoutKernels(r).eta_moments(q, mu, s2);
  for (int t = 0; t < 5; ++t) {
    for (int n = 0; n < 7; ++n) {
      const VectorXd c = r.C.row(n).transpose();
      EXPECT_NEAR(mu(n, t), c.dot(q.mean.col(t)) + r.d(n), 1e-14);
      EXPECT_NEAR(s2(n, t), c.dot(q.cov_block(t) * c), 1e-14);
    }
  }
}

// Sum over all entries of ell at the moments q (the per-trial E_q[ell]).
double total_ell(const ReadoutKernels& kernels, const ObservationModel& model, const ArrayXXd& x,
                 const GaussianMoments& q) {
  ArrayXXd mu, s2, ell, g, G;
  kernels.eta_moments(q, mu, s2);
  model.expected_log_likelihood(x, mu, s2, ell, g, G);
  return ell.sum();
}

struct Sites {
  MatrixXd precision, shift;  // D x TD, D x T
};

// What add_site_targets adds to random (non-zero) sites, so that "+=" is checked too.
Sites site_increments(const ReadoutKernels& kernels, const ObservationModel& model,
                      const ArrayXXd& x, const GaussianMoments& q, std::mt19937_64& rng) {
  ArrayXXd mu, s2, ell, g, G;
  kernels.eta_moments(q, mu, s2);
  model.expected_log_likelihood(x, mu, s2, ell, g, G);
  const Sites before{random_normal(q.dim(), q.bins() * q.dim(), rng),
                     random_normal(q.dim(), q.bins(), rng)};
  Sites after = before;
  kernels.add_site_targets(g, G, q.mean, after.precision, after.shift);
  return {after.precision - before.precision, after.shift - before.shift};
}

// DESIGN.md §1-2: L_t = -2 dE[ell]/dS_t (plain, unsymmetrised derivative: each S_t(i, j)
// perturbed on its own), l_t = dE[ell]/dm_t - 2 (dE[ell]/dS_t) m_t. Central differences with
// h = 1e-5 of a sum of about 35 terms of size <= 30 carry about 1e-15 * 1e3 / 1e-5 = 1e-7 of
// round-off at most; 1e-6 relative is therefore the bound, and a wrong factor (say the
// symmetric-matrix rule 2X - diag X) is off by O(1).
TEST(ReadoutKernels, SiteTargetsEqualFiniteDifferencesOfTheExpectedLogLikelihood) {
  std::mt19937_64 rng(2);
  const int rows = 7, dim = 3, bins = 5;
  const Readout r = random_readout(rows, dim, rng, 1.0);
  GaussianMoments q = random_moments(dim, bins, rng);
  const ArrayXXd x = poisson_counts(r, q, rng);
  const ReadoutKernels kernels(r);
  const PoissonObservation model;
  const Sites sites = site_increments(kernels, model, x, q, rng);
  const double h = 1e-5;
  auto central = [&](double& entry) {
    const double saved = entry;
    entry = saved + h;
    const double up = total_ell(kernels, model, x, q);
    entry = saved - h;
    const double down = total_ell(kernels, model, x, q);
    entry = saved;
    return (up - down) / (2.0 * h);
  };
  for (int t = 0; t < bins; ++t) {
    VectorXd d_mean(dim);
    MatrixXd d_cov(dim, dim);
    for (int i = 0; i < dim; ++i) {
      d_mean(i) = central(q.mean(i, t));
      for (int j = 0; j < dim; ++j) d_cov(i, j) = central(q.cov(i, t * dim + j));
    }
    const MatrixXd precision = -2.0 * d_cov;
    const VectorXd shift = d_mean - 2.0 * d_cov * q.mean.col(t);
    const double scale = std::max(1.0, precision.cwiseAbs().maxCoeff());
    EXPECT_LT(max_abs_diff(block(sites.precision, t).topRows(dim), precision), 1e-6 * scale);
    EXPECT_LT(max_abs_diff(sites.shift.col(t), shift), 1e-6 * std::max(1.0, shift.norm()));
  }
}

// The same targets written as the per-bin, per-neuron loop the GEMMs replace (DESIGN.md §9).
TEST(ReadoutKernels, SiteTargetsEqualAPerNeuronLoop) {
  std::mt19937_64 rng(3);
  const int rows = 7, dim = 3, bins = 5;
  const Readout r = random_readout(rows, dim, rng, 1.0);
  const GaussianMoments q = random_moments(dim, bins, rng);
  const ArrayXXd x = poisson_counts(r, q, rng);
  const ReadoutKernels kernels(r);
  const Sites sites = site_increments(kernels, PoissonObservation{}, x, q, rng);
  for (int t = 0; t < bins; ++t) {
    MatrixXd precision = MatrixXd::Zero(dim, dim);
    VectorXd shift = VectorXd::Zero(dim);
    for (int n = 0; n < rows; ++n) {
      const VectorXd c = r.C.row(n).transpose();
      const double rate = std::exp(c.dot(q.mean.col(t)) + r.d(n) + 0.5 * c.dot(q.cov_block(t) * c));
      precision += rate * c * c.transpose();  // -2 G = lambda
      shift += (x(n, t) - rate) * c + rate * c * c.dot(q.mean.col(t));
    }
    EXPECT_LT(max_abs_diff(sites.precision.middleCols(t * dim, dim), precision), 1e-12);
    EXPECT_LT(max_abs_diff(sites.shift.col(t), shift), 1e-12);
  }
}

// DESIGN.md §2 exactness: for Gaussian channels L_t = sum_obs w w'/R and
// l_t = sum_obs w (y - e)/R, whatever the moments (m, S).
TEST(ReadoutKernels, GaussianSiteTargetsAreTheLinearGaussianSitesWhateverTheMoments) {
  std::mt19937_64 rng(4);
  const int rows = 6, dim = 3, bins = 4;
  const Readout r = random_readout(rows, dim, rng);
  const VectorXd variances = (random_normal(rows, 1, rng).col(0).array().square() + 0.2).matrix();
  const GaussianObservation model(variances);
  const GaussianMoments first = random_moments(dim, bins, rng);
  const ArrayXXd y = gaussian_values(r, first, rng);
  const ReadoutKernels kernels(r);
  for (const GaussianMoments& q : {first, random_moments(dim, bins, rng)}) {
    const Sites sites = site_increments(kernels, model, y, q, rng);
    for (int t = 0; t < bins; ++t) {
      MatrixXd precision = MatrixXd::Zero(dim, dim);
      VectorXd shift = VectorXd::Zero(dim);
      for (int n = 0; n < rows; ++n) {
        if (std::isnan(y(n, t))) continue;
        precision += r.C.row(n).transpose() * r.C.row(n) / variances(n);
        shift += r.C.row(n).transpose() * (y(n, t) - r.d(n)) / variances(n);
      }
      EXPECT_LT(max_abs_diff(sites.precision.middleCols(t * dim, dim), precision), 1e-12);
      EXPECT_LT(max_abs_diff(sites.shift.col(t), shift), 1e-12);
    }
  }
}

// ---- ReadoutStatistics ----

// Independent closed forms of sum_t E_q log p(x_nt | w_n, z_t) per row (base measure excluded),
// with mu = c.m_t + d, s2 = c'S_t c.
VectorXd poisson_closed_form(const Readout& r, const ArrayXXd& x, const GaussianMoments& q) {
  VectorXd total = VectorXd::Zero(r.rows());
  for (int n = 0; n < r.rows(); ++n) {
    const VectorXd c = r.C.row(n).transpose();
    for (int t = 0; t < q.bins(); ++t) {
      const double mu = c.dot(q.mean.col(t)) + r.d(n);
      total(n) += x(n, t) * mu - std::exp(mu + 0.5 * c.dot(q.cov_block(t) * c));
    }
  }
  return total;
}

VectorXd gaussian_closed_form(const Readout& r, const VectorXd& variances, const ArrayXXd& y,
                              const GaussianMoments& q) {
  VectorXd total = VectorXd::Zero(r.rows());
  for (int n = 0; n < r.rows(); ++n) {
    const VectorXd c = r.C.row(n).transpose();
    for (int t = 0; t < q.bins(); ++t) {
      if (std::isnan(y(n, t))) continue;
      const double resid = y(n, t) - c.dot(q.mean.col(t)) - r.d(n);
      total(n) += -0.5 * std::log(2.0 * std::numbers::pi * variances(n)) -
                  (resid * resid + c.dot(q.cov_block(t) * c)) / (2.0 * variances(n));
    }
  }
  return total;
}

// Central differences in w, all rows at once (the per-row sums are separable): column n of the
// result is the finite-difference gradient of value(.)(n).
template <typename Value>
MatrixXd gradient_by_differences(const Readout& r, Value value, double h) {
  MatrixXd grad(r.dim() + 1, r.rows());
  for (int i = 0; i <= r.dim(); ++i) {
    grad.row(i) = ((value(shifted(r, i, h)) - value(shifted(r, i, -h))) / (2.0 * h)).transpose();
  }
  return grad;
}

// -d grad / dw by central differences of the statistics' own gradient.
MatrixXd hessian_by_differences(const Readout& r, const ObservationModel& model,
                                const std::vector<Trial>& trials, double h) {
  const int p = r.dim() + 1;
  MatrixXd hess(p, r.rows() * p);
  for (int i = 0; i < p; ++i) {
    const MatrixXd diff = statistics(shifted(r, i, h), model, trials).gradient -
                          statistics(shifted(r, i, -h), model, trials).gradient;
    for (int n = 0; n < r.rows(); ++n) hess.col(n * p + i) = -diff.col(n) / (2.0 * h);
  }
  return hess;
}

// Relative to the largest entry: h = 1e-5 central differences of sums of ~600 terms of size
// <= 30 carry round-off ~1e-15 * 2e4 / 1e-5 = 2e-6 absolute against entries of ~1e3 and
// truncation h^2 |f'''| / 6 of the same order; 1e-6 relative to the largest entry holds that
// with margin while a wrong coefficient (a missing factor 2 on G, a dropped d3 term) is O(1).
double relative_error(const MatrixXd& a, const MatrixXd& b) {
  return max_abs_diff(a, b) / std::max(1.0, b.cwiseAbs().maxCoeff());
}

// Two trials, the second longer than one bin block (256) of add_trial.
std::vector<Trial> poisson_trials(const Readout& r, std::mt19937_64& rng) {
  std::vector<Trial> trials;
  for (const int bins : {40, 300}) {
    GaussianMoments q = random_moments(r.dim(), bins, rng);
    ArrayXXd x = poisson_counts(r, q, rng);
    trials.push_back({std::move(x), std::move(q)});
  }
  return trials;
}

TEST(ReadoutStatistics, PoissonGradientAndHessianMatchFiniteDifferences) {
  std::mt19937_64 rng(5);
  const Readout r = random_readout(5, 3, rng);
  const std::vector<Trial> trials = poisson_trials(r, rng);
  const PoissonObservation model;
  const ReadoutStatistics stats = statistics(r, model, trials);
  auto value = [&](const Readout& w) {
    VectorXd total = VectorXd::Zero(w.rows());
    for (const Trial& trial : trials) total += poisson_closed_form(w, trial.x, trial.q);
    return total;
  };
  EXPECT_LT(relative_error(stats.gradient, gradient_by_differences(r, value, 1e-5)), 1e-6);
  EXPECT_LT(relative_error(stats.hessian, hessian_by_differences(r, model, trials, 1e-5)), 1e-6);
}

// DESIGN.md §3: grad = sum_t x mu~ - lambda v and -Hess = sum_t lambda (S~ + v v'), with
// v = mu~ + S~ w and lambda = exp(w'mu~ + w'S~w/2). Exact algebra, so only round-off
// (1e-12 relative) separates the two.
TEST(ReadoutStatistics, PoissonStatisticsEqualTheDesignFormula) {
  std::mt19937_64 rng(6);
  const Readout r = random_readout(4, 3, rng);
  const std::vector<Trial> trials = poisson_trials(r, rng);
  const ReadoutStatistics stats = statistics(r, PoissonObservation{}, trials);
  const int p = r.dim() + 1;
  MatrixXd grad = MatrixXd::Zero(p, r.rows());
  MatrixXd hess = MatrixXd::Zero(p, r.rows() * p);
  for (const Trial& trial : trials) {
    for (int t = 0; t < trial.q.bins(); ++t) {
      const VectorXd mean = augmented_mean(trial.q, t);
      const MatrixXd cov = augmented_cov(trial.q, t);
      for (int n = 0; n < r.rows(); ++n) {
        const VectorXd w = row_params(r, n);
        const double rate = std::exp(w.dot(mean) + 0.5 * w.dot(cov * w));
        const VectorXd v = mean + cov * w;
        grad.col(n) += trial.x(n, t) * mean - rate * v;
        hess.middleCols(n * p, p) += rate * (cov + v * v.transpose());
      }
    }
  }
  EXPECT_LT(relative_error(stats.gradient, grad), 1e-12);
  EXPECT_LT(relative_error(stats.hessian, hess), 1e-12);
}

std::vector<Trial> gaussian_trials(const Readout& r, std::mt19937_64& rng) {
  std::vector<Trial> trials;
  for (const int bins : {30, 280}) {
    GaussianMoments q = random_moments(r.dim(), bins, rng);
    ArrayXXd y = gaussian_values(r, q, rng);
    trials.push_back({std::move(y), std::move(q)});
  }
  return trials;
}

// sum over trials and observed bins of (S~ + mu~ mu~') / R_n: the exact, w-free -Hess.
MatrixXd gaussian_hessian(const Readout& r, const VectorXd& variances,
                          const std::vector<Trial>& trials) {
  const int p = r.dim() + 1;
  MatrixXd hess = MatrixXd::Zero(p, r.rows() * p);
  for (const Trial& trial : trials) {
    for (int t = 0; t < trial.q.bins(); ++t) {
      const VectorXd mean = augmented_mean(trial.q, t);
      const MatrixXd second = augmented_cov(trial.q, t) + mean * mean.transpose();
      for (int n = 0; n < r.rows(); ++n) {
        if (!std::isnan(trial.x(n, t))) hess.middleCols(n * p, p) += second / variances(n);
      }
    }
  }
  return hess;
}

TEST(ReadoutStatistics, GaussianGradientMatchesFiniteDifferencesAndHessianIsExact) {
  std::mt19937_64 rng(7);
  const Readout r = random_readout(5, 3, rng);
  const VectorXd variances = (random_normal(5, 1, rng).col(0).array().square() + 0.3).matrix();
  const GaussianObservation model(variances);
  const std::vector<Trial> trials = gaussian_trials(r, rng);
  const ReadoutStatistics stats = statistics(r, model, trials);
  auto value = [&](const Readout& w) {
    VectorXd total = VectorXd::Zero(w.rows());
    for (const Trial& trial : trials) total += gaussian_closed_form(w, variances, trial.x, trial.q);
    return total;
  };
  const MatrixXd exact = gaussian_hessian(r, variances, trials);
  EXPECT_LT(relative_error(stats.gradient, gradient_by_differences(r, value, 1e-5)), 1e-6);
  EXPECT_LT(relative_error(stats.hessian, hessian_by_differences(r, model, trials, 1e-5)), 1e-6);
  EXPECT_LT(relative_error(stats.hessian, exact), 1e-12);
  const Readout elsewhere = random_readout(5, 3, rng, -2.0);
  EXPECT_LT(relative_error(statistics(elsewhere, model, trials).hessian, exact), 1e-12);
}

TEST(ReadoutStatistics, AddTrialRejectsObservationsOfTheWrongShape) {
  std::mt19937_64 rng(8);
  const Readout r = random_readout(4, 2, rng);
  const GaussianMoments q = random_moments(2, 6, rng);
  ReadoutStatistics stats = ReadoutStatistics::zero(4, 2);
  EXPECT_THROW(stats.add_trial(r, PoissonObservation{}, ArrayXXd::Zero(4, 5), q), InputError);
}

// ---- Natural-gradient step ----

ReadoutPrior informative_prior(int dim, std::mt19937_64& rng) {
  return {random_normal(dim + 1, 1, rng).col(0), random_spd(dim + 1, rng, 0.1, 0.5)};
}

// A Gaussian readout's objective is quadratic in w with the exact Hessian above, so one step with
// rho = 1 is exact Newton and lands on the ridge-regression posterior mean
//   (P0 + sum E[z~ z~']/R)^-1 (P0 m0 + sum E[z~] y / R)
// from any start; the solves are of condition ~1e3, so 1e-9 covers round-off.
TEST(ReadoutNaturalGradientStep, GaussianStepWithUnitRhoIsTheRidgeRegressionPosterior) {
  std::mt19937_64 rng(9);
  const int rows = 4, dim = 3;
  const Readout start = random_readout(rows, dim, rng, 5.0);
  const VectorXd variances = (random_normal(rows, 1, rng).col(0).array().square() + 0.3).matrix();
  const GaussianObservation model(variances);
  const std::vector<Trial> trials = gaussian_trials(random_readout(rows, dim, rng), rng);
  const ReadoutPrior prior = informative_prior(dim, rng);
  const Readout next =
      readout_natural_gradient_step(start, prior, statistics(start, model, trials), 1.0, 1.0);
  const MatrixXd data_precision = gaussian_hessian(start, variances, trials);
  for (int n = 0; n < rows; ++n) {
    VectorXd rhs = prior.precision * prior.mean;
    for (const Trial& trial : trials) {
      for (int t = 0; t < trial.q.bins(); ++t) {
        if (!std::isnan(trial.x(n, t)))
          rhs += augmented_mean(trial.q, t) * trial.x(n, t) / variances(n);
      }
    }
    const MatrixXd precision = prior.precision + block(data_precision, n);
    const VectorXd ridge = precision.llt().solve(rhs);
    EXPECT_LT((row_params(next, n) - ridge).cwiseAbs().maxCoeff(), 1e-9) << "row " << n;
    EXPECT_LT(max_abs_diff(block(next.precision, n), precision), 1e-9) << "row " << n;
  }
}

// scale = K/|B| multiplies the statistics: one trial at scale 2 is that trial counted twice.
// A partial step blends the precision and scales the direction by rho (DESIGN.md §3).
TEST(ReadoutNaturalGradientStep, ScaleCountsTheDataAndRhoBlendsThePrecision) {
  std::mt19937_64 rng(10);
  const Readout start = random_readout(3, 2, rng);
  const std::vector<Trial> one = poisson_trials(start, rng);
  const std::vector<Trial> twice = {one[0], one[1], one[0], one[1]};
  const ReadoutPrior prior = ReadoutPrior::weak(2);
  const PoissonObservation model;
  const double rho = 0.3;
  const Readout scaled =
      readout_natural_gradient_step(start, prior, statistics(start, model, one), 2.0, rho);
  const ReadoutStatistics stats = statistics(start, model, twice);
  const Readout repeated = readout_natural_gradient_step(start, prior, stats, 1.0, rho);
  EXPECT_LT(max_abs_diff(scaled.C, repeated.C), 1e-12);
  EXPECT_LT(max_abs_diff(scaled.precision, repeated.precision), 1e-9);
  for (int n = 0; n < start.rows(); ++n) {
    const MatrixXd precision =
        (1.0 - rho) * block(start.precision, n) + rho * (prior.precision + block(stats.hessian, n));
    const VectorXd direction =
        stats.gradient.col(n) - prior.precision * (row_params(start, n) - prior.mean);
    const VectorXd expected = row_params(start, n) + rho * precision.llt().solve(direction);
    EXPECT_LT(max_abs_diff(block(repeated.precision, n), precision), 1e-12);
    EXPECT_LT((row_params(repeated, n) - expected).cwiseAbs().maxCoeff(), 1e-12);
  }
}

// Three trials of 60 bins of Poisson counts from a random readout of `rows` x `dim`.
std::vector<Trial> three_poisson_trials(int rows, int dim, std::mt19937_64& rng) {
  const Readout truth = random_readout(rows, dim, rng);
  std::vector<Trial> trials;
  for (int k = 0; k < 3; ++k) {
    GaussianMoments q = random_moments(dim, 60, rng);
    ArrayXXd x = poisson_counts(truth, q, rng);
    trials.push_back({std::move(x), std::move(q)});
  }
  return trials;
}

// Rates e^-4 against counts of mean ~e^0.3 make the first Newton step overshoot by far, so
// backtracking must act; every accepted row's objective + log p0 must not drop, and repeated
// steps must reach the stationary point (gradient of objective + log p0 = 0).
TEST(ReadoutNaturalGradientStep, PoissonBacktrackingNeverDecreasesAndConvergesToTheMode) {
  std::mt19937_64 rng(11);
  const int rows = 6, dim = 2;
  const std::vector<Trial> trials = three_poisson_trials(rows, dim, rng);
  const ReadoutPrior prior = ReadoutPrior::weak(dim);
  const PoissonObservation model;
  int calls = 0;
  const ReadoutObjective objective = [&](const Readout& w, const std::vector<int>&) {
    ++calls;
    return expected_log_likelihood(w, model, trials);
  };
  auto penalised = [&](const Readout& w) {
    VectorXd value = expected_log_likelihood(w, model, trials);
    for (int n = 0; n < w.rows(); ++n) value(n) += prior.log_density(w.select_rows({n}));
    return value;
  };
  Readout w = random_readout(rows, dim, rng, -4.0);
  for (int iteration = 0; iteration < 25; ++iteration) {
    calls = 0;
    const Readout next =
        readout_natural_gradient_step(w, prior, statistics(w, model, trials), 1.0, 1.0, objective);
    if (iteration == 0) {
      EXPECT_GT(calls, 2) << "the first step should have backtracked";
    }
    EXPECT_TRUE(((penalised(next) - penalised(w)).array() >= 0.0).all())
        << "iteration " << iteration;
    w = next;
  }
  const ReadoutStatistics stats = statistics(w, model, trials);
  MatrixXd deviation(dim + 1, rows);
  deviation << w.C.transpose(), w.d.transpose();
  deviation.colwise() -= prior.mean;
  const MatrixXd stationarity = stats.gradient - prior.precision * deviation;
  // Newton converges quadratically: once near the mode the gradient is at round-off level
  // (sums of ~180 counts); 1e-8 leaves a wide margin yet is far below any unconverged step.
  EXPECT_LT(stationarity.cwiseAbs().maxCoeff(), 1e-8);
}

// After the first round the step asks the objective only for the rows not yet accepted (each
// round's rows a subset of the last's), and reads nothing else: an objective that leaves every
// other row NaN gives bit for bit the step of one that fills them all.
TEST(ReadoutNaturalGradientStep, BacktrackingAsksOnlyForTheRowsNotYetAccepted) {
  std::mt19937_64 rng(11);
  const int rows = 6, dim = 2;
  const std::vector<Trial> trials = three_poisson_trials(rows, dim, rng);
  const ReadoutPrior prior = ReadoutPrior::weak(dim);
  const PoissonObservation model;
  std::vector<std::vector<int>> asked;
  const ReadoutObjective only_wanted = [&](const Readout& w, const std::vector<int>& wanted) {
    asked.push_back(wanted);
    const VectorXd every = expected_log_likelihood(w, model, trials);
    VectorXd value = VectorXd::Constant(w.rows(), kNaN);
    for (int n : wanted) value(n) = every(n);
    return value;
  };
  const ReadoutObjective every_row = [&](const Readout& w, const std::vector<int>&) {
    return expected_log_likelihood(w, model, trials);
  };
  const Readout start = random_readout(rows, dim, rng, -4.0);  // far off: backtracks
  const ReadoutStatistics stats = statistics(start, model, trials);
  const Readout subset = readout_natural_gradient_step(start, prior, stats, 1.0, 1.0, only_wanted);
  const Readout full = readout_natural_gradient_step(start, prior, stats, 1.0, 1.0, every_row);
  EXPECT_TRUE(subset.C == full.C && subset.d == full.d && subset.precision == full.precision);
  ASSERT_GT(asked.size(), 3u) << "the step should have backtracked";
  EXPECT_EQ(asked[0].size(), static_cast<std::size_t>(rows));  // the objective before the step
  EXPECT_EQ(asked[1].size(), static_cast<std::size_t>(rows));  // round 0: every row pending
  EXPECT_LT(asked.back().size(), static_cast<std::size_t>(rows));
  for (std::size_t i = 2; i < asked.size(); ++i)
    EXPECT_TRUE(
        std::includes(asked[i - 1].begin(), asked[i - 1].end(), asked[i].begin(), asked[i].end()))
        << "round " << i - 1;
}

// Objective: NaN for a changed row n in `refuse`, a large reward for any other changed row.
ReadoutObjective refusing_objective(const Readout& current, std::vector<int> refuse, int& calls) {
  return [&current, refuse, &calls](const Readout& w, const std::vector<int>&) {
    ++calls;
    VectorXd value = VectorXd::Zero(w.rows());
    for (int n = 0; n < w.rows(); ++n) {
      const bool changed = row_params(w, n) != row_params(current, n);
      const bool refused = std::find(refuse.begin(), refuse.end(), n) != refuse.end();
      if (changed) value(n) = refused ? kNaN : 1e6;
    }
    return value;
  };
}

TEST(ReadoutNaturalGradientStep, RowsAreAcceptedIndependentlyAndKeptWhenEveryHalvingFails) {
  std::mt19937_64 rng(12);
  const Readout current = random_readout(5, 2, rng);
  const std::vector<Trial> trials = poisson_trials(current, rng);
  const ReadoutStatistics stats = statistics(current, PoissonObservation{}, trials);
  const ReadoutPrior prior = ReadoutPrior::weak(2);
  int calls = 0;
  const int max_halvings = 3;
  const Readout plain = readout_natural_gradient_step(current, prior, stats, 1.0, 0.5);
  const Readout next = readout_natural_gradient_step(
      current, prior, stats, 1.0, 0.5, refusing_objective(current, {1, 3}, calls), max_halvings);
  EXPECT_EQ(calls, 1 + (max_halvings + 1));  // the current value, then rho, rho/2, .., rho/8
  for (int n = 0; n < current.rows(); ++n) {
    const Readout& expected = (n == 1 || n == 3) ? current : plain;
    EXPECT_EQ(row_params(next, n), row_params(expected, n)) << "row " << n;
    EXPECT_EQ(block(next.precision, n), block(expected.precision, n)) << "row " << n;
  }
}

TEST(ReadoutNaturalGradientStep, StepWithoutObjectiveRefusesAnIndefinitePrecision) {
  std::mt19937_64 rng(13);
  const Readout current = random_readout(2, 2, rng);
  ReadoutStatistics stats = ReadoutStatistics::zero(2, 2);
  stats.hessian.middleCols(3, 3) = -100.0 * MatrixXd::Identity(3, 3);
  EXPECT_THROW(readout_natural_gradient_step(current, ReadoutPrior::weak(2), stats, 1.0, 1.0),
               NumericalError);
  EXPECT_THROW(readout_natural_gradient_step(current, ReadoutPrior::weak(2), stats, 1.0, 0.0),
               ConfigError);
}

// ---- Readout, ReadoutPrior ----

TEST(Readout, SelectRowsKeepsTheChosenRowsAndTheirPrecisionBlocks) {
  std::mt19937_64 rng(14);
  const Readout r = random_readout(5, 2, rng);
  const Readout kept = r.select_rows({4, 1});
  ASSERT_EQ(kept.rows(), 2);
  ASSERT_EQ(kept.precision.cols(), 2 * 3);
  for (const auto& [to, from] : {std::pair{0, 4}, std::pair{1, 1}}) {
    EXPECT_EQ(row_params(kept, to), row_params(r, from));
    EXPECT_EQ(block(kept.precision, to), block(r.precision, from));
  }
  EXPECT_THROW((void)r.select_rows({5}), InputError);
  EXPECT_THROW((void)r.select_rows({-1}), InputError);
}

TEST(ReadoutPrior, LogDensityIsTheSumOfGaussianLogDensitiesOfTheRows) {
  std::mt19937_64 rng(15);
  const Readout r = random_readout(4, 3, rng);
  const ReadoutPrior weak = ReadoutPrior::weak(3, 2.0, 0.5);
  EXPECT_EQ(weak.mean, VectorXd::Zero(4));
  EXPECT_EQ(weak.precision, Eigen::Vector4d(2.0, 2.0, 2.0, 0.5).asDiagonal().toDenseMatrix());
  for (const ReadoutPrior& prior : {weak, informative_prior(3, rng)}) {
    double expected = 0.0;
    for (int n = 0; n < 4; ++n) {
      const VectorXd dev = row_params(r, n) - prior.mean;
      expected += -0.5 * dev.dot(prior.precision * dev) +
                  0.5 * std::log(prior.precision.determinant()) -
                  2.0 * std::log(2.0 * std::numbers::pi);
    }
    EXPECT_NEAR(prior.log_density(r), expected, 1e-12 * std::abs(expected));
  }
  EXPECT_THROW((void)ReadoutPrior::weak(3, 0.0), ConfigError);
}

}  // namespace
}  // namespace spikevi
