#include "spikevi/model/dynamics.hpp"

#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <cassert>
#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::RowVectorXd;
using Eigen::VectorXd;
using Llt = Eigen::LLT<MatrixXd>;

const double kLog2Pi = std::log(2.0 * std::numbers::pi);

void require(bool ok, const std::string& message) {
  if (!ok) throw NumericalError(message);
}

MatrixXd symmetrised(const MatrixXd& m) { return 0.5 * (m + m.transpose()); }

// Cholesky factor of a symmetric matrix; throws NumericalError naming `what` unless it is
// finite and positive definite.
Llt spd_factor(const MatrixXd& m, const std::string& what) {
  require(m.allFinite(), what + " is not finite");
  Llt llt(m);
  require(llt.info() == Eigen::Success, what + " is not symmetric positive definite");
  return llt;
}

double log_determinant(const Llt& llt) {
  return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
}

MatrixXd inverse(const Llt& llt, Index n) {
  return symmetrised(llt.solve(MatrixXd::Identity(n, n)));
}

// log Gamma_D(a) = D(D-1)/4 log pi + sum_{i=1..D} log Gamma(a + (1 - i)/2).
double log_multivariate_gamma(double a, int dim) {
  double total = 0.25 * dim * (dim - 1) * std::log(std::numbers::pi);
  for (int i = 1; i <= dim; ++i) total += boost::math::lgamma(a + 0.5 * (1 - i));
  return total;
}

// E log|Q| under Q ~ IW(Psi, nu) (DESIGN.md §3):
// log|Psi| - D log 2 - sum_{i=1..D} digamma((nu - i + 1)/2).
double expected_log_det(double log_det_psi, double nu, int dim) {
  double total = log_det_psi - dim * std::log(2.0);
  for (int i = 1; i <= dim; ++i) total -= boost::math::digamma(0.5 * (nu - i + 1));
  return total;
}

void require_degrees_of_freedom(double nu, int dim, const std::string& where) {
  require(std::isfinite(nu) && nu > dim - 1, where + ": nu = " + std::to_string(nu) +
                                                 " must exceed D - 1 = " + std::to_string(dim - 1));
}

std::string shape(Index rows, Index cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

// Throws InputError unless a trial's `inputs` (nullptr or 0 rows: none) has `expected` rows and,
// when it has any, one column per bin.
void require_inputs(const MatrixXd* inputs, Index expected, int bins, const std::string& where) {
  const Index rows = inputs == nullptr ? 0 : inputs->rows();
  if (rows == expected && (rows == 0 || inputs->cols() == bins)) return;
  throw InputError(where + ": the inputs are " +
                   (inputs == nullptr ? std::string("absent") : shape(rows, inputs->cols())) +
                   ", expected " + shape(expected, bins) + " (inputs x bins)");
}

// The sum of `count` consecutive D x D blocks of a column-blocked D x TD matrix, from block
// `first`. Block t occupies D*D contiguous doubles of the column-major storage.
MatrixXd sum_blocks(const MatrixXd& blocks, int dim, int first, int count) {
  assert(blocks.rows() == dim && blocks.cols() >= static_cast<Index>(first + count) * dim);
  const Index size = static_cast<Index>(dim) * dim;
  const Eigen::Map<const MatrixXd> columns(blocks.data() + first * size, size, count);
  const VectorXd total = columns.rowwise().sum();
  return total.reshaped(dim, dim);
}

}  // namespace

DynamicsExpectations DynamicsExpectations::point(const MatrixXd& A, const VectorXd& b,
                                                 const MatrixXd& Q, const MatrixXd& B) {
  const Index dim = Q.rows();
  assert(A.rows() == dim && A.cols() == dim && b.size() == dim);
  const Index inputs = B.cols();
  if (inputs > 0 && B.rows() != dim)
    throw InputError("DynamicsExpectations::point: B is " + shape(B.rows(), inputs) +
                     ", expected " + std::to_string(dim) + " rows");
  MatrixXd At(dim, dim + inputs + 1);  // A~ = [A B b]
  if (inputs == 0)
    At << A, b;
  else
    At << A, B, b;
  const Llt q_llt = spd_factor(Q, "DynamicsExpectations::point: Q");
  DynamicsExpectations out;
  out.E_Qinv = inverse(q_llt, dim);
  out.E_Qinv_At = q_llt.solve(At);
  out.E_At_Qinv_At = symmetrised(At.transpose() * out.E_Qinv_At);
  out.E_logdet_Q = log_determinant(q_llt);
  return out;
}

