// Readout kernels as dense GEMMs (DESIGN.md §9), the readout's expected gradient and Hessian
// (DESIGN.md §3 via Stein's lemma / Price's theorem) and the variational-online-Newton step.
#include "spikevi/model/readout.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

using Eigen::Index;
using ConstMap = Eigen::Map<const Eigen::MatrixXd>;
using MutableMap = Eigen::Map<Eigen::MatrixXd>;

// Bins per block in ReadoutStatistics::add_trial: bounds its (block D) x N workspace.
constexpr Index kBinBlock = 256;

// A D x TD buffer of D x D blocks seen as the D^2 x T matrix [vec B_1 .. vec B_T] (no copy:
// column-major storage makes the two layouts identical).
ConstMap vec_blocks(const Eigen::MatrixXd& blocks, Index dim) {
  return {blocks.data(), dim * dim, blocks.cols() / dim};
}
MutableMap vec_blocks(Eigen::MatrixXd& blocks, Index dim) {
  return {blocks.data(), dim * dim, blocks.cols() / dim};
}

// A per-thread scratch matrix that only ever grows, so the sweep does not allocate per call.
MutableMap workspace(Index rows, Index cols) {
  thread_local Eigen::VectorXd buffer;
  if (buffer.size() < rows * cols) buffer.resize(rows * cols);
  return {buffer.data(), rows, cols};
}

// The (D+1) x N matrix of rows w_n = (c_n, d_n) minus the prior mean.
Eigen::MatrixXd deviation_from(const Readout& readout, const Eigen::VectorXd& mean) {
  const Index dim = readout.dim();
  Eigen::MatrixXd dev(dim + 1, readout.rows());
  dev.topRows(dim) = readout.C.transpose();
  dev.row(dim) = readout.d.transpose();
  dev.colwise() -= mean;
  return dev;
}

void copy_row(const Readout& from, Index n, Readout& to) {
  const Index p = from.dim() + 1;
  to.C.row(n) = from.C.row(n);
  to.d(n) = from.d(n);
  to.precision.middleCols(n * p, p) = from.precision.middleCols(n * p, p);
}

}  // namespace

// ---- Readout, ReadoutPrior ----

Eigen::VectorXd row_log_prior(const ReadoutPrior& prior, const Readout& readout) {
  const Eigen::LLT<Eigen::MatrixXd> llt(prior.precision);
  if (llt.info() != Eigen::Success) {
    throw NumericalError("readout prior: precision is not positive definite");
  }
  const Eigen::MatrixXd dev = deviation_from(readout, prior.mean);
  const auto p = static_cast<double>(dev.rows());
  const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  const Eigen::MatrixXd whitened = llt.matrixU() * dev;  // ||U dev||^2 = dev' P0 dev
  return (0.5 * (log_det - p * std::log(2.0 * std::numbers::pi)) -
          0.5 * whitened.colwise().squaredNorm().array())
      .matrix()
      .transpose();
}

Readout Readout::select_rows(const std::vector<int>& keep) const {
  const Index p = dim() + 1;
  const auto kept = static_cast<Index>(keep.size());
  assert(precision.rows() == p && precision.cols() == rows() * p);
  Readout out{Eigen::MatrixXd(kept, dim()), Eigen::VectorXd(kept), Eigen::MatrixXd(p, kept * p)};
  for (Index i = 0; i < kept; ++i) {
    const int row = keep[static_cast<std::size_t>(i)];
    if (row < 0 || row >= rows()) {
      throw InputError("readout: row " + std::to_string(row) + " to keep is outside [0, " +
                       std::to_string(rows()) + ")");
    }
    out.C.row(i) = C.row(row);
    out.d(i) = d(row);
    out.precision.middleCols(i * p, p) = precision.middleCols(row * p, p);
  }
  return out;
}

