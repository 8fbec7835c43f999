#include "spikevi/model/history.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::numbers::pi);

Eigen::MatrixXd selected_rows(const Eigen::ArrayXXd& counts, const std::vector<int>& rows) {
  Eigen::MatrixXd out(static_cast<Index>(rows.size()), counts.cols());
  for (std::size_t i = 0; i < rows.size(); ++i)
    out.row(static_cast<Index>(i)) = counts.row(rows[i]);
  return out;
}

}  // namespace

int HistorySettings::resolved_components() const {
  return components > 0 ? components : std::min(4, static_cast<int>(rows.size()));
}

HistoryBasis HistoryBasis::shaped(const HistorySettings& settings) {
  HistoryBasis basis;
  basis.lags = settings.lags;
  basis.rows = settings.rows;
  const auto H = static_cast<Index>(settings.rows.size());
  basis.mean = Eigen::VectorXd::Zero(H);
  basis.projection = Eigen::MatrixXd::Zero(settings.resolved_components(), H);
  return basis;
}

Eigen::MatrixXd HistoryBasis::features(const Eigen::ArrayXXd& counts) const {
  const Index bins = counts.cols(), P = components();
  Eigen::MatrixXd f = Eigen::MatrixXd::Zero(features(), bins);
  if (!active()) return f;
  for (int row : rows)
    if (row < 0 || row >= counts.rows())
      throw InputError("history features: held-in row " + std::to_string(row) +
                       " is outside the trial's " + std::to_string(counts.rows()) + " rows");
  const Eigen::MatrixXd projected =
      projection * (selected_rows(counts, rows).colwise() - mean);  // a_s, P x T
  for (int k = 1; k <= lags; ++k)
    for (Index t = k; t < bins; ++t) f.block((k - 1) * P, t, P, 1) = projected.col(t - k);
  return f;
}

CountMoments count_moments(const Eigen::ArrayXXd& counts, const std::vector<int>& rows) {
  const Eigen::MatrixXd x = selected_rows(counts, rows);
  return CountMoments{x.rowwise().sum(), x * x.transpose(), static_cast<double>(x.cols())};
}

HistoryBasis make_history_basis(const HistorySettings& settings, const CountMoments& moments) {
  const auto H = static_cast<int>(settings.rows.size());
  if (settings.components < 1 || settings.components > H)
    throw ConfigError("--history-components must be between 1 and the " + std::to_string(H) +
                      " held-in neurons (got " + std::to_string(settings.components) + ")");
  if (moments.bins < 2) throw InputError("history basis: fewer than two training bins");
  HistoryBasis basis;
  basis.lags = settings.lags;
  basis.rows = settings.rows;
  basis.mean = moments.sum / moments.bins;
  const Eigen::MatrixXd covariance =
      moments.second / moments.bins - basis.mean * basis.mean.transpose();
  Eigen::VectorXd sd = covariance.diagonal().cwiseMax(0.0).cwiseSqrt();
  for (Index i = 0; i < sd.size(); ++i)
    if (!(sd(i) > 1e-12)) sd(i) = 1.0;  // a silent row: its (zero) deviations stay zero
  const Eigen::MatrixXd correlation =
      sd.cwiseInverse().asDiagonal() * covariance * sd.cwiseInverse().asDiagonal();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(correlation);
  if (eigen.info() != Eigen::Success)
    throw NumericalError(
        "history basis: the eigen-decomposition of the held-in correlations failed");
  basis.projection.resize(settings.components, H);
  for (int p = 0; p < settings.components; ++p) {  // eigenvalues ascend: take from the end
    Eigen::VectorXd u = eigen.eigenvectors().col(H - 1 - p);
    Index largest = 0;
    u.cwiseAbs().maxCoeff(&largest);
    if (u(largest) < 0) u = -u;
    const double variance = std::max(eigen.eigenvalues()(H - 1 - p), 1e-12);
    basis.projection.row(p) = (u.array() / sd.array()).matrix().transpose() / std::sqrt(variance);
  }
  return basis;
}

