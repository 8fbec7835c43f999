// The likelihood half of a local sweep (DESIGN.md §9) as dense kernels, with a GEMM of the
// same machine as the ceiling and a per-neuron loop as the peer it replaces.
//   BM_EtaMoments          mu = C M + d, s2 = K(C) [vec S_t]      2NDT + 2ND^2T flops
//   BM_SiteTargets         L += K(C)'(-2G), l += C'g + L_t m_t     2ND^2T + 2NDT + 2D^2T
//   BM_SiteTargetsLoop     the same targets, per bin and neuron    (same count, for the ratio)
//   BM_PoissonExpectation  ell, g, G of Poisson from (mu, s2)      NT (exp = 1 flop)
//   BM_LikelihoodSweep     eta moments, Poisson g and G, targets   the sum + NT (exp = 1 flop)
//   BM_ReferenceGemm       square n x n GEMM, 2n^3                 the machine's dense ceiling
// Arguments: N neurons, D latents, T bins. Counters: bins/s, GFLOP/s (CPU time) and
// peak_GFLOP/s, the 1024^3 GEMM peak of peak.hpp (wall time), so that fraction of peak =
// GFLOP/s / peak_GFLOP/s on an idle machine; BM_ReferenceGemm gives the same ceiling on the
// CPU-time clock of the other counters, for loaded machines.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <random>

#include "peak.hpp"
#include "spikevi/model/readout.hpp"

namespace {

using Eigen::ArrayXXd;
using Eigen::Index;
using Eigen::MatrixXd;

struct Problem {
  spikevi::Readout readout;
  spikevi::GaussianMoments q;
  ArrayXXd x, g, G;
};

// Rates near e^0 so that exp neither overflows nor underflows.
Problem make_problem(Index n, Index dim, Index bins) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto random = [&](Index rows, Index cols, double sd) {
    return MatrixXd(MatrixXd::NullaryExpr(rows, cols, [&] { return sd * normal(rng); }));
  };
  Problem p;
  p.readout.C = random(n, dim, 0.3);
  p.readout.d = random(n, 1, 0.1).col(0);
  p.q.mean = random(dim, bins, 1.0);
  p.q.cov.resize(dim, bins * dim);
  for (Index t = 0; t < bins; ++t) {
    const MatrixXd a = random(dim, dim, 0.3);
    p.q.cov.middleCols(t * dim, dim) =
        a * a.transpose() / static_cast<double>(dim) + 0.1 * MatrixXd::Identity(dim, dim);
  }
  p.x = ArrayXXd::Constant(n, bins, 1.0);
  p.g = random(n, bins, 1.0).array();
  p.G = -random(n, bins, 1.0).array().abs();
  return p;
}

