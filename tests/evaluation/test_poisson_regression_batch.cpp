#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/evaluation/poisson_regression_batch.hpp"

namespace spikevi {
namespace {

// Standardised features (columns of mean 0, SD 1 over the rows, so that
// fit_poisson_regression's own standardisation is the identity up to rounding), the design
// [1, features], and `neurons` columns of Poisson counts with weights of different sizes.
struct BatchProblem {
  Eigen::MatrixXd features, design, counts;
};

BatchProblem batch_problem(int rows, int features, int neurons, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  BatchProblem p;
  p.features = Eigen::MatrixXd::NullaryExpr(rows, features, [&] { return normal(rng); });
  // Correlated features, as smoothed spike counts are.
  p.features.rightCols(features - 1) += 0.8 * p.features.leftCols(features - 1);
  p.features = p.features.rowwise() - p.features.colwise().mean();
  const Eigen::RowVectorXd sd = (p.features.colwise().squaredNorm() / rows).cwiseSqrt();
  p.features = p.features.array().rowwise() / sd.array();
  p.design.resize(rows, features + 1);
  p.design << Eigen::VectorXd::Ones(rows), p.features;
  p.counts.resize(rows, neurons);
  for (int j = 0; j < neurons; ++j) {
    const Eigen::VectorXd w = Eigen::VectorXd::NullaryExpr(features, [&] { return normal(rng); }) *
                              (0.1 + 0.15 * j) / std::sqrt(static_cast<double>(features));
    const Eigen::ArrayXd rate = ((p.features * w).array() + std::log(0.05 + 0.3 * j)).exp();
    for (int i = 0; i < rows; ++i) p.counts(i, j) = std::poisson_distribution<int>(rate(i))(rng);
  }
  return p;
}

Eigen::MatrixXd constant_start(const BatchProblem& p) {
  Eigen::MatrixXd start = Eigen::MatrixXd::Zero(p.design.cols(), p.counts.cols());
  for (Eigen::Index j = 0; j < p.counts.cols(); ++j) start(0, j) = std::log(p.counts.col(j).mean());
  return start;
}

// Column j's minimiser by the single-regression Newton method, as (intercept, weights).
Eigen::VectorXd newton_fit(const BatchProblem& p, Eigen::Index j, double penalty) {
  // Tighter than the default 1e-10, so that the reference is the optimum to ~1e-10.
  const PoissonRegression fit =
      fit_poisson_regression(p.features, p.counts.col(j), {penalty, 100, 1e-16});
  EXPECT_TRUE(fit.converged);
  Eigen::VectorXd b(fit.weights.size() + 1);
  b << fit.intercept, fit.weights;
  return b;
}

TEST(PoissonRegressionBatch, EveryColumnReachesTheSingleRegressionNewtonOptimum) {
  const BatchProblem p = batch_problem(6000, 12, 5, 3);
  const Eigen::VectorXd penalties = Eigen::VectorXd::LinSpaced(5, 1.0, 600.0);
  Eigen::MatrixXd b = constant_start(p);
  PoissonRegressionBatchSettings settings;
  settings.curvature_rows_per_coefficient = 40;  // a twelfth of the rows: approximate
  PoissonRegressionBatch batch(p.design, p.counts, settings);
  const PoissonRegressionBatchReport report = batch.solve(penalties, b);
  for (Eigen::Index j = 0; j < 5; ++j) {
    EXPECT_TRUE(report.converged[static_cast<std::size_t>(j)]) << "column " << j;
    EXPECT_LT((b.col(j) - newton_fit(p, j, penalties(j))).cwiseAbs().maxCoeff(), 1e-6)
        << "column " << j;
  }
}

TEST(PoissonRegressionBatch, AllRowsForTheCurvatureIsNewtonAndConvergesInFewSteps) {
  const BatchProblem p = batch_problem(3000, 8, 3, 5);
  Eigen::MatrixXd b = constant_start(p);
  PoissonRegressionBatch batch(p.design, p.counts, {.curvature_rows_per_coefficient = 400});
  const PoissonRegressionBatchReport report = batch.solve(Eigen::Vector3d(5.0, 5.0, 5.0), b);
  for (int iterations : report.iterations) EXPECT_LE(iterations, 12);
  for (Eigen::Index j = 0; j < 3; ++j)
    EXPECT_LT((b.col(j) - newton_fit(p, j, 5.0)).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(PoissonRegressionBatch, ARidgePathReusesTheCurvatureAndLandsOnEachOptimum) {
  const BatchProblem p = batch_problem(4000, 10, 4, 7);
  Eigen::MatrixXd b = constant_start(p);
  PoissonRegressionBatch batch(p.design, p.counts, {.curvature_rows_per_coefficient = 72});
  int updates = 0;
  for (double ridge : {1.0, 0.1, 0.01}) {
    const double penalty = ridge * 4000.0;
    const PoissonRegressionBatchReport report =
        batch.solve(Eigen::VectorXd::Constant(4, penalty), b);
    updates += report.curvature_updates;
    for (Eigen::Index j = 0; j < 4; ++j) {
      EXPECT_TRUE(report.converged[static_cast<std::size_t>(j)]);
      EXPECT_LT((b.col(j) - newton_fit(p, j, penalty)).cwiseAbs().maxCoeff(), 1e-6)
          << "ridge " << ridge << ", column " << j;
    }
  }
  EXPECT_GE(updates, 4);  // at least the first estimate of every column
}

TEST(PoissonRegressionBatch, ColumnsDoNotDependOnTheirNeighbours) {
  const BatchProblem p = batch_problem(2000, 6, 4, 11);
  Eigen::MatrixXd all = constant_start(p);
  PoissonRegressionBatch batch(p.design, p.counts);
  batch.solve(Eigen::Vector4d::Constant(50.0), all);
  const Eigen::MatrixXd one_counts = p.counts.col(2);
  Eigen::MatrixXd one = constant_start(p).col(2);
  PoissonRegressionBatch single(p.design, one_counts);
  single.solve(Eigen::VectorXd::Constant(1, 50.0), one);
  EXPECT_LT((all.col(2) - one.col(0)).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(PoissonRegressionBatch, RejectsMismatchedShapes) {
  const Eigen::MatrixXd design = Eigen::MatrixXd::Ones(4, 2), counts = Eigen::MatrixXd::Ones(3, 1);
  EXPECT_THROW(PoissonRegressionBatch(design, counts), InputError);
  const Eigen::MatrixXd good_counts = Eigen::MatrixXd::Ones(4, 2);
  PoissonRegressionBatch batch(design, good_counts);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(2, 1);
  EXPECT_THROW(batch.solve(Eigen::VectorXd::Ones(2), b), InputError);
}

}  // namespace
}  // namespace spikevi
