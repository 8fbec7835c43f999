#pragma once
// The only window numerics have onto the processes of a run (DESIGN.md §4). Numerics take a
// Communicator& and never include mpi.h; SerialCommunicator is the one-process equivalent.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace spikevi {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Element-wise sum over all ranks, in place; every rank receives the result.
  virtual void allreduce_sum(std::span<double> values) = 0;
  // Element-wise maximum over all ranks, in place.
  virtual void allreduce_max(std::span<double> values) = 0;
  // Merges records of `words_per_record` 64-bit words element-wise over all ranks with
  // `merge` (associative and commutative); every rank receives the result, in place.
  using MergeRecords = void (*)(const std::int64_t* in, std::int64_t* inout, std::size_t records);
  virtual void allreduce_records(std::span<std::int64_t> words, std::size_t words_per_record,
                                 MergeRecords merge) = 0;
  // Copies root's values to every rank.
  virtual void broadcast(std::span<double> values, int root) = 0;
  virtual void barrier() = 0;
  bool is_root() const { return rank() == 0; }
  // Whether the ranks are MPI processes (then parallel HDF5 may read collectively over
  // MPI_COMM_WORLD, even with one rank); false for the serial communicator.
  virtual bool is_mpi() const { return false; }
};

class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::span<double>) override {}
  void allreduce_max(std::span<double>) override {}
  void allreduce_records(std::span<std::int64_t>, std::size_t, MergeRecords) override {}
  void broadcast(std::span<double>, int) override {}
  void barrier() override {}
};

// MPI_COMM_WORLD; MPI must already be initialised (see MpiSession).
std::unique_ptr<Communicator> make_world_communicator();

// RAII guard for MPI_Init_thread / MPI_Finalize, used by main() only.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // Ends every rank of the job with this status (for an error that not all ranks saw).
  [[noreturn]] static void abort(int status);
};

}  // namespace spikevi