HistoryCoupling HistoryCoupling::at_prior(const HistoryBasis& basis, int rows,
                                          double prior_precision) {
  HistoryCoupling c;
  c.basis = basis;
  const Index F = basis.features();
  c.B = Eigen::MatrixXd::Zero(rows, F);
  c.precision = (prior_precision * Eigen::MatrixXd::Identity(F, F)).replicate(1, rows);
  c.prior_precision = prior_precision;
  return c;
}

HistoryCoupling HistoryCoupling::select_rows(const std::vector<int>& keep) const {
  HistoryCoupling out;
  out.basis = basis;
  out.prior_precision = prior_precision;
  const Index F = features();
  out.B.resize(static_cast<Index>(keep.size()), F);
  out.precision.resize(F, static_cast<Index>(keep.size()) * F);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    out.B.row(static_cast<Index>(i)) = B.row(keep[i]);
    out.precision.middleCols(static_cast<Index>(i) * F, F) = precision.middleCols(keep[i] * F, F);
  }
  return out;
}

Eigen::ArrayXXd HistoryCoupling::offset(const Eigen::MatrixXd& features) const {
  assert(features.rows() == B.cols());
  return (B * features).array();
}

Eigen::VectorXd HistoryCoupling::row_log_prior() const {
  const double F = static_cast<double>(features());
  return (-0.5 * prior_precision * B.rowwise().squaredNorm().array() +
          0.5 * F * std::log(prior_precision) - F * kHalfLog2Pi)
      .matrix();
}

double HistoryCoupling::laplace_correction() const {
  const Index F = features();
  double total = 0.0;
  for (Index n = 0; n < B.rows(); ++n) {
    const Eigen::LLT<Eigen::MatrixXd> llt(precision.middleCols(n * F, F));
    if (llt.info() != Eigen::Success)
      throw NumericalError("evidence_laplace: the precision of history row " + std::to_string(n) +
                           " is not positive definite");
    total += F * kHalfLog2Pi - llt.matrixLLT().diagonal().array().log().sum();
  }
  return total;
}

void HistoryCoupling::copy_row(const HistoryCoupling& from, Index n) {
  const Index F = features();
  B.row(n) = from.B.row(n);
  precision.middleCols(n * F, F) = from.precision.middleCols(n * F, F);
}

HistoryStatistics HistoryStatistics::zero(int rows, int features) {
  return HistoryStatistics{Eigen::MatrixXd::Zero(features, rows),
                           Eigen::MatrixXd::Zero(features, static_cast<Index>(rows) * features)};
}

void HistoryStatistics::add_trial(const Eigen::MatrixXd& features, const Eigen::ArrayXXd& g,
                                  const Eigen::ArrayXXd& G) {
  const Index F = features.rows();
  assert(gradient.rows() == F && g.rows() == gradient.cols() && g.cols() == features.cols());
  gradient.noalias() += features * g.matrix().transpose();
  Eigen::MatrixXd weighted(F, features.cols());
  for (Index n = 0; n < g.rows(); ++n) {
    weighted = features * (-2.0 * G.row(n)).matrix().asDiagonal();
    curvature.middleCols(n * F, F).noalias() += weighted * features.transpose();
  }
}

void history_natural_gradient_step(HistoryCoupling& coupling, const HistoryStatistics& stats,
                                   double scale, const Eigen::VectorXd& row_rho) {
  const Index F = coupling.features();
  const Eigen::MatrixXd prior = coupling.prior_precision * Eigen::MatrixXd::Identity(F, F);
  for (Index n = 0; n < coupling.B.rows(); ++n) {
    const double rho = row_rho(n);
    auto P = coupling.precision.middleCols(n * F, F);
    P = (1.0 - rho) * P + rho * (prior + scale * stats.curvature.middleCols(n * F, F));
    const Eigen::LLT<Eigen::MatrixXd> llt(P);
    if (llt.info() != Eigen::Success)
      throw NumericalError("the precision of history row " + std::to_string(n) +
                           " is not positive definite");
    const Eigen::VectorXd direction =
        scale * stats.gradient.col(n) - coupling.prior_precision * coupling.B.row(n).transpose();
    coupling.B.row(n) += rho * llt.solve(direction).transpose();
  }
}

}  // namespace spikevi
