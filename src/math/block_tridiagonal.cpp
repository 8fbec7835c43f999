// Block Cholesky factorisation, solves, selected inversion and sampling for block-tridiagonal
// precisions (DESIGN.md §2, Gauss-Markov family). Notation: J = L L' with L block lower
// bidiagonal, A_t = L_{t,t} (lower triangular) and B_t = L_{t,t-1}; Sigma = J^-1.
//
// Every loop works on D x D column blocks of preallocated D x TD buffers, so no kernel
// allocates per block; factor() allocates only when the problem size changes.
#include "spikevi/math/block_tridiagonal.hpp"

#include <cassert>
#include <cmath>
#include <sstream>
#include <utility>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

// Column block t (D x D) of a D x TD buffer.
auto block_of(Eigen::MatrixXd& m, int t) { return m.middleCols(t * m.rows(), m.rows()); }
auto block_of(const Eigen::MatrixXd& m, int t) { return m.middleCols(t * m.rows(), m.rows()); }

// Where the forward recursion stopped: block -1 when every Schur complement was positive
// definite, else the block and the pivot that failed.
struct Failure {
  int block = -1;
  Eigen::Index row = 0;
  double pivot = 0.0;
};

[[noreturn]] void throw_failure(const Failure& failure, int blocks) {
  std::ostringstream message;
  message << "block-tridiagonal Cholesky: Schur complement of block " << failure.block << " (of "
          << blocks << ", counting from 0) is "
          << (std::isfinite(failure.pivot) ? "not positive definite" : "not finite") << " (pivot "
          << failure.pivot << " at row " << failure.row << ")";
  throw NumericalError(message.str());
}

// D x D kernels. Block t of a D x TD buffer is contiguous, so it is viewed as a D x D map;
// with N = D fixed at compile time (see with_block_size) Eigen unrolls and vectorises every
// small product, and the column loops below avoid the operand packing that Eigen's blocked
// triangular solvers do, which costs more than the arithmetic at D <= 16.
template <int N>
using View = Eigen::Map<Eigen::Matrix<double, N, N>>;
template <int N>
using ConstView = Eigen::Map<const Eigen::Matrix<double, N, N>>;

template <int N>
View<N> view(Eigen::MatrixXd& m, int t) {
  return View<N>(m.data() + t * m.rows() * m.rows(), m.rows(), m.rows());
}
template <int N>
ConstView<N> view(const Eigen::MatrixXd& m, int t) {
  return ConstView<N>(m.data() + t * m.rows() * m.rows(), m.rows(), m.rows());
}

// Column t of a D x T matrix, as a vector of size N.
template <int N>
Eigen::Map<const Eigen::Matrix<double, N, 1>> column_of(const Eigen::MatrixXd& m, int t) {
  return Eigen::Map<const Eigen::Matrix<double, N, 1>>(m.data() + t * m.rows(), m.rows());
}

template <int N>
Eigen::Map<Eigen::Matrix<double, N, 1>> stored_column(Eigen::MatrixXd& m, int t) {
  return Eigen::Map<Eigen::Matrix<double, N, 1>>(m.data() + t * m.rows(), m.rows());
}

// Calls f.template operator()<N>() with N = d if d is one of Sizes, else N = Dynamic.
template <int Size, int... Sizes, typename F>
auto with_block_size(int d, F&& f) {
  if (d == Size) return f.template operator()<Size>();
  if constexpr (sizeof...(Sizes) > 0) {
    return with_block_size<Sizes...>(d, std::forward<F>(f));
  } else {
    return f.template operator()<Eigen::Dynamic>();
  }
}

// The block sizes compiled as fixed-size kernels; any other D runs the dynamic-size kernels.
template <typename F>
auto with_any_block_size(int d, F&& f) {
  return with_block_size<1, 2, 3, 4, 5, 6, 8, 10, 12, 16>(d, std::forward<F>(f));
}

