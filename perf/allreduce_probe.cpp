// Allreduce latency and bandwidth as the solver sees them: every call goes through
// spikevi::Communicator (communicator.hpp), the one window the numerics have onto MPI, so the
// figures include whatever that layer adds. Feeds the T_allreduce term of the scaling model in
// perf/README.md. Two reductions, each reported on its own:
//   sum           Communicator::allreduce_sum on n doubles (MPI_SUM, 8 bytes per value);
//   reproducible  ReproducibleSum::allreduce on n components: Communicator::allreduce_records
//                 with 4 int64 words (32 bytes) per value and a user merge operator. Its local
//                 costs, add() of n values and values() (rounding back to doubles), are timed
//                 too: the solver pays them once per iteration beside the collective.
//
// For n = 1, 2, 4, ..., 2^max_log2 values: one untimed warm-up batch, then `batches` timed
// batches of calls (a barrier before each batch; every call timed on its own, its input
// restored before it outside the timed region). Per size, each rank takes the median of its
// per-call times and the job reports the largest of those medians (an iteration waits for the
// slowest rank). Then t(n) = alpha + bytes(n) / beta is fitted by least squares in relative error
// (weights 1/t^2, so the microsecond small messages count as much as the millisecond large
// ones); rank 0 prints the tables and the fits.
//
// Usage: mpirun -np P allreduce_probe [max_log2 = 20] [batches = 10]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/parallel/reproducible_sum.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct LinearFit {
  double alpha_s = 0.0;           // latency: intercept, seconds
  double beta_bytes_per_s = 0.0;  // bandwidth: 1 / slope, bytes per second
};

double median(std::vector<double> values) {
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  return 0.5 * (upper + *std::max_element(values.begin(),
                                          values.begin() + static_cast<std::ptrdiff_t>(mid)));
}

// Timed calls per batch: about 2^20 values per batch, between 4 and 200 calls.
int calls_per_batch(std::size_t values) {
  const std::size_t target = (std::size_t{1} << 20) / values;
  return static_cast<int>(std::clamp<std::size_t>(target, 4, 200));
}

// Max over ranks of each rank's median seconds of `call`, with `prepare` run untimed before
// every call; one warm-up batch, then `batches` timed batches with a barrier before each.
double time_calls(spikevi::Communicator& comm, int calls, int batches,
                  const std::function<void()>& prepare, const std::function<void()>& call) {
  std::vector<double> per_call;
  per_call.reserve(static_cast<std::size_t>(calls * batches));
  for (int batch = -1; batch < batches; ++batch) {  // batch -1: warm-up, not recorded
    comm.barrier();
    for (int i = 0; i < calls; ++i) {
      prepare();
      const auto start = Clock::now();
      call();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (batch >= 0) per_call.push_back(seconds);
    }
  }
  double slowest = median(per_call);
  comm.allreduce_max(std::span<double>(&slowest, 1));
  return slowest;
}

// Every rank contributes 1/size, so each total is 1 up to rounding: a check that it reduced.
void check_total(spikevi::Communicator& comm, double total, const char* what) {
  if (std::abs(total - 1.0) > 1e-12) {
    std::fprintf(stderr, "allreduce_probe: %s: wrong total %.17g on rank %d\n", what, total,
                 comm.rank());
    spikevi::MpiSession::abort(1);
  }
}

struct SumResult {
  std::size_t values = 0;
  int calls = 0;
  double seconds = 0.0;
};

SumResult measure_sum(spikevi::Communicator& comm, std::size_t n, int batches) {
  const double fill = 1.0 / static_cast<double>(comm.size());
  std::vector<double> buffer(n);
  const int calls = calls_per_batch(n);
  const double seconds = time_calls(
      comm, calls, batches, [&] { std::fill(buffer.begin(), buffer.end(), fill); },
      [&] { comm.allreduce_sum(std::span<double>(buffer)); });
  check_total(comm, buffer.back(), "allreduce_sum");
  return SumResult{n, calls * batches, seconds};
}

struct ReproducibleResult {
  std::size_t values = 0;
  int calls = 0;
  double allreduce_s = 0.0;  // ReproducibleSum::allreduce (the collective)
  double add_s = 0.0;        // add() of n values into an empty accumulator
  double values_s = 0.0;     // values(): rounding the n records to doubles
};

ReproducibleResult measure_reproducible(spikevi::Communicator& comm, std::size_t n, int batches) {
  const std::vector<double> deposits(n, 1.0 / static_cast<double>(comm.size()));
  spikevi::ReproducibleSum filled(n);
  filled.add(deposits);
  spikevi::ReproducibleSum acc(n);
  std::vector<double> totals;
  const int calls = calls_per_batch(n);
  ReproducibleResult result{n, calls * batches, 0.0, 0.0, 0.0};
  result.add_s = time_calls(
      comm, calls, batches, [&] { acc.clear(); }, [&] { acc.add(deposits); });
  result.allreduce_s = time_calls(
      comm, calls, batches, [&] { acc = filled; }, [&] { acc.allreduce(comm); });
  result.values_s = time_calls(
      comm, calls, batches, [] {}, [&] { totals = acc.values(); });
  check_total(comm, totals.back(), "ReproducibleSum::allreduce");
  return result;
}

