// The smoother kernel of the local step (DESIGN.md §2, §9): block Cholesky of a D x D block
// tridiagonal precision over T bins followed by selected inversion, O(T D^3).
// Counters: bins/s; GFLOP/s counting 7 D^3 flops per bin, the LAPACK counts of the useful
// work (factor: TRSM D^3 + SYRK D^3 + POTRF D^3/3; selected inverse: TRTRI D^3/3 +
// LAUUM D^3/3 + TRSM D^3 + GEMM 2 D^3 + symmetric GEMM D^3); and peak_GFLOP/s, the single-core
// GEMM peak of peak.hpp, so that fraction of peak = GFLOP/s / peak_GFLOP/s.
#include <benchmark/benchmark.h>

#include <random>

#include "peak.hpp"
#include "spikevi/math/block_tridiagonal.hpp"

namespace {

Eigen::MatrixXd gaussian(int rows, int cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd out(rows, cols);
  for (Eigen::Index i = 0; i < out.size(); ++i) out.data()[i] = normal(rng);
  return out;
}

// J = B B' + I for a random block lower bidiagonal B, assembled block by block:
// J_tt = B_tt B_tt' + B_t,t-1 B_t,t-1' + I and J_t,t-1 = B_t,t-1 B_t-1,t-1'.
spikevi::BlockTridiagonal random_precision(int d, int blocks) {
  std::mt19937_64 rng(42);
  spikevi::BlockTridiagonal j = spikevi::BlockTridiagonal::zero(d, blocks);
  Eigen::MatrixXd previous_diag;
  for (int t = 0; t < blocks; ++t) {
    const Eigen::MatrixXd diag = gaussian(d, d, rng);
    Eigen::MatrixXd jtt = diag * diag.transpose() + Eigen::MatrixXd::Identity(d, d);
    if (t > 0) {
      const Eigen::MatrixXd sub = 0.7 * gaussian(d, d, rng);
      jtt += sub * sub.transpose();
      j.lower.middleCols(t * d, d) = sub * previous_diag.transpose();
    }
    j.diagonal.middleCols(t * d, d) = jtt;
    previous_diag = diag;
  }
  return j;
}

void BM_BlockCholeskyFactorAndSelectedInverse(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int blocks = static_cast<int>(state.range(1));
  const spikevi::BlockTridiagonal precision = random_precision(d, blocks);
  spikevi::BlockCholesky chol;
  Eigen::MatrixXd marginal;
  Eigen::MatrixXd lag;
  for (auto _ : state) {
    chol.factor(precision);
    chol.selected_inverse(marginal, lag);
    benchmark::DoNotOptimize(marginal.data());
    benchmark::DoNotOptimize(lag.data());
    benchmark::ClobberMemory();
  }
  using benchmark::Counter;
  const double flops = 7.0 * d * d * d * blocks;
  state.counters["bins/s"] = Counter(blocks, Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = spikevi::perf::measured_gemm_peak_gflops();
}
BENCHMARK(BM_BlockCholeskyFactorAndSelectedInverse)
    ->ArgNames({"D", "T"})
    ->ArgsProduct({{4, 8, 16}, {100, 500}});

}  // namespace

BENCHMARK_MAIN();
