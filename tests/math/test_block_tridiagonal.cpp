// Block-tridiagonal Cholesky (DESIGN.md §2) against dense Eigen on random SPD matrices.
//
// Tolerances: every test matrix is checked to have condition number below 1e4, and block
// Cholesky is backward stable, so a correct implementation agrees with the dense one to about
// cond * eps * T D ~ 1e-10 relative at worst (observed: below 1e-14). An error in any recursion
// (a missing transpose, a sign, an off-by-one block) produces O(1) relative differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <string>
#include <tuple>

#include "spikevi/math/block_tridiagonal.hpp"
#include "spikevi/error.hpp"
#include "spikevi/math/gaussian_moments.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::max_abs_diff;

constexpr double kRelativeTolerance = 1e-10;

// Splits a dense block-tridiagonal matrix into its blocks.
BlockTridiagonal from_dense(const Eigen::MatrixXd& dense, int d) {
  const int blocks = static_cast<int>(dense.rows()) / d;
  BlockTridiagonal out = BlockTridiagonal::zero(d, blocks);
  for (int t = 0; t < blocks; ++t) {
    out.diagonal.middleCols(t * d, d) = dense.block(t * d, t * d, d, d);
    if (t > 0) out.lower.middleCols(t * d, d) = dense.block(t * d, (t - 1) * d, d, d);
  }
  return out;
}

// B B' + shift I, symmetrised, with B a random block lower bidiagonal matrix: SPD and block
// tridiagonal.
Eigen::MatrixXd random_block_tridiagonal(int d, int blocks, std::mt19937_64& rng) {
  const int n = d * blocks;
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(n, n);
  for (int t = 0; t < blocks; ++t) {
    b.block(t * d, t * d, d, d) = testing::random_normal(d, d, rng);
    if (t > 0) b.block(t * d, (t - 1) * d, d, d) = testing::random_normal(d, d, rng, 0.7);
  }
  const Eigen::MatrixXd j = b * b.transpose() + 0.5 * Eigen::MatrixXd::Identity(n, n);
  return 0.5 * (j + j.transpose());  // exactly symmetric
}

double condition_number(const Eigen::MatrixXd& spd) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(spd, Eigen::EigenvaluesOnly);
  return eigen.eigenvalues().maxCoeff() / eigen.eigenvalues().minCoeff();
}

double relative_diff(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  return max_abs_diff(actual, expected) / expected.cwiseAbs().maxCoeff();
}

// A factored random problem of block size D and T blocks, with its dense oracle.
class BlockCholeskyOnRandomSpd : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  void SetUp() override {
    std::tie(d_, blocks_) = GetParam();
    std::mt19937_64 rng(1000 * d_ + blocks_);
    dense_ = random_block_tridiagonal(d_, blocks_, rng);
    ASSERT_LT(condition_number(dense_), 1e4);
    precision_ = from_dense(dense_, d_);
    chol_.factor(precision_);
    rhs_ = testing::random_normal(d_, blocks_, rng);
  }
  int d_ = 0;
  int blocks_ = 0;
  Eigen::MatrixXd dense_;
  Eigen::MatrixXd rhs_;
  BlockTridiagonal precision_;
  BlockCholesky chol_;
};

TEST_P(BlockCholeskyOnRandomSpd, ReportsTheShapeOfTheFactoredMatrix) {
  EXPECT_EQ(chol_.block_size(), d_);
  EXPECT_EQ(chol_.blocks(), blocks_);
}

TEST_P(BlockCholeskyOnRandomSpd, RoundTripsThroughTheDenseMatrix) {
  EXPECT_EQ(precision_.block_size(), d_);
  EXPECT_EQ(precision_.blocks(), blocks_);
  EXPECT_EQ(max_abs_diff(precision_.to_dense(), dense_), 0.0);
}

TEST_P(BlockCholeskyOnRandomSpd, LogDeterminantMatchesTheDenseCholesky) {
  const Eigen::LLT<Eigen::MatrixXd> dense_llt(dense_);
  const double expected = 2.0 * dense_llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
  EXPECT_NEAR(chol_.log_determinant(), expected,
              kRelativeTolerance * std::max(1.0, std::abs(expected)));
}

