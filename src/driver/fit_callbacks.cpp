#include "spikevi/driver/fit_callbacks.hpp"

#include <chrono>

namespace spikevi {
namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void CheckpointSchedule::on_iteration(const IterationRecord& record, const FitProgress& fit) {
  if (fit.last() || (every_ > 0 && record.iteration % every_ == 0)) write_(fit.state());
}

void CheckpointSchedule::on_failure(const std::string&, const FitProgress& fit) {
  if (fit.iteration() > 0) write_(fit.state());
}

PhaseTimer::PhaseTimer(Communicator& comm) : comm_(comm), start_(seconds_now()) {}

void PhaseTimer::on_phase(FitPhase phase, double seconds) {
  switch (phase) {
    case FitPhase::kInitialisation:
      timing_.initialisation += seconds;
      break;
    case FitPhase::kLocal:
      timing_.local += seconds;
      break;
    case FitPhase::kAllreduce:
      timing_.allreduce += seconds;
      break;
    case FitPhase::kGlobal:
      timing_.global += seconds;
      break;
  }
}

void PhaseTimer::on_end(const FitOutcome&) {
  timing_.total = seconds_now() - start_;
  double slowest = timing_.local, summed = timing_.local;
  comm_.allreduce_max(std::span<double>(&slowest, 1));
  comm_.allreduce_sum(std::span<double>(&summed, 1));
  const double mean = summed / comm_.size();
  timing_.load_imbalance = mean > 0 ? slowest / mean : 1.0;
}

}  // namespace spikevi