TransitionStatistics TransitionStatistics::zero(int dim, int inputs) {
  const int p = dim + inputs + 1;
  return TransitionStatistics{MatrixXd::Zero(p, p), MatrixXd::Zero(dim, p),
                              MatrixXd::Zero(dim, dim), 0.0};
}

// DESIGN.md §3: sums over transitions t-1 -> t (0-based t >= 1) of E[z~_{t-1} z~_{t-1}'],
// E[z_t z~_{t-1}'] (with E[z_t z_{t-1}'] = S_{t,t-1} + m_t m_{t-1}') and E[z_t z_t'], where
// z~_{t-1} = (z_{t-1}, u_t, 1); the known u_t enter as E[z u_t'] = m u_t', E[u_t u_t'] = u_t u_t'.
void TransitionStatistics::add_trial(const GaussianMoments& q, const MatrixXd* inputs) {
  const int dim = q.dim();
  const int transitions = q.bins() - 1;
  const Index width = Sxx.rows() - dim - 1;  // U
  const Index last = dim + width;            // the column of the constant 1
  assert(width >= 0 && Sxx.cols() == Sxx.rows() && Syx.rows() == dim && Syx.cols() == Sxx.rows() &&
         Syy.rows() == dim);
  require_inputs(inputs, width, q.bins(), "transition statistics");
  if (transitions < 1) return;
  const auto prev = q.mean.leftCols(transitions);
  const auto next = q.mean.rightCols(transitions);
  const VectorXd prev_sum = prev.rowwise().sum();
  Sxx.topLeftCorner(dim, dim) += sum_blocks(q.cov, dim, 0, transitions) + prev * prev.transpose();
  Sxx.block(0, last, dim, 1) += prev_sum;
  Sxx.block(last, 0, 1, dim) += prev_sum.transpose();
  Sxx(last, last) += transitions;
  Syx.leftCols(dim) += sum_blocks(q.lag_cov, dim, 1, transitions) + next * prev.transpose();
  Syx.col(last) += next.rowwise().sum();
  Syy += sum_blocks(q.cov, dim, 1, transitions) + next * next.transpose();
  if (width > 0) {
    const auto u = inputs->rightCols(transitions);  // u_t drives the transition into bin t
    const MatrixXd prev_u = prev * u.transpose();
    const VectorXd u_sum = u.rowwise().sum();
    Sxx.block(0, dim, dim, width) += prev_u;
    Sxx.block(dim, 0, width, dim) += prev_u.transpose();
    Sxx.block(dim, dim, width, width) += u * u.transpose();
    Sxx.block(dim, last, width, 1) += u_sum;
    Sxx.block(last, dim, 1, width) += u_sum.transpose();
    Syx.middleCols(dim, width) += next * u.transpose();
  }
  n += transitions;
}

void TransitionStatistics::add(const TransitionStatistics& other, double weight) {
  Sxx += weight * other.Sxx;
  Syx += weight * other.Syx;
  Syy += weight * other.Syy;
  n += weight * other.n;
}

// eta = (V^-1, M V^-1, Psi + M V^-1 M', nu)  (DESIGN.md §3).
MatrixNormalInverseWishart::Natural MatrixNormalInverseWishart::natural() const {
  Natural eta;
  eta.eta1 = inverse(spd_factor(V, "MatrixNormalInverseWishart::natural: V"), V.rows());
  eta.eta2 = M * eta.eta1;
  eta.eta3 = symmetrised(Psi + eta.eta2 * M.transpose());
  eta.nu = nu;
  return eta;
}

// V = eta1^-1, M = eta2 V, Psi = eta3 - M eta1 M' = eta3 - eta2 M'  (DESIGN.md §3).
MatrixNormalInverseWishart MatrixNormalInverseWishart::from_natural(const Natural& eta) {
  const std::string where = "MatrixNormalInverseWishart::from_natural";
  const Llt eta1_llt = spd_factor(symmetrised(eta.eta1), where + ": eta1 = V^-1");
  MatrixNormalInverseWishart out;
  out.V = inverse(eta1_llt, eta.eta1.rows());
  out.M = eta1_llt.solve(eta.eta2.transpose()).transpose();
  out.Psi = symmetrised(eta.eta3 - eta.eta2 * out.M.transpose());
  out.nu = eta.nu;
  spd_factor(out.Psi, where + ": Psi");
  require_degrees_of_freedom(out.nu, out.dim(), where);
  return out;
}