ReadoutPrior ReadoutPrior::weak(int dim, double pc, double pd) {
  if (dim < 1 || !(pc > 0.0) || !(pd > 0.0) || !std::isfinite(pc) || !std::isfinite(pd)) {
    throw ConfigError("readout prior: needs dim >= 1 and finite precisions > 0 (dim " +
                      std::to_string(dim) + ", pc " + std::to_string(pc) + ", pd " +
                      std::to_string(pd) + ")");
  }
  Eigen::VectorXd diagonal = Eigen::VectorXd::Constant(dim + 1, pc);
  diagonal(dim) = pd;
  return {Eigen::VectorXd::Zero(dim + 1), diagonal.asDiagonal()};
}

double ReadoutPrior::log_density(const Readout& readout) const {
  return row_log_prior(*this, readout).sum();
}

// ---- ReadoutKernels (DESIGN.md §9) ----

ReadoutKernels::ReadoutKernels(const Readout& readout)
    : readout_(&readout), khatri_rao_(readout.rows(), readout.dim() * readout.dim()) {
  assert(readout.d.size() == readout.C.rows());
  const Eigen::ArrayXXd c = readout.C.array();
  // Column i + jD of K(C) holds c_ni c_nj, so block j of D columns is C scaled by column j.
  for (Index j = 0; j < readout.dim(); ++j) {
    khatri_rao_.middleCols(j * readout.dim(), readout.dim()) = (c.colwise() * c.col(j)).matrix();
  }
}

void ReadoutKernels::eta_moments(const GaussianMoments& q, Eigen::ArrayXXd& mu,
                                 Eigen::ArrayXXd& s2) const {
  const Index dim = readout_->dim();
  assert(q.dim() == dim && q.cov.cols() == q.bins() * dim);
  mu.resize(readout_->rows(), q.bins());
  s2.resize(readout_->rows(), q.bins());
  mu.matrix().noalias() = readout_->C * q.mean;
  mu.colwise() += readout_->d.array();
  s2.matrix().noalias() = khatri_rao_ * vec_blocks(q.cov, dim);
}

void ReadoutKernels::add_site_targets(const Eigen::ArrayXXd& g, const Eigen::ArrayXXd& G,
                                      const Eigen::MatrixXd& mean, Eigen::MatrixXd& site_precision,
                                      Eigen::MatrixXd& site_shift) const {
  const Index dim = readout_->dim();
  const Index bins = mean.cols();
  assert(g.rows() == readout_->rows() && g.cols() == bins && G.rows() == g.rows() &&
         G.cols() == bins && mean.rows() == dim && site_precision.rows() == dim &&
         site_precision.cols() == bins * dim && site_shift.rows() == dim &&
         site_shift.cols() == bins);
  // Increment_t = -2 dell_t/dS_t = -2 sum_n G_nt c_n c_n' for all t at once (DESIGN.md §1-2).
  MutableMap increment = workspace(dim * dim, bins);
  increment.noalias() = -2.0 * khatri_rao_.transpose() * G.matrix();
  vec_blocks(site_precision, dim) += increment;
  // l_t += dell_t/dm_t - 2 (dell_t/dS_t) m_t = C' g_t + Increment_t m_t.
  site_shift.noalias() += readout_->C.transpose() * g.matrix();
  for (Index t = 0; t < bins; ++t) {
    site_shift.col(t).noalias() += ConstMap(increment.col(t).data(), dim, dim) * mean.col(t);
  }
}

// ---- ReadoutStatistics (DESIGN.md §3) ----

namespace {

// Element-wise quantities of one trial (N x T): g, G from the expected log-likelihood and
// E f'', E f''', E f'''' from the model; missing entries are zero in all of them.
struct BinTerms {
  Eigen::ArrayXXd g, G, d2, d3, d4;
};

// Bins [t0, t0 + nb) of one trial, with mu~ = (m, 1), S~ = [[S, 0], [0, 0]] and
// u_nt = S_t c_n (so S~_t w_n = (u_nt, 0)). The statistics gain, per row n,
//   gradient_n += sum_t g_nt mu~_t + 2 G_nt (u_nt, 0)
//   hessian_n  -= sum_t d2 (S~ + mu~ mu~') + d3 (S~w mu~' + mu~ w'S~) + d4 S~w w'S~.
struct BinBlock {
  const Eigen::MatrixXd& C;
  const GaussianMoments& q;
  const BinTerms& terms;
  Index t0, nb;

