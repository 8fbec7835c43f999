#pragma once
// Symmetric positive-definite block-tridiagonal matrices and their block Cholesky factor
// (DESIGN.md §2): the precision J of the Gauss-Markov family. Storage is column-blocked:
// a D x (T*D) matrix holds T blocks of D x D side by side, block t in columns [tD, tD + D).
#include <Eigen/Dense>

namespace spikevi {

struct BlockTridiagonal {
  Eigen::MatrixXd diagonal;  // D x TD, block t = J_{t,t}
  Eigen::MatrixXd lower;     // D x TD, block t = J_{t,t-1} for t >= 1; block 0 is ignored

  static BlockTridiagonal zero(int block_size, int blocks);
  int block_size() const { return static_cast<int>(diagonal.rows()); }
  int blocks() const {
    return block_size() == 0 ? 0 : static_cast<int>(diagonal.cols()) / block_size();
  }
  // The full TD x TD matrix (tests and small problems only).
  Eigen::MatrixXd to_dense() const;
};

// J = L L' with L block lower bidiagonal. Reusable: factor() keeps its buffers between calls
// of the same size, so the local step allocates nothing per sweep.
class BlockCholesky {
 public:
  // Throws NumericalError naming the block if a Schur complement is not positive definite.
  void factor(const BlockTridiagonal& precision);
  int block_size() const { return block_size_; }
  int blocks() const { return blocks_; }
  double log_determinant() const;  // log|J|
  // J^-1 rhs for rhs of shape D x T (one column per block).
  Eigen::MatrixXd solve(const Eigen::MatrixXd& rhs) const;
  // Selected inversion: the diagonal blocks S_t = (J^-1)_{t,t} and the lag-one blocks
  // (J^-1)_{t,t-1} = Cov(z_t, z_{t-1}) (block 0 set to zero), each D x TD. O(T D^3).
  void selected_inverse(Eigen::MatrixXd& marginal_cov, Eigen::MatrixXd& lag_cov) const;
  // L^-T eps for eps of shape D x T: a draw from N(0, J^-1) when eps is standard normal.
  Eigen::MatrixXd sample_offsets(const Eigen::MatrixXd& eps) const;

 private:
  int block_size_ = 0;
  int blocks_ = 0;
  Eigen::MatrixXd chol_diag_;   // D x TD, lower-triangular factors L_{t,t}
  Eigen::MatrixXd chol_lower_;  // D x TD, L_{t,t-1}
};

}  // namespace spikevi