// lambda <- (1 - rho) lambda + rho (lambda_prior + scale * s)  (DESIGN.md §3), where the
// statistics enter the natural parameters as (Sxx, Syx, Syy, n). At rho = 1 the current
// value is not used (nor required to be valid): the exact conjugate update.
MatrixNormalInverseWishart MatrixNormalInverseWishart::blend(
    const MatrixNormalInverseWishart& current, const MatrixNormalInverseWishart& prior,
    const TransitionStatistics& stats, double scale, double rho) {
  const Index p = prior.V.rows();
  auto fits = [&](const MatrixXd& m, Index rows, Index cols) {
    return m.rows() == rows && m.cols() == cols;
  };
  if (!fits(stats.Sxx, p, p) || !fits(stats.Syx, prior.dim(), p) ||
      (rho != 1.0 && !fits(current.V, p, p)))
    throw InputError("MatrixNormalInverseWishart::blend: the prior has " +
                     std::to_string(prior.inputs()) + " inputs, the statistics " +
                     std::to_string(stats.inputs()) +
                     (rho != 1.0 ? ", the current value " + std::to_string(current.inputs()) : ""));
  const Natural base = prior.natural();
  Natural eta{base.eta1 + scale * stats.Sxx, base.eta2 + scale * stats.Syx,
              base.eta3 + scale * stats.Syy, base.nu + scale * stats.n};
  if (rho != 1.0) {
    const Natural from = current.natural();
    eta.eta1 = (1.0 - rho) * from.eta1 + rho * eta.eta1;
    eta.eta2 = (1.0 - rho) * from.eta2 + rho * eta.eta2;
    eta.eta3 = (1.0 - rho) * from.eta3 + rho * eta.eta3;
    eta.nu = (1.0 - rho) * from.nu + rho * eta.nu;
  }
  return from_natural(eta);
}

// E[Q^-1] = nu Psi^-1, E[Q^-1 A~] = nu Psi^-1 M, E[A~'Q^-1 A~] = nu M'Psi^-1 M + D V, and
// E log|Q|  (DESIGN.md §3).
DynamicsExpectations MatrixNormalInverseWishart::expectations() const {
  const std::string where = "MatrixNormalInverseWishart::expectations";
  const Llt psi_llt = spd_factor(Psi, where + ": Psi");
  require_degrees_of_freedom(nu, dim(), where);
  const MatrixXd psi_inv_m = psi_llt.solve(M);
  DynamicsExpectations out;
  out.E_Qinv = nu * inverse(psi_llt, Psi.rows());
  out.E_Qinv_At = nu * psi_inv_m;
  out.E_At_Qinv_At = symmetrised(nu * M.transpose() * psi_inv_m + dim() * V);
  out.E_logdet_Q = expected_log_det(log_determinant(psi_llt), nu, dim());
  return out;
}