  auto cols(const Eigen::ArrayXXd& a) const { return a.middleCols(t0, nb); }
  auto mean() const { return q.mean.middleCols(t0, nb); }
};

// The gradient terms that need no u, by GEMMs over bins.
void add_mean_gradient(const BinBlock& b, ReadoutStatistics& stats) {
  const Index dim = b.C.cols();
  stats.gradient.topRows(dim).noalias() += b.mean() * b.cols(b.terms.g).matrix().transpose();
  stats.gradient.row(dim) += b.cols(b.terms.g).rowwise().sum().matrix().transpose();
}

// Everything else. GEMMs over bins give sum_t d2 vec(S~ + mu~ mu~') for all rows and the
// (nb D) x N matrix u = [S_t c_n] (column n = vec of the D x nb matrix U_n); the d3 and d4 terms
// are then D x nb x D products per row: U_n diag(d3_n) M' and U_n diag(d4_n) U_n'.
void add_covariance_terms(const BinBlock& b, ReadoutStatistics& stats) {
  const Index dim = b.C.cols(), p = dim + 1;
  const auto mean = b.mean();
  const auto G = b.cols(b.terms.G), d2 = b.cols(b.terms.d2);
  const auto d3 = b.cols(b.terms.d3), d4 = b.cols(b.terms.d4);
  Eigen::MatrixXd second = vec_blocks(b.q.cov, dim).middleCols(b.t0, b.nb);
  for (Index t = 0; t < b.nb; ++t) {
    MutableMap(second.col(t).data(), dim, dim).noalias() += mean.col(t) * mean.col(t).transpose();
  }
  const Eigen::MatrixXd d2_second = second * d2.matrix().transpose();  // D^2 x N
  const Eigen::MatrixXd d2_mean = mean * d2.matrix().transpose();      // D x N
  const Eigen::MatrixXd u =
      b.q.cov.middleCols(b.t0 * dim, b.nb * dim).transpose() * b.C.transpose();
  Eigen::MatrixXd scaled(dim, b.nb), block(p, p);
  for (Index n = 0; n < b.C.rows(); ++n) {
    const ConstMap u_n(u.col(n).data(), dim, b.nb);
    stats.gradient.col(n).head(dim).noalias() += 2.0 * u_n * G.row(n).matrix().transpose();
    scaled = (u_n.array().rowwise() * d3.row(n)).matrix();
    block.col(dim).head(dim) = d2_mean.col(n) + scaled.rowwise().sum();
    block.topLeftCorner(dim, dim) = ConstMap(d2_second.col(n).data(), dim, dim);
    block.topLeftCorner(dim, dim).noalias() += scaled * mean.transpose();
    block.topLeftCorner(dim, dim).noalias() += mean * scaled.transpose();
    scaled = (u_n.array().rowwise() * d4.row(n)).matrix();
    block.topLeftCorner(dim, dim).noalias() += scaled * u_n.transpose();
    block.row(dim).head(dim) = block.col(dim).head(dim).transpose();
    block(dim, dim) = d2.row(n).sum();
    stats.hessian.middleCols(n * p, p) -= 0.5 * (block + block.transpose());
  }
}

}  // namespace

ReadoutStatistics ReadoutStatistics::zero(int rows, int dim) {
  return {Eigen::MatrixXd::Zero(dim + 1, rows),
          Eigen::MatrixXd::Zero(dim + 1, static_cast<Index>(rows) * (dim + 1)),
          Eigen::VectorXd::Zero(rows)};
}

void ReadoutStatistics::add_trial(const Readout& readout, const ObservationModel& model,
                                  const Eigen::ArrayXXd& x, const GaussianMoments& q) {
  const Index dim = readout.dim();
  if (x.rows() != readout.rows() || x.cols() != q.bins() || q.dim() != dim) {
    throw InputError("readout statistics: observations are " + std::to_string(x.rows()) + " x " +
                     std::to_string(x.cols()) + " for a readout of " +
                     std::to_string(readout.rows()) + " rows and a trial of " +
                     std::to_string(q.bins()) + " bins");
  }
  Eigen::ArrayXXd mu, s2;
  ReadoutKernels(readout).eta_moments(q, mu, s2);
  add_trial(readout, model, x, q, mu, s2);
}