// Dst <- sign * X Y (accumulate = false) or Dst <- Dst + sign * X Y. At fixed sizes the
// product is coefficient-based and unrolled (Eigen's default sends 8 x 8 products through its
// packed GEMM); at dynamic sizes it is Eigen's GEMM.
template <int N, typename Dst, typename X, typename Y>
void product(Dst& dst, double sign, const X& x, const Y& y, bool accumulate) {
  if (!accumulate) dst.setZero();
  if constexpr (N == Eigen::Dynamic) {
    dst.noalias() += sign * (x * y);
  } else {
    dst.noalias() += sign * x.lazyProduct(y);
  }
}

// Column j of X, updated in registers when N is fixed (a plain in-place update otherwise
// forces a store and reload of the column for every term).
template <int N, typename X, typename Update>
void update_column(X& x, Eigen::Index j, Update&& update) {
  if constexpr (N == Eigen::Dynamic) {
    auto column = x.col(j);
    update(column);
  } else {
    Eigen::Matrix<double, N, 1> column = x.col(j);
    update(column);
    x.col(j) = column;
  }
}

// In-place Cholesky (left-looking) of the lower triangle of `a`; the strict upper triangle
// is neither read nor written. Returns the first column whose pivot is not positive and
// finite, or -1.
template <typename M>
Eigen::Index cholesky_in_place(M& a) {
  const Eigen::Index n = a.rows();
  for (Eigen::Index j = 0; j < n; ++j) {
    auto column = a.col(j).tail(n - j);
    for (Eigen::Index k = 0; k < j; ++k) column -= a(j, k) * a.col(k).tail(n - j);
    const double pivot = a(j, j);
    if (!(pivot > 0.0) || !std::isfinite(pivot)) return j;
    column /= std::sqrt(pivot);
  }
  return -1;
}

// X <- X A^-T for lower-triangular A: column j of X A' = C reads
// X_j = (C_j - sum_{k<j} A_jk X_k) / A_jj.
template <int N, typename A, typename X>
void solve_right_transposed(const A& a, X& x) {
  for (Eigen::Index j = 0; j < a.rows(); ++j) {
    update_column<N>(x, j, [&](auto& column) {
      for (Eigen::Index k = 0; k < j; ++k) column -= a(j, k) * x.col(k);
      column *= 1.0 / a(j, j);  // the division is off the critical path
    });
  }
}

// X <- X A^-1 for lower-triangular A: column j of X A = C reads
// X_j = (C_j - sum_{k>j} A_kj X_k) / A_jj.
template <int N, typename A, typename X>
void solve_right(const A& a, X& x) {
  for (Eigen::Index j = a.rows() - 1; j >= 0; --j) {
    update_column<N>(x, j, [&](auto& column) {
      for (Eigen::Index k = j + 1; k < a.rows(); ++k) column -= a(k, j) * x.col(k);
      column *= 1.0 / a(j, j);  // the division is off the critical path
    });
  }
}

// Replaces a square matrix by (X + X') / 2.
template <typename M>
void symmetrise(M& x) {
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = j + 1; i < x.rows(); ++i) {
      const double mean = 0.5 * (x(i, j) + x(j, i));
      x(i, j) = mean;
      x(j, i) = mean;
    }
  }
}

// Forward recursion over all blocks (see BlockCholesky::factor).
template <int N>
Failure factor_blocks(const BlockTridiagonal& j, Eigen::MatrixXd& diag, Eigen::MatrixXd& lower) {
  for (int t = 0; t < j.blocks(); ++t) {
    View<N> a = view<N>(diag, t);
    a = view<N>(j.diagonal, t);
    if (t > 0) {
      View<N> b = view<N>(lower, t);
      b = view<N>(j.lower, t);
      solve_right_transposed<N>(view<N>(diag, t - 1), b);  // B_t = J_{t,t-1} A_{t-1}^-T
      product<N>(a, -1.0, b, b.transpose(), true);         // P_t = J_tt - B_t B_t'
    }
    if (const Eigen::Index row = cholesky_in_place(a); row >= 0) return {t, row, a(row, row)};
  }
  return {};
}

