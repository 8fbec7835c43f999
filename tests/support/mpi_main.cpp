// main() of the tests/mpi_*.cpp executables: MPI is initialised around the GoogleTest run,
// only rank 0 prints, and the job fails when a test fails on any rank.
#include <gtest/gtest.h>

#include <memory>

#include "spikevi/parallel/communicator.hpp"
#include "support/mpi_test.hpp"

namespace spikevi::testing {
namespace {
Communicator* world_communicator = nullptr;
}
Communicator& world() { return *world_communicator; }
}  // namespace spikevi::testing

int main(int argc, char** argv) {
  spikevi::MpiSession mpi(&argc, &argv);
  const std::unique_ptr<spikevi::Communicator> world = spikevi::make_world_communicator();
  spikevi::testing::world_communicator = world.get();
  ::testing::InitGoogleTest(&argc, argv);
  if (!world->is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  double failed = RUN_ALL_TESTS() != 0 ? 1.0 : 0.0;
  world->allreduce_max(std::span<double>(&failed, 1));  // a failure on any rank fails them all
  return failed > 0 ? 1 : 0;
}