TEST_P(BlockCholeskyOnRandomSpd, SolveMatchesTheDenseSolve) {
  const Eigen::VectorXd flat = Eigen::Map<const Eigen::VectorXd>(rhs_.data(), rhs_.size());
  const Eigen::VectorXd expected = dense_.llt().solve(flat);
  const Eigen::MatrixXd x = chol_.solve(rhs_);
  ASSERT_EQ(x.rows(), d_);
  ASSERT_EQ(x.cols(), blocks_);
  const Eigen::MatrixXd expected_blocks =
      Eigen::Map<const Eigen::MatrixXd>(expected.data(), d_, blocks_);
  EXPECT_LT(relative_diff(x, expected_blocks), kRelativeTolerance);
}

TEST_P(BlockCholeskyOnRandomSpd, SelectedInverseMatchesEveryMarginalAndLagBlockOfTheDenseInverse) {
  const Eigen::MatrixXd inverse = dense_.inverse();
  Eigen::MatrixXd marginal;
  Eigen::MatrixXd lag;
  chol_.selected_inverse(marginal, lag);
  ASSERT_EQ(marginal.rows(), d_);
  ASSERT_EQ(marginal.cols(), d_ * blocks_);
  ASSERT_EQ(lag.cols(), d_ * blocks_);
  const double scale = inverse.cwiseAbs().maxCoeff();
  for (int t = 0; t < blocks_; ++t) {
    const Eigen::MatrixXd s = marginal.middleCols(t * d_, d_);
    EXPECT_LT(max_abs_diff(s, inverse.block(t * d_, t * d_, d_, d_)) / scale, kRelativeTolerance)
        << "marginal block " << t;
    EXPECT_EQ(max_abs_diff(s, s.transpose()), 0.0) << "marginal block " << t << " not symmetric";
    Eigen::MatrixXd expected_lag = Eigen::MatrixXd::Zero(d_, d_);
    if (t > 0) expected_lag = inverse.block(t * d_, (t - 1) * d_, d_, d_);
    EXPECT_LT(max_abs_diff(lag.middleCols(t * d_, d_), expected_lag) / scale, kRelativeTolerance)
        << "lag block " << t;
  }
}

// sample_offsets(eps) = L^-T eps; applied to every unit vector it yields M = L^-T, and then
// M M' = (L L')^-1 = J^-1 and M is block upper triangular.
TEST_P(BlockCholeskyOnRandomSpd, SampleOffsetsOfUnitVectorsGiveASquareRootOfTheInverse) {
  const int n = d_ * blocks_;
  Eigen::MatrixXd m(n, n);
  for (int j = 0; j < n; ++j) {
    Eigen::MatrixXd unit = Eigen::MatrixXd::Zero(d_, blocks_);
    unit(j % d_, j / d_) = 1.0;
    const Eigen::MatrixXd x = chol_.sample_offsets(unit);
    m.col(j) = Eigen::Map<const Eigen::VectorXd>(x.data(), n);
  }
  EXPECT_LT(relative_diff(m * m.transpose(), dense_.inverse()), kRelativeTolerance);
  for (int t = 1; t < blocks_; ++t) {
    EXPECT_EQ(m.block(t * d_, 0, d_, t * d_).cwiseAbs().maxCoeff(), 0.0) << "block row " << t;
  }
}

// H = (T D / 2) log(2 pi e) - log|J| / 2 equals the dense entropy log|2 pi e J^-1| / 2.
TEST_P(BlockCholeskyOnRandomSpd, GivesTheDenseGaussianEntropy) {
  GaussianMoments moments;
  moments.mean = Eigen::MatrixXd::Zero(d_, blocks_);
  moments.log_det_precision = chol_.log_determinant();
  const Eigen::MatrixXd cov = 2.0 * std::numbers::pi * std::exp(1.0) * dense_.inverse();
  const double expected = 0.5 * std::log(cov.determinant());
  EXPECT_NEAR(moments.entropy(), expected, kRelativeTolerance * std::max(1.0, std::abs(expected)));
}

INSTANTIATE_TEST_SUITE_P(BlockSizesAndLengths, BlockCholeskyOnRandomSpd,
                         ::testing::Combine(::testing::Values(1, 3, 5),
                                            ::testing::Values(1, 2, 7, 40)));

