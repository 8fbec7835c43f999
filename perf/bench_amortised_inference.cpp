// Inferring one new trial (DESIGN.md §6 "Amortised inference", issue 14 point 6): the trained
// encoder's single pass (sites from the held-in counts, then one block-Cholesky pass for q)
// against the iterative local step (CVI from zero sites to convergence, as evaluate does), on
// the same trial of the default simulation (60 neurons, 45 held in, D = 4, 100 bins) under its
// true parameters. Prints the time of each; the ratio is the speed-up amortisation buys.
// The encoder's cost does not depend on its weights, so an untrained one of the default shape
// times the same as a trained one. Encoder benchmarks take (H, window) as arguments.
#include <benchmark/benchmark.h>

#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/inference/amortised_inference.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"

namespace spikevi {
namespace {

struct OneTrial {
  Dataset data = simulate(SimulationSettings{});
  InferenceModel model;
  TrialCounts trial;
  std::unique_ptr<ObservationModel> observation;
  std::unique_ptr<ReadoutKernels> kernels;
  PriorBlocks prior;
  std::vector<ModalityView> modalities;
  OneTrial() {
    const std::vector<int> heldin = data.split->heldin_neurons();
    model = truth_model(*data.truth).rows(heldin);
    trial = make_trial_counts(data, {data.split->test_trials.front()}, heldin).front();
    observation = model.observation();
    kernels = std::make_unique<ReadoutKernels>(model.readout);
    prior = model.prior.blocks(static_cast<int>(trial.counts.cols()));
    modalities = {ModalityView{observation.get(), kernels.get(), &trial.counts,
                               observation->log_base_measure(trial.counts)}};
  }
};

const OneTrial& one_trial() {
  static const OneTrial problem;
  return problem;
}

void BM_IterativeLocalStep(benchmark::State& state) {
  const OneTrial& p = one_trial();
  GaussMarkovEvaluator family;
  DeterministicEstimator estimator;
  const LocalProblem problem{p.prior, p.modalities, family, estimator};
  const LocalStepSettings settings{.tolerance = 1e-6, .max_iterations = 200};
  const int dim = static_cast<int>(p.prior.shift.rows());
  GaussMarkovState q;
  int steps = 0;
  for (auto _ : state) {
    problem.evaluate(Sites::zero(dim, p.trial.counts.cols()), q);
    steps = cvi_local_step(problem, q, settings).iterations;
    benchmark::DoNotOptimize(q.elbo);
  }
  state.counters["cvi_steps"] = steps;
  state.counters["bins"] = static_cast<double>(p.trial.counts.cols());
}

SiteEncoder encoder_for(const OneTrial& p, const benchmark::State& state) {
  return SiteEncoder(EncoderShape{.inputs = static_cast<int>(p.trial.counts.rows()),
                                  .hidden = static_cast<int>(state.range(0)),
                                  .window = static_cast<int>(state.range(1)),
                                  .latents = static_cast<int>(p.prior.shift.rows())},
                     1);
}

// What inferring a new trial costs (evaluate and decode with --refine 0): the encoder's
// prediction path (SiteEncoder::predict_sites), then q's moments from its sites.
void BM_EncoderInference(benchmark::State& state) {
  const OneTrial& p = one_trial();
  const SiteEncoder encoder = encoder_for(p, state);
  EncoderScratch scratch;
  Sites sites;
  GaussianMoments q;
  for (auto _ : state) {
    encoder.predict_sites(p.trial.counts, scratch, sites);
    posterior_moments(p.prior, sites, q);
    benchmark::DoNotOptimize(q.mean.data());
  }
  state.counters["bins"] = static_cast<double>(p.trial.counts.cols());
}

// The same with the trial's ELBO as well (the likelihood's expectations at q), for a caller
// that wants it.
void BM_EncoderInferenceWithElbo(benchmark::State& state) {
  const OneTrial& p = one_trial();
  const SiteEncoder encoder = encoder_for(p, state);
  GaussMarkovEvaluator family;
  DeterministicEstimator estimator;
  const LocalProblem problem{p.prior, p.modalities, family, estimator};
  GaussMarkovState q;
  EncoderScratch scratch;
  Sites sites;
  for (auto _ : state) {
    encoder.predict_sites(p.trial.counts, scratch, sites);
    problem.evaluate(sites, q);
    benchmark::DoNotOptimize(q.elbo);
  }
}

// The parts: the prediction path's sites alone, the training path's forward pass (encode()
// keeping what backward() needs), and q's moments from given sites alone.
void BM_EncoderPredictSites(benchmark::State& state) {
  const OneTrial& p = one_trial();
  const SiteEncoder encoder = encoder_for(p, state);
  EncoderScratch scratch;
  Sites sites;
  for (auto _ : state) {
    encoder.predict_sites(p.trial.counts, scratch, sites);
    benchmark::DoNotOptimize(sites.shift.data());
  }
  state.counters["nonzero_counts"] = static_cast<double>(scratch.bin_start.back());
  state.counters["counts"] = static_cast<double>(p.trial.counts.size());
}

void BM_EncoderTrainingForward(benchmark::State& state) {
  const OneTrial& p = one_trial();
  const SiteEncoder encoder = encoder_for(p, state);
  EncoderPass pass;
  for (auto _ : state) {
    const Sites sites = encoder.encode(p.trial.counts, pass);
    benchmark::DoNotOptimize(sites.shift.data());
  }
}

void BM_PosteriorMoments(benchmark::State& state) {
  const OneTrial& p = one_trial();
  const Sites sites = encoder_for(p, state).predict_sites(p.trial.counts);
  GaussianMoments q;
  for (auto _ : state) {
    posterior_moments(p.prior, sites, q);
    benchmark::DoNotOptimize(q.mean.data());
  }
}

// Arguments: hidden units H, window bins (the defaults of fit are 32, 5).
BENCHMARK(BM_IterativeLocalStep)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncoderInference)
    ->Args({32, 9})
    ->Args({32, 5})
    ->Args({8, 5})
    ->Args({8, 1})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncoderInferenceWithElbo)->Args({32, 5})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncoderPredictSites)
    ->Args({32, 5})
    ->Args({8, 5})
    ->Args({8, 1})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncoderTrainingForward)->Args({32, 5})->Args({8, 5})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PosteriorMoments)->Args({32, 5})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace spikevi

BENCHMARK_MAIN();
