// The only file that calls MPI (STYLE.md "Communication and I/O live in one place each").
#include <mpi.h>

#include <stdexcept>

#include "spikevi/communicator.hpp"

namespace spikevi {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(std::span<double> values) override { reduce(values, MPI_SUM); }
  void allreduce_max(std::span<double> values) override { reduce(values, MPI_MAX); }
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
