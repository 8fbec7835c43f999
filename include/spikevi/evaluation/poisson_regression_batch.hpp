#pragma once
// Many ridge-penalised Poisson regressions on one shared design (the smoothing baseline's
// held-out neurons, docs/input-format.md#co-smoothing-score): column j of `counts` is fitted by
//   minimise_b  sum_i exp(d_i . b) - y_ij d_i . b + (penalty_j / 2) |b_1:|^2
// (d_i a row of `design`, whose column 0 is the unpenalised intercept). The problems are
// strictly convex for penalty_j > 0, so the minimiser does not depend on the method.
//
// Method: preconditioned gradient steps with an Armijo backtracking line search per column,
// the columns batched so that every iteration is two dense GEMMs over the design (D B for the
// linear predictors, D' (mu - Y) for the gradients) instead of one O(rows x q^2) Hessian per
// column per Newton step. The preconditioner of column j is its Hessian D' diag(mu_j) D +
// penalty_j E estimated on an evenly spaced subset of the rows (scaled to all rows) at a
// recent iterate, refreshed when the column's decrement stops falling fast: the iteration
// then contracts like Newton's with an approximate Hessian. Stops per column when
// -g'd / 2 <= tolerance (1 + |objective|) (d = -P^-1 g, the approximate Newton decrement).
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

struct PoissonRegressionBatchSettings {
  double tolerance = 1e-14;  // on the approximate Newton decrement^2 / 2, relative
  int max_iterations = 100;  // preconditioned steps per column
  // Rows of the design the curvature is estimated on, per design column (evenly spaced; all
  // rows when fewer). Its cost per column, rows_per_coefficient q^3 / 2, against 2 rows q per
  // step: 32 q rows give a preconditioner within ~20 % (a decrement falling ~25x per step).
  Eigen::Index curvature_rows_per_coefficient = 32;
  // A column's curvature is re-estimated at its iterate when its decrement fell by less than
  // this factor in one step.
  double refresh_ratio = 0.5;
};

// What one solve did, per column.
struct PoissonRegressionBatchReport {
  std::vector<int> iterations;
  std::vector<bool> converged;
  int curvature_updates = 0;  // column Hessian estimates formed (all columns together)
};

class PoissonRegressionBatch {
 public:
  // `design` rows x q (column 0 the intercept, 1), `counts` rows x m, non-negative; both are
  // referenced, not copied, and must outlive the object.
  PoissonRegressionBatch(const Eigen::MatrixXd& design, const Eigen::MatrixXd& counts,
                         const PoissonRegressionBatchSettings& settings = {});

  // Minimises every column's objective at `penalties` (m, each > 0) from `coefficients`
  // (q x m: the start on entry, the minimisers on return). The curvature estimates of the
  // previous solve are reused as the first preconditioners (a ridge path warm-starts).
  PoissonRegressionBatchReport solve(const Eigen::VectorXd& penalties,
                                     Eigen::MatrixXd& coefficients);

 private:
  void update_curvature(Eigen::Index column, const Eigen::Ref<const Eigen::VectorXd>& coefficients);

  const Eigen::MatrixXd& design_;
  const Eigen::MatrixXd& counts_;
  PoissonRegressionBatchSettings settings_;
  Eigen::MatrixXd sampled_design_;          // the curvature rows of the design
  double row_scale_ = 1.0;                  // rows / curvature rows
  std::vector<Eigen::MatrixXd> curvature_;  // per column, D' diag(mu) D (lower), or empty
  Eigen::MatrixXd weighted_;                // scratch: the curvature rows times sqrt(mu)
};

}  // namespace spikevi