// Backward recursion over all blocks (see BlockCholesky::selected_inverse).
template <int N>
void invert_blocks(int blocks, const Eigen::MatrixXd& diag, const Eigen::MatrixXd& lower,
                   Eigen::MatrixXd& marginal, Eigen::MatrixXd& lag) {
  for (int t = blocks - 1; t >= 0; --t) {
    const ConstView<N> a = view<N>(diag, t);
    View<N> sigma = view<N>(marginal, t);
    View<N> scratch = view<N>(lag, t);  // lag block t is written only at step t - 1
    scratch.setIdentity();
    solve_right<N>(a, scratch);  // A_t^-1
    product<N>(sigma, 1.0, scratch.transpose(), scratch, false);
    if (t + 1 < blocks) {
      View<N> w = view<N>(lag, t + 1);
      w = view<N>(lower, t + 1);
      solve_right<N>(a, w);                                          // W_t = B_{t+1} A_t^-1
      product<N>(scratch, 1.0, view<N>(marginal, t + 1), w, false);  // -Sigma_{t+1,t}
      product<N>(sigma, 1.0, w.transpose(), scratch, true);          // + W' Sigma_{t+1,t+1} W
      w = -scratch;                                                  // Sigma_{t+1,t}
    }
    symmetrise(sigma);
  }
}

// x <- A^-1 x for lower-triangular A, column by column. Multiplying by 1 / A_jj keeps the
// division off the chain of dependent operations that runs through x.
template <typename A, typename X>
void solve_lower(const A& a, X& x) {
  for (Eigen::Index j = 0; j < a.rows(); ++j) {
    x(j) *= 1.0 / a(j, j);
    for (Eigen::Index i = j + 1; i < a.rows(); ++i) x(i) -= x(j) * a(i, j);
  }
}

// x <- A^-T x for lower-triangular A: x_i = (x_i - sum_{k>i} A_ki x_k) / A_ii, last row first.
template <typename A, typename X>
void solve_lower_transposed(const A& a, X& x) {
  for (Eigen::Index i = a.rows() - 1; i >= 0; --i) {
    for (Eigen::Index k = i + 1; k < a.rows(); ++k) x(i) -= a(k, i) * x(k);
    x(i) *= 1.0 / a(i, i);
  }
}

// Forward substitution L y = x, in place on a D x T matrix x (one column per block), for the
// factor stored as diagonal blocks A_t (lower triangles of `diag`) and B_t (`lower`). With N
// fixed the column stays in registers and the small solves unroll (Eigen's dynamic-size
// triangular solve costs more in dispatch than in arithmetic at D <= 16).
template <int N>
void forward_substitute(const Eigen::MatrixXd& diag, const Eigen::MatrixXd& lower,
                        Eigen::MatrixXd& x) {
  for (int t = 0; t < x.cols(); ++t) {
    auto stored = stored_column<N>(x, t);
    update_column<N>(stored, 0, [&](auto& column) {
      if (t > 0) column.noalias() -= view<N>(lower, t) * column_of<N>(x, t - 1);
      solve_lower(view<N>(diag, t), column);
    });
  }
}

// Backward substitution L' x = y, in place: x_t = A_t^-T (y_t - B_{t+1}' x_{t+1}).
template <int N>
void backward_substitute(const Eigen::MatrixXd& diag, const Eigen::MatrixXd& lower,
                         Eigen::MatrixXd& x) {
  const int blocks = static_cast<int>(x.cols());
  for (int t = blocks - 1; t >= 0; --t) {
    auto stored = stored_column<N>(x, t);
    update_column<N>(stored, 0, [&](auto& column) {
      if (t + 1 < blocks)
        column.noalias() -= view<N>(lower, t + 1).transpose() * column_of<N>(x, t + 1);
      solve_lower_transposed(view<N>(diag, t), column);
    });
  }
}

}  // namespace

BlockTridiagonal BlockTridiagonal::zero(int block_size, int blocks) {
  BlockTridiagonal out;
  out.diagonal = Eigen::MatrixXd::Zero(block_size, Eigen::Index{block_size} * blocks);
  out.lower = Eigen::MatrixXd::Zero(block_size, Eigen::Index{block_size} * blocks);
  return out;
}

