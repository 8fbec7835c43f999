#pragma once
// What a fit tells the world at its boundaries, and what the world tells it (the callbacks of
// ensmallen): progress lines, checkpoint scheduling, the stop request and timing are
// FitCallbacks, not code inside the iteration (variational_fit.hpp). Every rank calls every
// callback at the same points with the same arguments (apart from its own trials' sites), so a
// callback may make collective calls — a checkpoint write — and then must on every rank.
#include <functional>
#include <string>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

// The timed parts of a fit (FitCallback::on_phase).
enum class FitPhase {
  kInitialisation,  // PCA start and first global step, or the restart from a checkpoint
  kLocal,           // local steps and statistics
  kAllreduce,       // the reductions (waiting for slower ranks included)
  kGlobal,          // global steps (replicated on every rank)
};

// The fit at an iteration boundary, for callbacks that need more than the record.
class FitProgress {
 public:
  virtual ~FitProgress() = default;
  virtual int iteration() const = 0;  // iterations completed
  virtual bool last() const = 0;      // no further iteration follows (converged, stop, limit)
  // The state to continue from at this boundary (copies this rank's sites; finite).
  virtual FitState state() const = 0;
};

class FitCallback {
 public:
  virtual ~FitCallback() = default;
  // After every completed iteration.
  virtual void on_iteration(const IterationRecord& record, const FitProgress& fit) {
    (void)record;
    (void)fit;
  }
  // When iteration `fit.iteration() + 1` failed numerically (`message` says where); `fit` is the
  // last finite state, which the fit keeps.
  virtual void on_failure(const std::string& message, const FitProgress& fit) {
    (void)message;
    (void)fit;
  }
  // This rank's wish to stop after the current iteration (e.g. a signal arrived). It rides in
  // the iteration's reduction, so every rank stops after the same iteration.
  virtual bool stop_requested() { return false; }
  // A timed part of the fit took `seconds` on this rank.
  virtual void on_phase(FitPhase phase, double seconds) {
    (void)phase;
    (void)seconds;
  }
  // Once, at the end, with the result.
  virtual void on_end(const FitOutcome& outcome) { (void)outcome; }
};

// Calls `print` with every iteration's record.
class IterationPrinter final : public FitCallback {
 public:
  explicit IterationPrinter(std::function<void(const IterationRecord&)> print)
      : print_(std::move(print)) {}
  void on_iteration(const IterationRecord& record, const FitProgress&) override { print_(record); }

 private:
  std::function<void(const IterationRecord&)> print_;
};

// Calls `write` with the state every `every` iterations (0: never), after the last iteration,
// and with the last finite state after a numerical failure (before a minibatch fit's final pass
// in every case, so that a continued fit is the uninterrupted one).
class CheckpointSchedule final : public FitCallback {
 public:
  CheckpointSchedule(int every, std::function<void(const FitState&)> write)
      : every_(every), write_(std::move(write)) {}
  void on_iteration(const IterationRecord& record, const FitProgress& fit) override;
  void on_failure(const std::string& message, const FitProgress& fit) override;

 private:
  int every_;
  std::function<void(const FitState&)> write_;
};

// Asks to stop when `requested()` says so (e.g. a signal flag).
class StopRequest final : public FitCallback {
 public:
  explicit StopRequest(std::function<bool()> requested) : requested_(std::move(requested)) {}
  bool stop_requested() override { return requested_(); }

 private:
  std::function<bool()> requested_;
};

// Where the solver's time went on this rank, and the spread of the local work over ranks.
struct FitTiming {
  double initialisation = 0.0;  // see FitPhase
  double local = 0.0;
  double allreduce = 0.0;
  double global = 0.0;
  double total = 0.0;           // from construction of the timer to the end of the fit
  double load_imbalance = 1.0;  // max over ranks of `local` / mean over ranks
};

// Adds up the phases; at the end, the total and (collectively: every rank must use one) the
// load imbalance.
class PhaseTimer final : public FitCallback {
 public:
  explicit PhaseTimer(Communicator& comm);
  void on_phase(FitPhase phase, double seconds) override;
  void on_end(const FitOutcome& outcome) override;
  const FitTiming& timing() const { return timing_; }

 private:
  Communicator& comm_;
  double start_;
  FitTiming timing_;
};

}  // namespace spikevi