// KL(q || p) = E_q(Q)[KL(MN(M, Q, V) || MN(M0, Q, V0))] + KL(IW(Psi, nu) || IW(Psi0, nu0)):
//   MN part  (1/2)[tr(V0^-1 (nu dM' Psi^-1 dM + D V)) - D P + D log|V0| - D log|V|],
//   IW part  (nu/2) log|Psi| - (nu0/2) log|Psi0| - (nu - nu0)(D/2) log 2
//            - log Gamma_D(nu/2) + log Gamma_D(nu0/2) - ((nu - nu0)/2) E_q log|Q|
//            - (nu/2) tr((Psi - Psi0) Psi^-1),
// with dM = M - M0, P = D + U + 1 (the prototype's MNIW.kl).
double MatrixNormalInverseWishart::kl_divergence(const MatrixNormalInverseWishart& prior) const {
  const std::string where = "MatrixNormalInverseWishart::kl_divergence";
  const int d = dim();
  const int p = static_cast<int>(M.cols());
  const Llt v_llt = spd_factor(V, where + ": V");
  const Llt v0_llt = spd_factor(prior.V, where + ": prior V");
  const Llt psi_llt = spd_factor(Psi, where + ": Psi");
  const Llt psi0_llt = spd_factor(prior.Psi, where + ": prior Psi");
  require_degrees_of_freedom(nu, d, where);
  require_degrees_of_freedom(prior.nu, d, where + " (prior)");

  const MatrixXd dM = M - prior.M;
  const MatrixXd expected_outer = nu * dM.transpose() * psi_llt.solve(dM) + d * V;
  const double kl_matrix_normal = 0.5 * (v0_llt.solve(expected_outer).trace() - d * p +
                                         d * (log_determinant(v0_llt) - log_determinant(v_llt)));

  const double log_det_psi = log_determinant(psi_llt);
  const double trace_term = d - psi_llt.solve(prior.Psi).trace();  // tr((Psi - Psi0) Psi^-1)
  const double kl_inverse_wishart =
      0.5 * nu * log_det_psi - 0.5 * prior.nu * log_determinant(psi0_llt) -
      0.5 * (nu - prior.nu) * d * std::log(2.0) - log_multivariate_gamma(0.5 * nu, d) +
      log_multivariate_gamma(0.5 * prior.nu, d) -
      0.5 * (nu - prior.nu) * expected_log_det(log_det_psi, nu, d) - 0.5 * nu * trace_term;
  return kl_matrix_normal + kl_inverse_wishart;
}

MatrixXd MatrixNormalInverseWishart::mean_Q() const {
  require(nu > dim() + 1, "MatrixNormalInverseWishart::mean_Q: nu = " + std::to_string(nu) +
                              " must exceed D + 1 = " + std::to_string(dim() + 1));
  return Psi / (nu - dim() - 1);
}

// Bartlett: W = G G' with G = L B, L = chol(Psi^-1), B lower triangular, B_ii^2 ~ chi2(nu - i)
// (0-based i; chi2(k) = 2 Gamma(k/2)), B_ij ~ N(0, 1) below the diagonal. Then Q = W^-1 and
// S = G^-T has S S' = (G G')^-1 = Q.
MatrixNormalInverseWishart::Draw MatrixNormalInverseWishart::draw(RandomStream& stream) const {
  const std::string where = "MatrixNormalInverseWishart::draw";
  const int d = dim();
  require_degrees_of_freedom(nu, d, where);
  const Llt psi_llt = spd_factor(Psi, where + ": Psi");
  const MatrixXd psi_inverse_factor = spd_factor(inverse(psi_llt, d), where + ": Psi^-1").matrixL();
  MatrixXd bartlett = MatrixXd::Zero(d, d);
  for (int i = 0; i < d; ++i) {
    bartlett(i, i) = std::sqrt(2.0 * stream.next_gamma(0.5 * (nu - i)));
    for (int j = 0; j < i; ++j) bartlett(i, j) = stream.next_normal();
  }
  const MatrixXd wishart_factor = psi_inverse_factor * bartlett;  // G, lower triangular
  const MatrixXd noise_factor =                                   // S = G^-T
      wishart_factor.transpose().triangularView<Eigen::Upper>().solve(MatrixXd::Identity(d, d));
  MatrixXd normals(d, M.cols());
  for (Index j = 0; j < normals.cols(); ++j)
    for (Index i = 0; i < d; ++i) normals(i, j) = stream.next_normal();
  const MatrixXd column_factor = spd_factor(V, where + ": V").matrixL();
  Draw out;
  out.Q = symmetrised(noise_factor * noise_factor.transpose());
  out.At = M + noise_factor * normals * column_factor.transpose();
  return out;
}

MatrixNormalInverseWishart MatrixNormalInverseWishart::weak_prior(int dim, double v0, double q0,
                                                                  int inputs) {
  const int p = dim + inputs + 1;
  MatrixNormalInverseWishart prior;
  prior.M = MatrixXd::Zero(dim, p);
  prior.V = v0 * MatrixXd::Identity(p, p);
  prior.nu = dim + 3.0;
  prior.Psi = q0 * (prior.nu - dim - 1) * MatrixXd::Identity(dim, dim);
  return prior;
}