Eigen::MatrixXd BlockTridiagonal::to_dense() const {
  const int d = block_size();
  const int n = d * blocks();
  Eigen::MatrixXd dense = Eigen::MatrixXd::Zero(n, n);
  for (int t = 0; t < blocks(); ++t) {
    dense.block(t * d, t * d, d, d) = block_of(diagonal, t);
    if (t == 0) continue;
    dense.block(t * d, (t - 1) * d, d, d) = block_of(lower, t);
    dense.block((t - 1) * d, t * d, d, d) = block_of(lower, t).transpose();
  }
  return dense;
}

// Forward recursion (DESIGN.md §2): P_0 = J_00, P_t = J_tt - B_t B_t' with
// B_t = J_{t,t-1} A_{t-1}^-T, and A_t = chol(P_t). Only the lower triangle of each J_tt is
// read; the strict upper triangle of each A_t holds leftovers and is never used.
void BlockCholesky::factor(const BlockTridiagonal& precision) {
  const int d = precision.block_size();
  const int blocks = precision.blocks();
  assert(precision.diagonal.cols() == Eigen::Index{d} * blocks);
  assert(precision.lower.rows() == d && precision.lower.cols() == precision.diagonal.cols());
  block_size_ = 0;  // stays "unfactored" if a block fails
  blocks_ = 0;
  chol_diag_.resize(d, Eigen::Index{d} * blocks);  // no-ops when the size is unchanged
  chol_lower_.resize(d, Eigen::Index{d} * blocks);
  const Failure failure = with_any_block_size(
      d, [&]<int N>() { return factor_blocks<N>(precision, chol_diag_, chol_lower_); });
  if (failure.block >= 0) throw_failure(failure, blocks);
  block_size_ = d;
  blocks_ = blocks;
}

double BlockCholesky::log_determinant() const {
  double sum = 0.0;
  for (int t = 0; t < blocks_; ++t) sum += block_of(chol_diag_, t).diagonal().array().log().sum();
  return 2.0 * sum;
}

Eigen::MatrixXd BlockCholesky::solve(const Eigen::MatrixXd& rhs) const {
  assert(rhs.rows() == block_size_ && rhs.cols() == blocks_);
  Eigen::MatrixXd x = rhs;
  with_any_block_size(block_size_, [&]<int N>() {
    forward_substitute<N>(chol_diag_, chol_lower_, x);
    backward_substitute<N>(chol_diag_, chol_lower_, x);
  });
  return x;
}

Eigen::MatrixXd BlockCholesky::sample_offsets(const Eigen::MatrixXd& eps) const {
  assert(eps.rows() == block_size_ && eps.cols() == blocks_);
  Eigen::MatrixXd x = eps;
  with_any_block_size(block_size_,
                      [&]<int N>() { backward_substitute<N>(chol_diag_, chol_lower_, x); });
  return x;
}

// Backward recursion (the RTS smoother in information form). From Sigma L = L^-T and
// L' Sigma = L^-1, with W_t = B_{t+1} A_t^-1:
//   Sigma_{t+1,t} = -Sigma_{t+1,t+1} W_t
//   Sigma_{t,t}   = A_t^-T A_t^-1 + W_t' Sigma_{t+1,t+1} W_t,   Sigma_{T-1,T-1} = A^-T A^-1.
// While block t is processed, lag block t is not yet written, so it serves as scratch.
void BlockCholesky::selected_inverse(Eigen::MatrixXd& marginal_cov,
                                     Eigen::MatrixXd& lag_cov) const {
  const int d = block_size_;
  marginal_cov.resize(d, Eigen::Index{d} * blocks_);
  lag_cov.resize(d, Eigen::Index{d} * blocks_);
  with_any_block_size(d, [&]<int N>() {
    invert_blocks<N>(blocks_, chol_diag_, chol_lower_, marginal_cov, lag_cov);
  });
  if (blocks_ > 0) block_of(lag_cov, 0).setZero();
}

}  // namespace spikevi
