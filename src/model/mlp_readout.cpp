// The MLP readout's cubature kernels (mlp_readout.hpp): every quantity is a weighted sum over
// the T J node columns z_tj = m_t + L_t xi_j (S_t = L_t L_t'), computed by GEMMs on the
// D x TJ node matrix, the H x TJ hidden units and the N x TJ log-rates.
#include "spikevi/model/mlp_readout.hpp"

#include <cassert>
#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/elementwise.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

// Per-thread scratch: resized only when a shape grows or changes, never per bin.
struct NodeValues {
  Eigen::MatrixXd z;           // D x TJ nodes
  Eigen::MatrixXd hidden;      // H x TJ, tanh(W z + b)
  Eigen::MatrixXd eta;         // N x TJ
  Eigen::ArrayXXd f0, f1, f2;  // N x TJ: f, f', f'' at the nodes
  Eigen::ArrayXXd x_flat;      // NTJ x 1: x of each node's bin
  Eigen::ArrayXd eta_flat;
  PointwiseDerivatives at;
  Eigen::MatrixXd factors;  // D x TD: L_t, S_t = L_t L_t'
  Eigen::LLT<Eigen::MatrixXd> llt;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen;
};

NodeValues& scratch() {
  thread_local NodeValues values;
  return values;
}

// Nodes, hidden units and log-rates of every bin (no derivatives).
void evaluate_nodes(const Readout& linear, const MlpReadout& mlp, const GaussianCubature& rule,
                    const GaussianMoments& q, NodeValues& v) {
  const Index dim = q.dim(), bins = q.bins(), points = rule.points();
  assert(rule.dim() == dim && linear.dim() == dim && mlp.W.cols() == dim);
  v.z.resize(dim, bins * points);
  v.factors.resize(dim, bins * dim);
  for (Index t = 0; t < bins; ++t) {
    v.llt.compute(q.cov_block(static_cast<int>(t)));
    if (v.llt.info() != Eigen::Success)
      throw NumericalError("MLP readout: the posterior covariance of bin " + std::to_string(t) +
                           " is not positive definite");
    auto factor = v.factors.middleCols(t * dim, dim);
    factor = v.llt.matrixL();
    auto block = v.z.middleCols(t * points, points);
    block.noalias() = factor.triangularView<Eigen::Lower>() * rule.bin_nodes(t);
    block.colwise() += q.mean.col(t);
  }
  v.hidden.resize(mlp.hidden(), v.z.cols());
  v.hidden.noalias() = mlp.W * v.z;
  v.hidden.colwise() += mlp.b;
  tanh_in_place(v.hidden);
  v.eta.resize(linear.rows(), v.z.cols());
  v.eta.noalias() = linear.C * v.z;
  v.eta.noalias() += mlp.A * v.hidden;
  v.eta.colwise() += linear.d;
}

// f and its first `orders` derivatives at every node column, by one call of the model's
// element-wise pointwise() on all N x TJ entries seen as one column (the models the MLP readout
// accepts have no per-row parameters, ModelSettings::validate).
void evaluate_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x, Index points,
                         int orders, NodeValues& v) {
  const Index rows = v.eta.rows(), columns = v.eta.cols();
  v.x_flat.resize(rows * columns, 1);
  for (Index c = 0; c < columns; ++c) v.x_flat.col(0).segment(c * rows, rows) = x.col(c / points);
  v.eta_flat = Eigen::Map<const Eigen::ArrayXd>(v.eta.data(), rows * columns);
  v.at.wanted = {true, orders >= 1, orders >= 2, false, false};
  for (int k = 0; k <= orders; ++k) v.at.of_order[k].resize(rows * columns);
  model.pointwise(v.x_flat, 0, v.eta_flat, v.at);
  v.f0 = Eigen::Map<const Eigen::ArrayXXd>(v.at.of_order[0].data(), rows, columns);
  if (orders >= 1) v.f1 = Eigen::Map<const Eigen::ArrayXXd>(v.at.of_order[1].data(), rows, columns);
  if (orders >= 2) v.f2 = Eigen::Map<const Eigen::ArrayXXd>(v.at.of_order[2].data(), rows, columns);
}

// N x T: sum_j w_j f(., t, j), plus the model's eta-free terms.
Eigen::ArrayXXd bin_expectations(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                 const GaussianCubature& rule, const Eigen::ArrayXXd& at_nodes) {
  const Index points = rule.points(), bins = x.cols();
  Eigen::ArrayXXd ell(x.rows(), bins);
  for (Index t = 0; t < bins; ++t)
    ell.col(t) = (at_nodes.middleCols(t * points, points).matrix() * rule.weights()).array();
  model.add_eta_free_terms(x, ell);
  return ell;
}

// Each node column scaled by its weight w_j (in place).
void weigh_columns(const GaussianCubature& rule, Eigen::ArrayXXd& values) {
  const Index points = rule.points();
  for (Index c = 0; c < values.cols(); ++c) values.col(c) *= rule.weights()(c % points);
}

}  // namespace

