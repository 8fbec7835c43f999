// The fit's callbacks (when they are called, with what), and the end of a fit that fails
// numerically: the failed iteration is undone and the fit keeps the last finite state.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"

namespace spikevi {
namespace {

const Dataset& small_data() {
  static const Dataset data = [] {
    SimulationSettings s;
    s.trials = 12;
    s.bins = 40;
    s.neurons = 20;
    return simulate(s);
  }();
  return data;
}

std::vector<TrialCounts> training(const Dataset& data) {
  return make_trial_counts(data, data.split->train_trials);
}

FitSettings iterations(int count) {
  FitSettings settings;
  settings.latents = 2;
  settings.iterations = count;
  settings.tolerance = 0.0;
  return settings;
}

// Records what the fit said.
class Recorder final : public FitCallback {
 public:
  void on_iteration(const IterationRecord& record, const FitProgress& fit) override {
    iterations.push_back(record.iteration);
    last_flags.push_back(fit.last());
    EXPECT_EQ(fit.iteration(), record.iteration);
  }
  void on_failure(const std::string& message, const FitProgress& fit) override {
    failure = message;
    kept = std::make_unique<FitState>(fit.state());
  }
  bool stop_requested() override { return stop_after > 0 && ++asked >= stop_after; }
  void on_phase(FitPhase phase, double seconds) override {
    EXPECT_GE(seconds, 0.0);
    phases[static_cast<int>(phase)] += 1;
  }
  void on_end(const FitOutcome&) override { ++ends; }

  std::vector<int> iterations;
  std::vector<bool> last_flags;
  std::string failure;
  std::unique_ptr<FitState> kept;
  int stop_after = 0, asked = 0, ends = 0;
  int phases[4] = {0, 0, 0, 0};
};

TEST(FitCallbacks, AreCalledAtEveryIterationBoundaryAndOnceAtTheEnd) {
  SerialCommunicator comm;
  Recorder recorder;
  const FitOutcome outcome =
      fit_variational(training(small_data()), iterations(5), comm, {&recorder});
  EXPECT_EQ(recorder.iterations, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(recorder.last_flags, (std::vector<bool>{false, false, false, false, true}));
  EXPECT_EQ(recorder.ends, 1);
  EXPECT_EQ(recorder.phases[static_cast<int>(FitPhase::kInitialisation)], 1);
  EXPECT_EQ(recorder.phases[static_cast<int>(FitPhase::kGlobal)], 4);  // none before iteration 1
  EXPECT_GE(recorder.phases[static_cast<int>(FitPhase::kLocal)], 5);
  EXPECT_EQ(outcome.termination, Termination::kIterationLimit);
  EXPECT_EQ(outcome.message, "reached the iteration limit (5)");
}

TEST(FitCallbacks, AStopRequestEndsTheFitAfterThatIteration) {
  SerialCommunicator comm;
  Recorder recorder;
  recorder.stop_after = 3;  // asked once per local pass
  const FitOutcome outcome =
      fit_variational(training(small_data()), iterations(10), comm, {&recorder});
  EXPECT_EQ(outcome.termination, Termination::kStopped);
  EXPECT_EQ(recorder.iterations.back(), 3);
  EXPECT_TRUE(recorder.last_flags.back());
}

TEST(CheckpointSchedule, WritesEveryNIterationsAndAfterTheLast) {
  SerialCommunicator comm;
  std::vector<int> written;
  CheckpointSchedule schedule(2, [&](const FitState& state) { written.push_back(state.iteration); });
  fit_variational(training(small_data()), iterations(5), comm, {&schedule});
  EXPECT_EQ(written, (std::vector<int>{2, 4, 5}));
}

// Poisson, until a shared counter of likelihood evaluations passes `budget`; then every
// evaluation fails, as a likelihood that overflows would.
class FailingPoissonObservation final : public ObservationModel {
 public:
  explicit FailingPoissonObservation(std::shared_ptr<std::atomic<long>> calls, long budget)
      : calls_(std::move(calls)), budget_(budget) {}
  std::string name() const override { return "poisson"; }
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                               Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const override {
    if (++*calls_ > budget_) throw NumericalError("the test's likelihood gave up");
    poisson_.expected_log_likelihood(x, mu, s2, ell, g, G);
  }
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override {
    poisson_.expected_derivatives(x, mu, s2, d2, d3, d4);
  }
  double log_base_measure(const Eigen::ArrayXXd& x) const override {
    return poisson_.log_base_measure(x);
  }
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override {
    poisson_.pointwise(x, col, eta, at);
  }
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override {
    poisson_.predicted_mean(mu, s2, mean);
  }

 private:
  PoissonObservation poisson_;
  std::shared_ptr<std::atomic<long>> calls_;
  long budget_;
};

class FailingPoissonModel final : public SpikeModel {
 public:
  FailingPoissonModel(std::shared_ptr<std::atomic<long>> calls, long budget)
      : calls_(std::move(calls)), budget_(budget) {}
  std::string name() const override { return "poisson"; }
  std::string description() const override { return "Poisson that fails after a budget"; }
  bool has_closed_form() const override { return true; }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>&, bool,
                                                int) const override {
    return std::make_unique<FailingPoissonObservation>(calls_, budget_);
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override { return eta.exp(); }
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    return means.log().matrix();
  }
  double draw(double, const std::vector<double>&, RandomStream&) const override { return 0.0; }
  std::uint64_t simulation_code() const override { return 1001; }

 private:
  std::shared_ptr<std::atomic<long>> calls_;
  long budget_;
};

// Counts the likelihood evaluations up to the end of each iteration.
class EvaluationCounter final : public FitCallback {
 public:
  explicit EvaluationCounter(std::shared_ptr<std::atomic<long>> calls) : calls_(std::move(calls)) {}
  void on_iteration(const IterationRecord&, const FitProgress&) override {
    after_iteration.push_back(*calls_);
  }
  std::vector<long> after_iteration;

