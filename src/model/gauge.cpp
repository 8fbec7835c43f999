#include "spikevi/model/gauge.hpp"

#include <cmath>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

// T = [[M, 0, v], [0, I_U, 0], [0, 0, 1]]: how z~ = (z, u, 1) transforms (U known inputs,
// which the gauge leaves alone, so that B' = M B).
Eigen::MatrixXd augmented(const AffineGauge& gauge, Eigen::Index inputs = 0) {
  const Eigen::Index D = gauge.M.rows();
  Eigen::MatrixXd T = Eigen::MatrixXd::Identity(D + inputs + 1, D + inputs + 1);
  T.topLeftCorner(D, D) = gauge.M;
  T.topRightCorner(D, 1) = gauge.v;
  return T;
}

MatrixNormalInverseWishart transform(const MatrixNormalInverseWishart& q, const AffineGauge& g) {
  const Eigen::MatrixXd T = augmented(g, q.inputs());
  const Eigen::MatrixXd T_inv = T.inverse();
  MatrixNormalInverseWishart out = q;
  out.M = g.M * q.M * T_inv;
  out.M.col(out.M.cols() - 1) += g.v;
  out.V = T_inv.transpose() * q.V * T_inv;
  out.V = 0.5 * (out.V + out.V.transpose()).eval();
  out.Psi = g.M * q.Psi * g.M.transpose();
  out.Psi = 0.5 * (out.Psi + out.Psi.transpose()).eval();
  return out;
}

}  // namespace

AffineGauge AffineGauge::canonical(const Readout& readout,
                                   const std::vector<GaussianMoments>& latents) {
  const Eigen::Index D = readout.C.cols();
  const Eigen::JacobiSVD<Eigen::MatrixXd> svd(readout.C, Eigen::ComputeThinU | Eigen::ComputeThinV);
  if (svd.singularValues()(D - 1) <= 1e-12 * std::max(1.0, svd.singularValues()(0)))
    throw NumericalError("canonical gauge: the readout matrix C is rank deficient");
  // C = U S V' and C' = C M^-1 = U  =>  M = S V'. Flip signs so each column's largest entry
  // is positive.
  Eigen::MatrixXd M = svd.singularValues().asDiagonal() * svd.matrixV().transpose();
  const Eigen::MatrixXd& U = svd.matrixU();
  for (Eigen::Index j = 0; j < D; ++j) {
    Eigen::Index largest = 0;
    U.col(j).cwiseAbs().maxCoeff(&largest);
    if (U(largest, j) < 0) M.row(j) *= -1.0;
  }
  Eigen::VectorXd mean_sum = Eigen::VectorXd::Zero(D);
  double bins = 0.0;
  for (const GaussianMoments& q : latents) {
    mean_sum += q.mean.rowwise().sum();
    bins += static_cast<double>(q.bins());
  }
  const Eigen::VectorXd latent_mean =
      bins > 0 ? Eigen::VectorXd(mean_sum / bins) : Eigen::VectorXd::Zero(D);
  return AffineGauge{M, -M * latent_mean};
}

Readout AffineGauge::apply(const Readout& readout) const {
  const Eigen::Index D = M.rows();
  const Eigen::MatrixXd T = augmented(*this);
  Readout out = readout;
  out.C = M.transpose().partialPivLu().solve(readout.C.transpose()).transpose();
  out.d = readout.d - out.C * v;
  for (Eigen::Index n = 0; n < readout.C.rows(); ++n) {
    auto block = out.precision.middleCols(n * (D + 1), D + 1);
    block = T * readout.precision.middleCols(n * (D + 1), D + 1) * T.transpose();
  }
  return out;
}

GlobalState AffineGauge::apply(const GlobalState& globals) const {
  GlobalState out = globals;
  out.dynamics = transform(globals.dynamics, *this);
  out.dynamics_prior = transform(globals.dynamics_prior, *this);
  out.mu0 = M * globals.mu0 + v;
  out.Sigma0 = M * globals.Sigma0 * M.transpose();
  out.spikes = apply(globals.spikes);
  if (globals.mlp.active()) {  // W z + b = W M^-1 (z' - v) + b (the MLP readout)
    out.mlp.W = M.transpose().partialPivLu().solve(globals.mlp.W.transpose()).transpose();
    out.mlp.b = globals.mlp.b - out.mlp.W * v;
  }
  // w' = T^-T w for every row, so the shared prior N(m0, P0^-1) becomes
  // N(T^-T m0, (T P0 T')^-1): log p0 + the Laplace term keep their sum.
  const Eigen::MatrixXd T = augmented(*this);
  out.spikes_prior.mean = T.transpose().partialPivLu().solve(globals.spikes_prior.mean);
  out.spikes_prior.precision = T * globals.spikes_prior.precision * T.transpose();
  if (globals.continuous_prior.mean.size() == T.rows()) {
    out.continuous_prior.mean = T.transpose().partialPivLu().solve(globals.continuous_prior.mean);
    out.continuous_prior.precision = T * globals.continuous_prior.precision * T.transpose();
  }
  const Eigen::Index p = T.rows();
  for (ContinuousReadout& modality : out.continuous) {
    modality.readout = apply(modality.readout);
    // z~' = T z~: sum E[z~' z~''] = T S T', sum y z~' = T sum y z~.
    RegressionStatistics& s = modality.statistics;
    for (int j = 0; j < modality.channels(); ++j) {
      auto block = s.second_moment.middleCols(j * p, p);
      block = (T * block * T.transpose()).eval();
    }
    s.cross = (T * s.cross).eval();
  }
  return out;
}

GaussianMoments AffineGauge::apply(const GaussianMoments& q) const {
  const int D = q.dim();
  GaussianMoments out = q;
  out.mean = (M * q.mean).colwise() + v;
  for (int t = 0; t < q.bins(); ++t) {
    out.cov.middleCols(t * D, D) = M * q.cov_block(t) * M.transpose();
    out.lag_cov.middleCols(t * D, D) = M * q.lag_block(t) * M.transpose();
  }
  const double log_abs_det = std::log(std::abs(M.determinant()));
  out.log_det_precision = q.log_det_precision - 2.0 * q.bins() * log_abs_det;
  return out;
}

}  // namespace spikevi
