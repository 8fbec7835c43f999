// One local sweep over one trial (DESIGN.md §9): block-Cholesky/selected-inversion pass,
// eta moments, Poisson expected log-likelihood, site targets and the site-form ELBO — exactly
// what GaussMarkovEvaluator::evaluate does once per CVI step. Prints bins/s, achieved GFLOP/s
// and the fraction of the measured single-core GEMM peak (peak.hpp).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "peak.hpp"
#include "spikevi/inference/gauss_markov.hpp"

namespace spikevi {
namespace {

// Useful floating-point work of one sweep: C M and C'g (2 N D T each), the two Khatri-Rao
// GEMMs (2 N D^2 T each), and about 7 D^3 per bin for factorisation and selected inversion.
double sweep_flops(double N, double D, double T) {
  return 4.0 * N * D * T + 4.0 * N * D * D * T + 7.0 * D * D * D * T;
}

struct SweepProblem {
  Readout readout;
  PoissonObservation model;
  Eigen::ArrayXXd counts;
  PriorBlocks prior;
  Sites sites;

  SweepProblem(int N, int D, int T) {
    std::mt19937_64 rng(1);
    std::normal_distribution<double> normal(0.0, 1.0);
    readout.C = Eigen::MatrixXd::NullaryExpr(N, D, [&] { return 0.3 * normal(rng); });
    readout.d = Eigen::VectorXd::Constant(N, std::log(0.3));
    readout.precision = Eigen::MatrixXd::Identity(D + 1, D + 1).replicate(1, N);
    std::poisson_distribution<int> poisson(0.3);
    counts = Eigen::ArrayXXd::NullaryExpr(N, T, [&] { return double(poisson(rng)); });
    const Eigen::MatrixXd A = 0.95 * Eigen::MatrixXd::Identity(D, D);
    prior = prior_blocks(DynamicsExpectations::point(A, Eigen::VectorXd::Zero(D),
                                                     0.1 * Eigen::MatrixXd::Identity(D, D)),
                         Eigen::VectorXd::Zero(D), Eigen::MatrixXd::Identity(D, D), T);
    sites = Sites::zero(D, T);
    for (int t = 0; t < T; ++t) sites.precision.middleCols(t * D, D).diagonal().setConstant(2.0);
  }
};

void BM_LocalSweep(benchmark::State& state) {
  const int N = static_cast<int>(state.range(0));
  const int D = static_cast<int>(state.range(1));
  const int T = static_cast<int>(state.range(2));
  SweepProblem problem(N, D, T);
  const ReadoutKernels kernels(problem.readout);
  const std::vector<ModalityView> modalities{ModalityView{
      &problem.model, &kernels, &problem.counts, problem.model.log_base_measure(problem.counts)}};
  GaussMarkovEvaluator evaluator;
  DeterministicEstimator estimator;
  GaussMarkovState out;
  for (auto _ : state) {
    evaluator.evaluate(problem.prior, modalities, problem.sites, estimator, out);
    benchmark::DoNotOptimize(out.elbo);
  }
  const double flops = sweep_flops(N, D, T);
  state.counters["bins/s"] = benchmark::Counter(T, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = perf::measured_gemm_peak_gflops();
}

void sweep_arguments(benchmark::internal::Benchmark* b) {
  for (int N : {100, 300, 1000})
    for (int D : {4, 8, 16})
      for (int T : {100, 500}) b->Args({N, D, T});
}

BENCHMARK(BM_LocalSweep)->Apply(sweep_arguments)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace spikevi

int main(int argc, char** argv) {
  const double peak = spikevi::perf::measured_gemm_peak_gflops();
  std::printf(
      "measured single-core dense GEMM peak: %.2f GFLOP/s (1024^3, median of 7)\n"
      "fraction of peak = GFLOP/s / peak_GFLOP/s\n",
      peak);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