void ReadoutStatistics::add_trial(const Readout& readout, const ObservationModel& model,
                                  const Eigen::ArrayXXd& x, const GaussianMoments& q,
                                  const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2) {
  assert(gradient.rows() == readout.dim() + 1 && gradient.cols() == readout.rows());
  assert(hessian.rows() == readout.dim() + 1 &&
         hessian.cols() == readout.rows() * (readout.dim() + 1));
  assert(mu.rows() == readout.rows() && mu.cols() == q.bins());
  Eigen::ArrayXXd ell;
  BinTerms terms;
  model.expected_terms(x, mu, s2, ell, terms.g, terms.G, terms.d2, terms.d3, terms.d4);
  log_likelihood += ell.rowwise().sum().matrix();
  for (Index t0 = 0; t0 < q.bins(); t0 += kBinBlock) {
    const BinBlock block{readout.C, q, terms, t0, std::min(kBinBlock, q.bins() - t0)};
    add_mean_gradient(block, *this);
    add_covariance_terms(block, *this);
  }
}

Eigen::VectorXd row_log_likelihood(const ReadoutKernels& kernels, const ObservationModel& model,
                                   const Eigen::ArrayXXd& x, const GaussianMoments& q,
                                   const Eigen::ArrayXXd* offset) {
  Eigen::ArrayXXd mu, s2, ell, g, G;
  kernels.eta_moments(q, mu, s2);
  if (offset) mu += *offset;
  model.expected_log_likelihood(x, mu, s2, ell, g, G);
  return ell.rowwise().sum().matrix();
}

// ---- Natural-gradient step (DESIGN.md §3) ----