// The implementation compiles fixed-size kernels for some block sizes and falls back to
// dynamic-size ones for the rest: cover both kinds.
INSTANTIATE_TEST_SUITE_P(EveryBlockSizeUpTo17, BlockCholeskyOnRandomSpd,
                         ::testing::Combine(::testing::Range(1, 18), ::testing::Values(3)));

TEST(BlockTridiagonal, ZeroHasTheRequestedShapeAndNoEntries) {
  const BlockTridiagonal zero = BlockTridiagonal::zero(3, 4);
  EXPECT_EQ(zero.block_size(), 3);
  EXPECT_EQ(zero.blocks(), 4);
  EXPECT_EQ(zero.to_dense(), Eigen::MatrixXd::Zero(12, 12));
}

// A weak, independent check: the empirical covariance of L^-T eps over many standard normal
// eps approaches J^-1 (Monte Carlo error ~ 1/sqrt(samples) ~ 0.006 of the scale; 0.05 is
// more than 5 standard errors).
TEST(BlockCholesky, SampleOffsetsHaveTheInverseAsCovariance) {
  std::mt19937_64 rng(7);
  const int d = 2;
  const int blocks = 3;
  const Eigen::MatrixXd dense = random_block_tridiagonal(d, blocks, rng);
  BlockCholesky chol;
  chol.factor(from_dense(dense, d));
  const int samples = 40000;
  Eigen::MatrixXd second_moment = Eigen::MatrixXd::Zero(d * blocks, d * blocks);
  for (int s = 0; s < samples; ++s) {
    const Eigen::MatrixXd x = chol.sample_offsets(testing::random_normal(d, blocks, rng));
    const Eigen::Map<const Eigen::VectorXd> flat(x.data(), x.size());
    second_moment += flat * flat.transpose();
  }
  second_moment /= samples;
  EXPECT_LT(relative_diff(second_moment, dense.inverse()), 0.05);
}

// Blocks before `bad` stay positive definite; the Schur complement at `bad` is negative
// definite because J_bad,bad is shifted below zero.
TEST(BlockCholesky, ThrowsNamingTheBlockWhoseSchurComplementIsNotPositiveDefinite) {
  std::mt19937_64 rng(11);
  const int d = 3;
  const int bad = 13;
  BlockTridiagonal precision = from_dense(random_block_tridiagonal(d, 20, rng), d);
  auto block = precision.diagonal.middleCols(bad * d, d);
  block -= (block.norm() + 1.0) * Eigen::MatrixXd::Identity(d, d);
  BlockCholesky chol;
  try {
    chol.factor(precision);
    FAIL() << "factor() accepted an indefinite matrix";
  } catch (const NumericalError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("block 13 "), std::string::npos) << message;
    EXPECT_NE(message.find("not positive definite"), std::string::npos) << message;
  }
}

TEST(BlockCholesky, ThrowsNamingTheBlockThatHoldsANonFiniteEntry) {
  std::mt19937_64 rng(12);
  const int d = 2;
  BlockTridiagonal precision = from_dense(random_block_tridiagonal(d, 6, rng), d);
  precision.lower(1, 4 * d) = std::nan("");
  BlockCholesky chol;
  try {
    chol.factor(precision);
    FAIL() << "factor() accepted a NaN";
  } catch (const NumericalError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("block 4 "), std::string::npos) << message;
    EXPECT_NE(message.find("not finite"), std::string::npos) << message;
  }
}

TEST(BlockCholesky, CanBeReusedForADifferentSize) {
  std::mt19937_64 rng(14);
  BlockCholesky chol;
  chol.factor(from_dense(random_block_tridiagonal(5, 9, rng), 5));
  const Eigen::MatrixXd dense = random_block_tridiagonal(2, 3, rng);
  chol.factor(from_dense(dense, 2));
  EXPECT_EQ(chol.block_size(), 2);
  EXPECT_EQ(chol.blocks(), 3);
  EXPECT_NEAR(chol.log_determinant(), std::log(dense.determinant()), 1e-12);
}

}  // namespace
}  // namespace spikevi
