#pragma once
// Threads inside a rank (issue 17, DESIGN.md §4): the trials of a rank are shared out among
// OpenMP threads, each with its own scratch (evaluator, estimator, accumulator). Results do not
// depend on the thread count because every trial's work is the same whichever thread runs it,
// and the per-trial contributions are summed exactly (reproducible_sum.hpp), so the grouping
// of the sum by threads cannot change its bits.
#include <cstddef>
#include <exception>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace spikevi {

// The thread count to use: `requested` when > 0, else OMP_NUM_THREADS when it is a positive
// integer, else 1. Throws ConfigError for a negative request or an OMP_NUM_THREADS that is not
// a positive integer.
int resolve_thread_count(int requested);

// Whether this build runs threads (built with OpenMP); without, --threads only loops.
bool threads_available();

// Calls body(i, thread) for i = 0 .. count-1 on up to `threads` threads (thread in
// [0, threads)); i is handed out dynamically, so which thread runs it varies from run to run:
// `body` must write only to slot i or to its thread's scratch. An exception leaves no thread
// hanging: the one of the lowest i is rethrown after all have finished.
template <class Body>
void for_each_index(std::size_t count, int threads, Body&& body) {
  if (threads <= 1 || count <= 1) {
    for (std::size_t i = 0; i < count; ++i) body(i, 0);
    return;
  }
  std::exception_ptr failure;
  std::size_t failed_at = count;
  const long n = static_cast<long>(count);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long i = 0; i < n; ++i) {
    int thread = 0;
#ifdef _OPENMP
    thread = omp_get_thread_num();
#endif
    try {
      body(static_cast<std::size_t>(i), thread);
    } catch (...) {
#pragma omp critical(spikevi_for_each_index)
      if (static_cast<std::size_t>(i) < failed_at) {
        failed_at = static_cast<std::size_t>(i);
        failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace spikevi
