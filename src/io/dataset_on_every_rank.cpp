// The collective read of a data set with one verdict for all ranks (dataset.hpp).
#include <iostream>

#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"

namespace spikevi {

Dataset read_dataset_on_every_rank(const std::string& path, const ReadOptions& options,
                                   Communicator& comm) {
  Dataset data;
  std::string message;
  try {
    data = read_dataset(path, options);
  } catch (const InputError& error) {
    message = error.what();
  }
  // The largest (size - rank) among failing ranks names the lowest failing rank.
  double lowest_failing = message.empty() ? 0.0 : double(comm.size() - comm.rank());
  comm.allreduce_max(std::span<double>(&lowest_failing, 1));
  if (lowest_failing == 0.0) return data;
  if (comm.size() - comm.rank() == static_cast<int>(lowest_failing))
    std::cerr << "spikevi: error: " << message << std::endl;
  throw PeerFailure(3);
}

}  // namespace spikevi