 private:
  std::shared_ptr<std::atomic<long>> calls_;
};

TEST(FitVariational, ANumericalFailureEndsTheFitWithTheLastFiniteState) {
  SerialCommunicator comm;
  const std::vector<TrialCounts> trials = training(small_data());
  // How many evaluations four iterations take, with a budget that never runs out.
  auto calls = std::make_shared<std::atomic<long>>(0);
  FitSettings settings = iterations(4);
  settings.model.spikes = std::make_shared<FailingPoissonModel>(calls, 1L << 40);
  EvaluationCounter counter(calls);
  const FitOutcome reference = fit_variational(trials, settings, comm, {&counter});
  ASSERT_EQ(counter.after_iteration.size(), 4u);

  // The same fit with the budget spent a few evaluations into iteration 4.
  auto failing_calls = std::make_shared<std::atomic<long>>(0);
  FitSettings failing = iterations(6);
  failing.model.spikes =
      std::make_shared<FailingPoissonModel>(failing_calls, counter.after_iteration[2] + 5);
  Recorder recorder;
  const FitOutcome outcome = fit_variational(trials, failing, comm, {&recorder});
  EXPECT_EQ(outcome.termination, Termination::kNumericalFailure);
  EXPECT_NE(outcome.message.find("the local step failed on"), std::string::npos)
      << outcome.message;
  EXPECT_NE(outcome.message.find("at iteration 4"), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find("keeps the state after iteration 3"), std::string::npos)
      << outcome.message;
  EXPECT_EQ(recorder.failure, outcome.message);
  EXPECT_EQ(outcome.trace.size(), 3u);
  ASSERT_TRUE(recorder.kept);
  EXPECT_EQ(recorder.kept->iteration, 3);

  // The kept state is the one after iteration 3: the globals that its local steps used (those
  // of the reference fit's iteration 3, which the 4th global step moved), its sites and trace.
  const FitOutcome three = fit_variational(trials, iterations(3), comm);
  EXPECT_EQ(recorder.kept->globals.spikes.C, three.globals.spikes.C);
  EXPECT_EQ(recorder.kept->globals.dynamics.M, three.globals.dynamics.M);
  EXPECT_EQ(outcome.globals.spikes.d, three.globals.spikes.d);
  ASSERT_EQ(recorder.kept->sites.size(), three.posteriors.size());
  for (std::size_t k = 0; k < three.posteriors.size(); ++k) {
    EXPECT_EQ(recorder.kept->sites[k].precision, three.posteriors[k].sites.precision) << k;
    EXPECT_EQ(recorder.kept->sites[k].shift, three.posteriors[k].sites.shift) << k;
  }
  EXPECT_EQ(outcome.trace.back().elbo, reference.trace[2].elbo);
  EXPECT_EQ(outcome.elbo, reference.trace[2].elbo);
}

}  // namespace
}  // namespace spikevi