void set_counters(benchmark::State& state, Index bins, double flops) {
  using benchmark::Counter;
  state.counters["bins/s"] = Counter(static_cast<double>(bins), Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = Counter(flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = spikevi::perf::measured_gemm_peak_gflops();
}

double eta_flops(double n, double dim, double bins) {
  return 2.0 * n * dim * bins + 2.0 * n * dim * dim * bins;
}
double site_flops(double n, double dim, double bins) {
  return 2.0 * n * dim * dim * bins + 2.0 * n * dim * bins + 2.0 * dim * dim * bins;
}

void BM_EtaMoments(benchmark::State& state) {
  const Index n = state.range(0), dim = state.range(1), bins = state.range(2);
  const Problem p = make_problem(n, dim, bins);
  const spikevi::ReadoutKernels kernels(p.readout);
  ArrayXXd mu(n, bins), s2(n, bins);
  for (auto _ : state) {
    kernels.eta_moments(p.q, mu, s2);
    benchmark::DoNotOptimize(s2.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, bins, eta_flops(n, dim, bins));
}

void BM_SiteTargets(benchmark::State& state) {
  const Index n = state.range(0), dim = state.range(1), bins = state.range(2);
  const Problem p = make_problem(n, dim, bins);
  const spikevi::ReadoutKernels kernels(p.readout);
  MatrixXd precision = MatrixXd::Zero(dim, bins * dim), shift = MatrixXd::Zero(dim, bins);
  for (auto _ : state) {
    kernels.add_site_targets(p.g, p.G, p.q.mean, precision, shift);
    benchmark::DoNotOptimize(precision.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, bins, site_flops(n, dim, bins));
}

// The loop DESIGN.md §9 warns against: rank-one updates per bin and neuron.
void BM_SiteTargetsLoop(benchmark::State& state) {
  const Index n = state.range(0), dim = state.range(1), bins = state.range(2);
  const Problem p = make_problem(n, dim, bins);
  MatrixXd precision = MatrixXd::Zero(dim, bins * dim), shift = MatrixXd::Zero(dim, bins);
  for (auto _ : state) {
    for (Index t = 0; t < bins; ++t) {
      auto block = precision.middleCols(t * dim, dim);
      for (Index i = 0; i < n; ++i) {
        const auto c = p.readout.C.row(i).transpose();
        block.noalias() -= 2.0 * p.G(i, t) * c * c.transpose();
        shift.col(t) += p.g(i, t) * c - 2.0 * p.G(i, t) * c.dot(p.q.mean.col(t)) * c;
      }
    }
    benchmark::DoNotOptimize(precision.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, bins, site_flops(n, dim, bins));
}

void BM_PoissonExpectation(benchmark::State& state) {
  const Index n = state.range(0), dim = state.range(1), bins = state.range(2);
  const Problem p = make_problem(n, dim, bins);
  const spikevi::PoissonObservation model;
  ArrayXXd mu(n, bins), s2(n, bins), ell(n, bins), g(n, bins), G(n, bins);
  spikevi::ReadoutKernels(p.readout).eta_moments(p.q, mu, s2);
  for (auto _ : state) {
    model.expected_log_likelihood(p.x, mu, s2, ell, g, G);
    benchmark::DoNotOptimize(G.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, bins, static_cast<double>(n * bins));
}

void BM_LikelihoodSweep(benchmark::State& state) {
  const Index n = state.range(0), dim = state.range(1), bins = state.range(2);
  const Problem p = make_problem(n, dim, bins);
  const spikevi::ReadoutKernels kernels(p.readout);
  const spikevi::PoissonObservation model;
  ArrayXXd mu(n, bins), s2(n, bins), ell(n, bins), g(n, bins), G(n, bins);
  MatrixXd precision = MatrixXd::Zero(dim, bins * dim), shift = MatrixXd::Zero(dim, bins);
  for (auto _ : state) {
    kernels.eta_moments(p.q, mu, s2);
    model.expected_log_likelihood(p.x, mu, s2, ell, g, G);
    kernels.add_site_targets(g, G, p.q.mean, precision, shift);
    benchmark::DoNotOptimize(shift.data());
    benchmark::ClobberMemory();
  }
  const auto nd = static_cast<double>(n);
  const auto bd = static_cast<double>(bins);
  set_counters(state, bins,
               eta_flops(nd, static_cast<double>(dim), bd) +
                   site_flops(nd, static_cast<double>(dim), bd) + nd * bd);
}

void BM_ReferenceGemm(benchmark::State& state) {
  const Index size = state.range(0);
  const MatrixXd a = MatrixXd::Random(size, size), b = MatrixXd::Random(size, size);
  MatrixXd c(size, size);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const auto sd = static_cast<double>(size);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * sd * sd * sd * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void sweep_shapes(benchmark::internal::Benchmark* bench) {
  bench->ArgNames({"N", "D", "T"})->ArgsProduct({{100, 300, 1000}, {4, 8, 16}, {100, 500}});
}

BENCHMARK(BM_EtaMoments)->Apply(sweep_shapes);
BENCHMARK(BM_SiteTargets)->Apply(sweep_shapes);
BENCHMARK(BM_SiteTargetsLoop)->Apply(sweep_shapes);
BENCHMARK(BM_PoissonExpectation)->Apply(sweep_shapes);
BENCHMARK(BM_LikelihoodSweep)->Apply(sweep_shapes);
BENCHMARK(BM_ReferenceGemm)->Arg(256)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
