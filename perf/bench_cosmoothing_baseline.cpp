// The smoothing baseline of `spikevi evaluate` (cosmoothing.hpp): 4 kernels x 5 folds x 3
// ridges of Poisson regressions per held-out neuron, then the final fit, for one feature variant.
//   BM_SmoothingBaseline/trials/bins/neurons/log   the whole baseline on a default simulation
//   BM_PoissonRegressionBatch/rows/features/m      one ridge solve of m regressions, shared design
// Counters: regressions/s (held-out neurons x candidate fits per second) for the first,
// GFLOP/s of the batch's two GEMMs per step for the second.
#include <benchmark/benchmark.h>

#include <random>

#include "spikevi/evaluation/cosmoothing.hpp"
#include "spikevi/evaluation/poisson_regression_batch.hpp"
#include "spikevi/model/simulation.hpp"

namespace {

struct BaselineInput {
  std::vector<Eigen::MatrixXd> train_heldin, train_heldout, test_heldin;
};

BaselineInput baseline_input(int trials, int bins, int neurons) {
  spikevi::SimulationSettings settings;
  settings.trials = trials;
  settings.bins = bins;
  settings.neurons = neurons;
  settings.seed = 17;
  const spikevi::Dataset data = spikevi::simulate(settings);
  const spikevi::Split& split = *data.split;
  const std::vector<int> heldin = split.heldin_neurons();
  return {
      spikevi::select_trials_and_rows(data.counts, 0, split.train_trials, heldin),
      spikevi::select_trials_and_rows(data.counts, 0, split.train_trials, split.heldout_neurons),
      spikevi::select_trials_and_rows(data.counts, 0, split.test_trials, heldin)};
}

void BM_SmoothingBaseline(benchmark::State& state) {
  const BaselineInput in =
      baseline_input(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                     static_cast<int>(state.range(2)));
  spikevi::SmoothingBaselineSettings settings;
  settings.features =
      state.range(3) ? spikevi::SmoothingFeatures::kLog : spikevi::SmoothingFeatures::kRaw;
  for (auto _ : state) {
    spikevi::SmoothingBaseline result =
        spikevi::smoothing_baseline(in.train_heldin, in.train_heldout, in.test_heldin, settings);
    benchmark::DoNotOptimize(result.rates.data());
  }
  const double fits =
      static_cast<double>(in.train_heldout.front().rows()) *
      (settings.kernel_sd_candidates.size() * settings.folds * settings.ridge_candidates.size() +
       1.0);
  state.counters["regressions/s"] = benchmark::Counter(
      fits * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SmoothingBaseline)
    ->Args({40, 100, 60, 0})
    ->Args({40, 100, 60, 1})
    ->Args({100, 200, 150, 0})
    ->Unit(benchmark::kMillisecond);

void BM_PoissonRegressionBatch(benchmark::State& state) {
  const Eigen::Index rows = state.range(0), features = state.range(1), m = state.range(2);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd design(rows, features + 1), counts(rows, m);
  design.col(0).setOnes();
  design.rightCols(features) =
      Eigen::MatrixXd::NullaryExpr(rows, features, [&] { return normal(rng); });
  const Eigen::MatrixXd w = 0.3 / std::sqrt(static_cast<double>(features)) *
                            Eigen::MatrixXd::NullaryExpr(features, m, [&] { return normal(rng); });
  const Eigen::ArrayXXd rate = ((design.rightCols(features) * w).array() - 1.0).exp();
  for (Eigen::Index j = 0; j < m; ++j)
    for (Eigen::Index i = 0; i < rows; ++i)
      counts(i, j) = std::poisson_distribution<int>(rate(i, j))(rng);
  long steps = 0;
  for (auto _ : state) {
    Eigen::MatrixXd b = Eigen::MatrixXd::Zero(features + 1, m);
    b.row(0).setConstant(-1.0);
    spikevi::PoissonRegressionBatch batch(design, counts);
    const spikevi::PoissonRegressionBatchReport report =
        batch.solve(Eigen::VectorXd::Constant(m, 0.1 * static_cast<double>(rows)), b);
    for (int s : report.iterations) steps += s;
    benchmark::DoNotOptimize(b.data());
  }
  const double flops =
      4.0 * static_cast<double>(rows * (features + 1)) * static_cast<double>(steps);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["steps/column"] =
      static_cast<double>(steps) / static_cast<double>(state.iterations() * m);
}
BENCHMARK(BM_PoissonRegressionBatch)
    ->Args({3200, 45, 15})
    ->Args({64000, 112, 38})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