namespace {

// Per row: the Newton target P0 + scale H_n and the natural-gradient direction
// scale g_n - P0 (w_n - m0).
struct NewtonTargets {
  Eigen::MatrixXd precision;  // (D+1) x N(D+1)
  Eigen::MatrixXd gradient;   // (D+1) x N
};

NewtonTargets newton_targets(const Readout& current, const ReadoutPrior& prior,
                             const ReadoutStatistics& stats, double scale) {
  const Index p = current.dim() + 1;
  NewtonTargets targets{scale * stats.hessian, scale * stats.gradient};
  for (Index n = 0; n < current.rows(); ++n)
    targets.precision.middleCols(n * p, p) += prior.precision;
  targets.gradient.noalias() -= prior.precision * deviation_from(current, prior.mean);
  return targets;
}

// Writes row n of the step of length rho into `out`:
//   P(rho) = (1-rho) P_n + rho P_target,  w(rho) = w_n + rho P(rho)^-1 grad_n.
// Returns false (leaving `out` untouched) if P(rho) is not positive definite or w is not finite.
bool write_candidate(const Readout& current, const NewtonTargets& targets, Index n, double rho,
                     Readout& out) {
  const Index dim = current.dim();
  const Index p = dim + 1;
  const Eigen::MatrixXd precision = (1.0 - rho) * current.precision.middleCols(n * p, p) +
                                    rho * targets.precision.middleCols(n * p, p);
  const Eigen::LLT<Eigen::MatrixXd> llt(precision);
  if (llt.info() != Eigen::Success || !precision.allFinite()) return false;
  const Eigen::VectorXd step = rho * llt.solve(targets.gradient.col(n));
  if (!step.allFinite()) return false;
  out.C.row(n) = current.C.row(n) + step.head(dim).transpose();
  out.d(n) = current.d(n) + step(dim);
  out.precision.middleCols(n * p, p) = precision;
  return true;
}

void check_step_inputs(const Readout& current, const ReadoutPrior& prior,
                       const ReadoutStatistics& stats, double scale, double rho, int max_halvings) {
  if (!(rho > 0.0 && rho <= 1.0) || !(scale >= 0.0) || !std::isfinite(scale) || max_halvings < 0) {
    throw ConfigError(
        "readout step: needs 0 < rho <= 1, finite scale >= 0, max_halvings >= 0 (rho " +
        std::to_string(rho) + ", scale " + std::to_string(scale) + ", max_halvings " +
        std::to_string(max_halvings) + ")");
  }
  const Index n = current.rows();
  const Index p = current.dim() + 1;
  const bool shapes_agree = current.d.size() == n && current.precision.rows() == p &&
                            current.precision.cols() == n * p && prior.mean.size() == p &&
                            prior.precision.rows() == p && prior.precision.cols() == p &&
                            stats.gradient.rows() == p && stats.gradient.cols() == n &&
                            stats.hessian.rows() == p && stats.hessian.cols() == n * p;
  if (!shapes_agree) {
    throw ConfigError("readout step: readout, prior and statistics disagree in shape");
  }
}

// Per-row objective(w) + log p0(w), checked for size.
Eigen::VectorXd penalised_objective(const ReadoutObjective& objective, const ReadoutPrior& prior,
                                    const Readout& readout, const std::vector<int>& rows) {
  const Eigen::VectorXd value = objective(readout, rows);
  if (value.size() != readout.rows()) {
    throw ConfigError("readout step: objective returned " + std::to_string(value.size()) +
                      " values for " + std::to_string(readout.rows()) + " rows");
  }
  return value + row_log_prior(prior, readout);
}

// Backtracking per row: round k tries rho 2^-k for every row not yet accepted, all rows in one
// objective call; a row is accepted when its term is finite and has not decreased.
Readout backtracking_step(const Readout& current, const ReadoutPrior& prior,
                          const NewtonTargets& targets, double rho,
                          const ReadoutObjective& objective, int max_halvings) {
  std::vector<int> pending(static_cast<std::size_t>(current.rows()));
  for (int n = 0; n < current.rows(); ++n) pending[static_cast<std::size_t>(n)] = n;
  const Eigen::VectorXd before = penalised_objective(objective, prior, current, pending);
  Readout accepted = current;
  for (int k = 0; k <= max_halvings && !pending.empty(); ++k) {
    Readout trial = accepted;  // pending rows still hold their current values
    std::vector<char> valid(pending.size());
    for (std::size_t i = 0; i < pending.size(); ++i) {
      valid[i] = write_candidate(current, targets, pending[i], std::ldexp(rho, -k), trial);
    }
    const Eigen::VectorXd after = penalised_objective(objective, prior, trial, pending);
    std::vector<int> still_pending;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      const int n = pending[i];
      if (valid[i] && std::isfinite(after(n)) && !(after(n) < before(n))) {
        copy_row(trial, n, accepted);
      } else {
        still_pending.push_back(n);
      }
    }
    pending.swap(still_pending);
  }
  return accepted;
}

}  // namespace

Readout readout_natural_gradient_step(const Readout& current, const ReadoutPrior& prior,
                                      const ReadoutStatistics& stats, double scale, double rho,
                                      const ReadoutObjective& objective, int max_halvings) {
  check_step_inputs(current, prior, stats, scale, rho, max_halvings);
  const NewtonTargets targets = newton_targets(current, prior, stats, scale);
  if (objective) return backtracking_step(current, prior, targets, rho, objective, max_halvings);
  return readout_natural_gradient_step(current, prior, stats, scale,
                                       Eigen::VectorXd::Constant(current.rows(), rho));
}

Readout readout_natural_gradient_step(const Readout& current, const ReadoutPrior& prior,
                                      const ReadoutStatistics& stats, double scale,
                                      const Eigen::VectorXd& row_rho) {
  assert(row_rho.size() == current.rows());
  check_step_inputs(current, prior, stats, scale, 1.0, 0);
  if (!(row_rho.array() > 0.0).all() || !(row_rho.array() <= 1.0).all())
    throw ConfigError("readout step: every row's rho must lie in (0, 1]");
  const NewtonTargets targets = newton_targets(current, prior, stats, scale);
  Readout next = current;
  for (Index n = 0; n < current.rows(); ++n) {
    if (!write_candidate(current, targets, n, row_rho(n), next)) {
      throw NumericalError("readout step: row " + std::to_string(n) +
                           " has a precision that is not positive definite or a non-finite step");
    }
  }
  return next;
}

}  // namespace spikevi
