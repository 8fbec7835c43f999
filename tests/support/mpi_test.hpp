#pragma once
// For tests/mpi_*.cpp: the world communicator of the running job (set up by mpi_main.cpp).
#include "spikevi/parallel/communicator.hpp"

namespace spikevi::testing {
Communicator& world();
}  // namespace spikevi::testing