// Weighted least squares of t = alpha + slope * bytes with weights 1 / t^2.
LinearFit fit_latency_bandwidth(const std::vector<double>& bytes,
                                const std::vector<double>& seconds) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const double x = bytes[i], y = seconds[i], w = 1.0 / (y * y);
    sw += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  }
  const double slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
  return LinearFit{(sy - slope * sx) / sw, 1.0 / slope};
}

void print_fit(const char* what, int ranks, const std::vector<double>& bytes,
               const std::vector<double>& seconds) {
  if (ranks == 1) {
    std::printf("%s: one rank moves no data; run with -np >= 2 for alpha and beta\n", what);
    return;
  }
  if (bytes.size() < 2) return;
  const LinearFit fit = fit_latency_bandwidth(bytes, seconds);
  if (!(fit.beta_bytes_per_s > 0)) {
    std::printf("%s: no bandwidth term in these sizes (latency-bound); raise max_log2\n", what);
    return;
  }
  std::printf(
      "%s: fit t(n) = alpha + bytes/beta (least squares, relative error): "
      "alpha = %.3f us, beta = %.3f GB/s\n",
      what, fit.alpha_s * 1e6, fit.beta_bytes_per_s * 1e-9);
}

void report_sum(const std::vector<SumResult>& results, int ranks) {
  std::printf("\n[sum] Communicator::allreduce_sum, 8 bytes per value\n");
  std::printf("%10s %12s %8s %14s %12s\n", "values", "bytes", "calls", "median_us", "GB/s");
  std::vector<double> bytes, seconds;
  for (const SumResult& r : results) {
    const double b = 8.0 * static_cast<double>(r.values);
    std::printf("%10zu %12.0f %8d %14.3f %12.3f\n", r.values, b, r.calls, r.seconds * 1e6,
                b / r.seconds * 1e-9);
    bytes.push_back(b);
    seconds.push_back(r.seconds);
  }
  print_fit("[sum]", ranks, bytes, seconds);
}

void report_reproducible(const std::vector<ReproducibleResult>& results,
                         const std::vector<SumResult>& sums, int ranks) {
  std::printf(
      "\n[reproducible] ReproducibleSum::allreduce (Communicator::allreduce_records), "
      "%zu words = %zu bytes per value\n",
      spikevi::ReproducibleSum::kWordsPerComponent,
      8 * spikevi::ReproducibleSum::kWordsPerComponent);
  std::printf("%10s %12s %8s %14s %12s %10s %12s %12s\n", "values", "bytes", "calls",
              "allreduce_us", "GB/s", "vs_sum", "add_us", "values_us");
  std::vector<double> bytes, seconds;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ReproducibleResult& r = results[i];
    const double b =
        8.0 * spikevi::ReproducibleSum::kWordsPerComponent * static_cast<double>(r.values);
    std::printf("%10zu %12.0f %8d %14.3f %12.3f %10.2f %12.3f %12.3f\n", r.values, b, r.calls,
                r.allreduce_s * 1e6, b / r.allreduce_s * 1e-9, r.allreduce_s / sums[i].seconds,
                r.add_s * 1e6, r.values_s * 1e6);
    bytes.push_back(b);
    seconds.push_back(r.allreduce_s);
  }
  print_fit("[reproducible]", ranks, bytes, seconds);
}

// argv[index] as an integer in [low, high], `fallback` when absent; nullopt (with a message on
// rank 0) when it is not such an integer.
std::optional<int> parse_int(int argc, char** argv, int index, int fallback, int low, int high,
                             bool report) {
  if (argc <= index) return fallback;
  char* end = nullptr;
  const long value = std::strtol(argv[index], &end, 10);
  if (*end != '\0' || value < low || value > high) {
    if (report)
      std::fprintf(stderr,
                   "allreduce_probe: argument %d must be an integer in [%d, %d], got '%s'\n", index,
                   low, high, argv[index]);
    return std::nullopt;
  }
  return static_cast<int>(value);
}

}  // namespace

int main(int argc, char** argv) {
  spikevi::MpiSession mpi(&argc, &argv);
  auto comm = spikevi::make_world_communicator();
  const std::optional<int> max_log2 = parse_int(argc, argv, 1, 20, 0, 24, comm->is_root());
  const std::optional<int> batches = parse_int(argc, argv, 2, 10, 1, 1000, comm->is_root());
  if (!max_log2 || !batches) return 2;  // every rank sees the same arguments

  std::vector<SumResult> sums;
  std::vector<ReproducibleResult> reproducible;
  for (int k = 0; k <= *max_log2; ++k) {
    const std::size_t n = std::size_t{1} << k;
    sums.push_back(measure_sum(*comm, n, *batches));
    reproducible.push_back(measure_reproducible(*comm, n, *batches));
  }

  if (comm->is_root()) {
    std::printf(
        "allreduce through spikevi::Communicator: %d rank(s), %d timed batches per size, "
        "medians per call (slowest rank)\n",
        comm->size(), *batches);
    report_sum(sums, comm->size());
    report_reproducible(reproducible, sums, comm->size());
  }
  return 0;
}
