// The only file that calls MPI (STYLE.md "Communication and I/O live in one place each").
#include <mpi.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "spikevi/parallel/communicator.hpp"

namespace spikevi {
namespace {

// The merge of the allreduce_records() call in progress: an MPI user operation takes no
// context argument. Set only around that collective, which only the one MPI thread calls
// (MPI_THREAD_FUNNELED).
Communicator::MergeRecords active_merge = nullptr;

void apply_active_merge(void* in, void* inout, int* records, MPI_Datatype*) {
  active_merge(static_cast<const std::int64_t*>(in), static_cast<std::int64_t*>(inout),
               static_cast<std::size_t>(*records));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool is_mpi() const override { return true; }
  void allreduce_sum(std::span<double> values) override { reduce(values, MPI_SUM); }
  void allreduce_max(std::span<double> values) override { reduce(values, MPI_MAX); }
  void allreduce_records(std::span<std::int64_t> words, std::size_t words_per_record,
                         MergeRecords merge) override {
    if (words_per_record == 0 || words.size() % words_per_record != 0)
      throw std::invalid_argument("allreduce_records: " + std::to_string(words.size()) +
                                  " words are no whole number of records of " +
                                  std::to_string(words_per_record));
    if (words.empty()) return;
    MPI_Datatype record_type;
    MPI_Type_contiguous(static_cast<int>(words_per_record), MPI_INT64_T, &record_type);
    MPI_Type_commit(&record_type);
    MPI_Op op;
    MPI_Op_create(&apply_active_merge, /*commute=*/1, &op);
    active_merge = merge;
    const std::size_t records = words.size() / words_per_record;
    constexpr std::size_t kMaxCount = std::numeric_limits<int>::max();
    for (std::size_t first = 0; first < records; first += kMaxCount) {
      const std::size_t count = std::min(records - first, kMaxCount);
      MPI_Allreduce(MPI_IN_PLACE, words.data() + first * words_per_record, static_cast<int>(count),
                    record_type, op, MPI_COMM_WORLD);
    }
    active_merge = nullptr;
    MPI_Op_free(&op);
    MPI_Type_free(&record_type);
  }
  void broadcast(std::span<double> values, int root) override {
    if (!values.empty())
      MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, root, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  void reduce(std::span<double> values, MPI_Op op) {
    if (values.empty()) return;
    MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, op,
                  MPI_COMM_WORLD);
  }
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator() {
  return std::make_unique<MpiCommunicator>();
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int status) {
  MPI_Abort(MPI_COMM_WORLD, status);
  throw std::logic_error("MPI_Abort returned");
}

}  // namespace spikevi