// DESIGN.md §2, "The prior part", with 0-based bins: Sigma0^-1 and Sigma0^-1 mu0 at t = 0,
// E[Q^-1] and E[Q^-1 b] at t >= 1 (a transition into t), E[A'Q^-1 A] and -E[A'Q^-1 b] at
// t < T - 1 (a transition out of t), J_{t,t-1} = -E[Q^-1 A]; c as in the design.
//
// With inputs b becomes B u_t + b = [B b] u~_t, u~_t = (u_t, 1), in the transition into t. J_p
// is unchanged; with the blocks E[Q^-1 A~] = [E[Q^-1 A], G] and E[A~'Q^-1 A~] = [[., F], [F', H]]
// over (z, u~): h_t += G u~_t, h_{t-1} -= F u~_t and c gains u~_t'H u~_t / 2 (H holds the D V
// term of §3) in place of E[b'Q^-1 b]/2. U = 0 keeps the original arithmetic bit for bit.
PriorBlocks prior_blocks(const DynamicsExpectations& dynamics, const VectorXd& mu0,
                         const MatrixXd& Sigma0, int bins, const MatrixXd* inputs) {
  const int dim = dynamics.dim();
  const int width = dynamics.inputs();  // U
  assert(bins >= 1 && mu0.size() == dim && Sigma0.rows() == dim && width >= 0);
  require_inputs(inputs, width, bins, "prior_blocks");
  const Llt sigma0_llt = spd_factor(Sigma0, "prior_blocks: Sigma0");
  const MatrixXd sigma0_inv = inverse(sigma0_llt, dim);
  const VectorXd sigma0_inv_mu0 = sigma0_llt.solve(mu0);
  const auto E_At_Qinv_A = dynamics.E_At_Qinv_At.topLeftCorner(dim, dim);
  const auto E_Qinv_A = dynamics.E_Qinv_At.leftCols(dim);

  PriorBlocks out{BlockTridiagonal::zero(dim, bins), MatrixXd::Zero(dim, bins), 0.0};
  for (int t = 0; t < bins; ++t) {
    const Index cols = static_cast<Index>(t) * dim;
    auto diagonal = out.precision.diagonal.middleCols(cols, dim);
    auto shift = out.shift.col(t);
    if (t == 0) {
      diagonal += sigma0_inv;
      shift += sigma0_inv_mu0;
    } else {
      diagonal += dynamics.E_Qinv;
      out.precision.lower.middleCols(cols, dim) = -E_Qinv_A;
      if (width == 0) shift += dynamics.E_Qinv_At.col(dim);  // E[Q^-1 b]
    }
    if (t + 1 < bins) {
      diagonal += E_At_Qinv_A;
      if (width == 0) shift -= dynamics.E_At_Qinv_At.col(dim).head(dim);  // E[A'Q^-1 b]
    }
  }
  if (width == 0) {
    const double E_b_Qinv_b = dynamics.E_At_Qinv_At(dim, dim);
    out.constant = 0.5 * mu0.dot(sigma0_inv_mu0) +
                   0.5 * (dim * kLog2Pi + log_determinant(sigma0_llt)) +
                   0.5 * (bins - 1) * (dim * kLog2Pi + dynamics.E_logdet_Q + E_b_Qinv_b);
    return out;
  }
  const Index transitions = bins - 1;
  double input_quadratic = 0.0;  // sum_t u~_t'H u~_t
  if (transitions > 0) {
    MatrixXd u_tilde(width + 1, transitions);
    u_tilde << inputs->rightCols(transitions), RowVectorXd::Ones(transitions);
    const auto G = dynamics.E_Qinv_At.rightCols(width + 1);
    const auto F = dynamics.E_At_Qinv_At.topRightCorner(dim, width + 1);
    const auto H = dynamics.E_At_Qinv_At.bottomRightCorner(width + 1, width + 1);
    out.shift.rightCols(transitions) += G * u_tilde;
    out.shift.leftCols(transitions) -= F * u_tilde;
    input_quadratic = u_tilde.cwiseProduct(H * u_tilde).sum();
  }
  out.constant = 0.5 * mu0.dot(sigma0_inv_mu0) +
                 0.5 * (dim * kLog2Pi + log_determinant(sigma0_llt)) +
                 0.5 * transitions * (dim * kLog2Pi + dynamics.E_logdet_Q) + 0.5 * input_quadratic;
  return out;
}

}  // namespace spikevi
