// What each estimator of DESIGN.md §6 costs per observation: ell, g, G of an N x T block from
// (mu, s2), the expectation the local step evaluates at every CVI step.
//   BM_PoissonClosedForm    the closed form (one exp per entry): the reference
//   BM_PoissonQuadrature    the same expectations by an n-node Gauss-Hermite rule
//   BM_NegativeBinomial     quadrature (shape terms added outside the expectation)
//   BM_Bernoulli            quadrature
//   BM_MonteCarlo           S draws of the latent path, eta = C z + d, pointwise f, f', f''
// Arguments: nodes (quadrature) or samples (Monte Carlo); N = 150 neurons, T = 200 bins,
// D = 8. Counter entries/s; compare the ratios against BM_PoissonClosedForm in one run.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <random>

#include "spikevi/inference/likelihood.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace {

using Eigen::ArrayXXd;

constexpr int kNeurons = 150, kBins = 200, kDim = 8;

struct Block {
  ArrayXXd x, mu, s2, ell, g, G;
};

Block make_block(std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::poisson_distribution<int> poisson(1.0);
  Block b;
  b.x = ArrayXXd::NullaryExpr(kNeurons, kBins, [&] { return double(poisson(rng)); });
  b.mu = ArrayXXd::NullaryExpr(kNeurons, kBins, [&] { return 0.3 * normal(rng); });
  b.s2 = ArrayXXd::NullaryExpr(kNeurons, kBins, [&] { return 0.1 + 0.05 * std::abs(normal(rng)); });
  return b;
}

// Two blocks of moments taken in turn: the softplus family keeps its last result per thread
// and returns it for bitwise the same (mu, s2) (softplus_moments.hpp), which one block would
// time instead of the quadrature.
void run(benchmark::State& state, const spikevi::ObservationModel& model, const ArrayXXd& x) {
  std::array<Block, 2> blocks{make_block(), make_block(8)};
  std::size_t turn = 0;
  for (auto _ : state) {
    Block& b = blocks[turn];
    turn ^= 1;
    model.expected_log_likelihood(x, b.mu, b.s2, b.ell, b.g, b.G);
    benchmark::DoNotOptimize(b.G.data());
  }
  state.counters["entries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kNeurons * kBins, benchmark::Counter::kIsRate);
}

void BM_PoissonClosedForm(benchmark::State& state) {
  run(state, spikevi::PoissonObservation{}, make_block().x);
}
// A built-in spike model's likelihood with its expectations by `nodes`-point quadrature.
std::unique_ptr<spikevi::ObservationModel> by_quadrature(
    const std::string& name, int nodes, const std::vector<Eigen::VectorXd>& row_values = {}) {
  return spikevi::builtin_spike_models().get(name)->observation(row_values, false, nodes);
}

void BM_PoissonQuadrature(benchmark::State& state) {
  run(state, *by_quadrature("poisson", static_cast<int>(state.range(0))), make_block().x);
}
void BM_NegativeBinomial(benchmark::State& state) {
  run(state,
      *by_quadrature("negative_binomial", static_cast<int>(state.range(0)),
                     {Eigen::VectorXd::Constant(kNeurons, 1.5)}),
      make_block().x);
}
void BM_Bernoulli(benchmark::State& state) {
  const ArrayXXd binary = make_block().x.min(1.0);
  run(state, *by_quadrature("bernoulli", static_cast<int>(state.range(0))), binary);
}

void BM_MonteCarlo(benchmark::State& state) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  spikevi::Readout readout;
  readout.C = Eigen::MatrixXd::NullaryExpr(kNeurons, kDim, [&] { return 0.2 * normal(rng); });
  readout.d = Eigen::VectorXd::Zero(kNeurons);
  readout.precision = Eigen::MatrixXd::Identity(kDim + 1, kDim + 1).replicate(1, kNeurons);
  const spikevi::ReadoutKernels kernels(readout);
  const spikevi::PoissonObservation model;
  const ArrayXXd x = make_block().x;
  const spikevi::ModalityView view{&model, &kernels, &x, 0.0};
  spikevi::LikelihoodWorkspace work;
  std::vector<Eigen::MatrixXd> samples;
  for (int s = 0; s < state.range(0); ++s)
    samples.push_back(Eigen::MatrixXd::NullaryExpr(kDim, kBins, [&] { return normal(rng); }));
  for (auto _ : state) {
    spikevi::monte_carlo_expectations(view, samples, work);
    benchmark::DoNotOptimize(work.G.data());
  }
  state.counters["entries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kNeurons * kBins, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_PoissonClosedForm);
BENCHMARK(BM_PoissonQuadrature)->Arg(12)->Arg(20);
BENCHMARK(BM_NegativeBinomial)->Arg(12)->Arg(20);
BENCHMARK(BM_Bernoulli)->Arg(12)->Arg(20);
BENCHMARK(BM_MonteCarlo)->Arg(1)->Arg(16);

}  // namespace

BENCHMARK_MAIN();