MlpReadout MlpReadout::initial(int neurons, int dim, int hidden, std::uint64_t seed) {
  if (hidden < 1) throw ConfigError("--hidden must be >= 1 (got " + std::to_string(hidden) + ")");
  MlpReadout mlp{Eigen::MatrixXd::Zero(neurons, hidden), Eigen::MatrixXd(hidden, dim),
                 Eigen::VectorXd(hidden)};
  RandomStream stream({seed, RandomPurpose::kInitialisation}, {0, 0, 0x6d6c70});
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  for (Index j = 0; j < mlp.W.size(); ++j) mlp.W.data()[j] = scale * stream.next_normal();
  for (Index i = 0; i < hidden; ++i) mlp.b(i) = 0.5 * stream.next_normal();
  return mlp;
}

double MlpReadout::log_prior(double precision) const {
  const double count = static_cast<double>(A.size() + W.size() + b.size());
  const double squares = A.squaredNorm() + W.squaredNorm() + b.squaredNorm();
  return 0.5 * count * std::log(precision / (2.0 * std::numbers::pi)) - 0.5 * precision * squares;
}

MlpReadout MlpReadout::select_rows(const std::vector<int>& keep) const {
  MlpReadout out{Eigen::MatrixXd(static_cast<Index>(keep.size()), A.cols()), W, b};
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] < 0 || keep[i] >= A.rows())
      throw InputError("MLP readout: row " + std::to_string(keep[i]) + " to keep is outside [0, " +
                       std::to_string(A.rows()) + ")");
    out.A.row(static_cast<Index>(i)) = A.row(keep[i]);
  }
  return out;
}

MlpGradient MlpGradient::zero(int neurons, int dim, int hidden) {
  return {Eigen::MatrixXd::Zero(neurons, hidden), Eigen::MatrixXd::Zero(hidden, dim),
          Eigen::VectorXd::Zero(hidden)};
}

MlpKernels::MlpKernels(const Readout& linear, const MlpReadout& mlp, const GaussianCubature& rule)
    : linear_(&linear), mlp_(&mlp), rule_(&rule) {
  if (mlp.A.rows() != linear.rows() || mlp.W.cols() != linear.dim() ||
      mlp.b.size() != mlp.hidden() || mlp.A.cols() != mlp.hidden() || rule.dim() != linear.dim())
    throw std::logic_error("MlpKernels: the shapes of the readout, MLP and cubature disagree");
}

double MlpKernels::expected_log_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                           const GaussianMoments& q,
                                           Eigen::MatrixXd* site_precision,
                                           Eigen::MatrixXd* site_shift) const {
  NodeValues& v = scratch();
  evaluate_nodes(*linear_, *mlp_, *rule_, q, v);
  const bool targets = site_precision != nullptr;
  evaluate_likelihood(model, x, rule_->points(), targets ? 1 : 0, v);
  const double total = bin_expectations(model, x, *rule_, v.f0).sum();
  if (!targets) return total;
  assert(site_shift);
  const Index dim = q.dim(), points = rule_->points();
  weigh_columns(*rule_, v.f1);
  // grad_z sum_n f_n = C' f' + W' ((1 - h^2) .* (A' f')), weighted, for every node at once.
  Eigen::MatrixXd back =
      ((mlp_->A.transpose() * v.f1.matrix()).array() * (1.0 - v.hidden.array().square())).matrix();
  Eigen::MatrixXd gradient = linear_->C.transpose() * v.f1.matrix();
  gradient.noalias() += mlp_->W.transpose() * back;
  Eigen::MatrixXd moment(dim, dim), lower(dim, dim), curvature(dim, dim);
  for (Index t = 0; t < q.bins(); ++t) {
    const auto factor = v.factors.middleCols(t * dim, dim).triangularView<Eigen::Lower>();
    const auto nodes = gradient.middleCols(t * points, points);
    moment.noalias() = nodes * rule_->bin_nodes(t).transpose();  // G (weights in f')
    lower.noalias() = factor.transpose() * moment;               // L' G
    lower.triangularView<Eigen::StrictlyUpper>().setZero();      // Phi(L' G)
    lower.diagonal() *= 0.5;
    moment = 0.5 * (lower + lower.transpose());  // Psi(L' G)
    // -2 L^-T Psi L^-1 by two triangular solves.
    factor.transpose().solveInPlace(moment);
    curvature = -2.0 * moment.transpose();
    factor.transpose().solveInPlace(curvature);
    curvature = 0.5 * (curvature + curvature.transpose()).eval();
    v.llt.compute(curvature);  // positive definite: nothing to project
    if (v.llt.info() != Eigen::Success) {
      v.eigen.compute(curvature);
      curvature = v.eigen.eigenvectors() * v.eigen.eigenvalues().cwiseMax(0.0).asDiagonal() *
                  v.eigen.eigenvectors().transpose();
    }
    site_precision->middleCols(t * dim, dim) += curvature;
    site_shift->col(t) += nodes.rowwise().sum();
    site_shift->col(t).noalias() += curvature * q.mean.col(t);
  }
  return total;
}

void MlpKernels::add_statistics(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                const GaussianMoments& q, ReadoutStatistics& rows,
                                MlpGradient& gradient) const {
  NodeValues& v = scratch();
  evaluate_nodes(*linear_, *mlp_, *rule_, q, v);
  evaluate_likelihood(model, x, rule_->points(), 2, v);
  rows.log_likelihood += bin_expectations(model, x, *rule_, v.f0).rowwise().sum().matrix();
  weigh_columns(*rule_, v.f1);
  weigh_columns(*rule_, v.f2);
  const Index dim = q.dim(), p = dim + 1, columns = v.z.cols();
  // (c_n, d_n): gradient sum w f' z~, -Hessian sum w (-f'') z~ z~' (z~ = (z, 1)), the latter as
  // one GEMM against the rows vec(z~ z~') of the node columns.
  rows.gradient.topRows(dim).noalias() += v.z * v.f1.matrix().transpose();
  rows.gradient.row(dim) += v.f1.rowwise().sum().matrix().transpose();
  Eigen::MatrixXd outer(p * p, columns);
  for (Index c = 0; c < columns; ++c) {
    for (Index j = 0; j < p; ++j) {
      const double zj = j < dim ? v.z(j, c) : 1.0;
      for (Index i = 0; i < p; ++i) outer(i + j * p, c) = (i < dim ? v.z(i, c) : 1.0) * zj;
    }
  }
  const Eigen::MatrixXd hessian = outer * (-v.f2.matrix().transpose());  // p^2 x N
  for (Index n = 0; n < linear_->rows(); ++n)
    rows.hessian.middleCols(n * p, p) +=
        Eigen::Map<const Eigen::MatrixXd>(hessian.col(n).data(), p, p);
  // (A, W, b): backpropagation through eta = ... + A tanh(W z + b).
  gradient.A.noalias() += v.f1.matrix() * v.hidden.transpose();
  const Eigen::MatrixXd back =
      ((mlp_->A.transpose() * v.f1.matrix()).array() * (1.0 - v.hidden.array().square())).matrix();
  gradient.W.noalias() += back * v.z.transpose();
  gradient.b += back.rowwise().sum();
}

Eigen::VectorXd MlpKernels::row_log_likelihood(const ObservationModel& model,
                                               const Eigen::ArrayXXd& x,
                                               const GaussianMoments& q) const {
  NodeValues& v = scratch();
  evaluate_nodes(*linear_, *mlp_, *rule_, q, v);
  evaluate_likelihood(model, x, rule_->points(), 0, v);
  return bin_expectations(model, x, *rule_, v.f0).rowwise().sum().matrix();
}

void MlpKernels::eta_moments(const GaussianMoments& q, Eigen::ArrayXXd& mean,
                             Eigen::ArrayXXd& variance) const {
  NodeValues& v = scratch();
  evaluate_nodes(*linear_, *mlp_, *rule_, q, v);
  const Index points = rule_->points();
  mean.resize(v.eta.rows(), q.bins());
  variance.resize(v.eta.rows(), q.bins());
  for (Index t = 0; t < q.bins(); ++t) {
    const auto block = v.eta.middleCols(t * points, points);
    mean.col(t) = (block * rule_->weights()).array();
    variance.col(t) =
        (block.array().square().matrix() * rule_->weights()).array() - mean.col(t).square();
  }
  variance = variance.max(0.0);
}

double MlpKernels::path_log_likelihood(const ObservationModel& model, const Eigen::ArrayXXd& x,
                                       const Eigen::MatrixXd& z) const {
  Eigen::MatrixXd hidden = mlp_->W * z;
  hidden.colwise() += mlp_->b;
  tanh_in_place(hidden);
  Eigen::MatrixXd eta = linear_->C * z;
  eta.noalias() += mlp_->A * hidden;
  eta.colwise() += linear_->d;
  PointwiseDerivatives at;
  at.wanted = {true, false, false, false, false};
  at.of_order[0].resize(x.rows());
  Eigen::ArrayXXd eta_free = Eigen::ArrayXXd::Zero(x.rows(), x.cols());
  model.add_eta_free_terms(x, eta_free);
  double total = eta_free.sum();
  Eigen::ArrayXd column(x.rows());
  for (Index t = 0; t < x.cols(); ++t) {
    column = eta.col(t).array();
    model.pointwise(x, t, column, at);
    total += at.of_order[0].sum();
  }
  return total;
}

Eigen::ArrayXXd MlpKernels::predicted_mean(const ObservationModel& model,
                                           const GaussianMoments& q) const {
  NodeValues& v = scratch();
  evaluate_nodes(*linear_, *mlp_, *rule_, q, v);
  Eigen::ArrayXXd means;
  model.predicted_mean(v.eta.array(), Eigen::ArrayXXd::Zero(v.eta.rows(), v.eta.cols()), means);
  const Index points = rule_->points();
  Eigen::ArrayXXd out(v.eta.rows(), q.bins());
  for (Index t = 0; t < q.bins(); ++t)
    out.col(t) = (means.middleCols(t * points, points).matrix() * rule_->weights()).array();
  return out;
}

}  // namespace spikevi
