#pragma once
// Checkpoints of a fit (DESIGN.md §5): one HDF5 file holding a FitState — the global
// parameters, every trial's sites (each rank writes its own rows in one collective
// parallel-HDF5 write), the iteration counter (which, with the seed, is the whole state of the
// counter-based random streams), the configuration it belongs to, the rank count and
// checksums. Written to NAME.tmp and renamed into place, the previous checkpoint kept as
// NAME.prev, so a crash during a write never leaves the newest usable checkpoint damaged.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

// Where this rank's trials go among all K of the fit.
struct CheckpointLayout {
  int first_position = 0;  // position of this rank's first trial
  int population = 0;      // K
  int padded_bins = 0;     // the longest trial
  std::vector<int> bins;   // this rank's trials' lengths
  int dim = 0, neurons = 0;
  ModelLayout model;  // shapes, continuous modalities, inputs
  // Names and shapes of further state a driver keeps in FitState::optimizer_state beside the
  // optimiser's (the amortised fit's encoder, amortised_fit.hpp); read back like it.
  OptimizerState extra_state;
};

// The settings a checkpoint must share with the fit that continues it (name -> value as text).
using CheckpointIdentity = std::map<std::string, std::string>;

std::string previous_checkpoint_path(const std::string& path);  // path + ".prev"

// A fingerprint of the fitted data: a hash of every trial's position, length and counts,
// combined over ranks exactly, so the same on any rank count (one reduction). Part of a
// checkpoint's identity: a checkpoint of other data (even of the same shape) is refused.
std::string data_fingerprint(const std::vector<TrialCounts>& trials, Communicator& comm);

// Collective: every rank calls it with its own sites. A non-finite state is refused
// (NumericalError) before anything is written. `current_is_valid`: the file now at `path` (if
// any) is a valid checkpoint of this fit, to be kept as the previous one; otherwise (damaged,
// or another fit's) it is moved aside to `path`.old and the previous one stays.
void write_checkpoint(const std::string& path, const FitState& state,
                      const CheckpointLayout& layout, const CheckpointIdentity& identity,
                      Communicator& comm, bool current_is_valid = true);

struct LoadedCheckpoint {
  FitState state;
  std::string path;  // the file it came from (the newest or the previous one)
  int ranks = 0;     // rank count that wrote it
};

// Collective: the newest valid checkpoint among `path` and its previous one, the same verdict
// on every rank. A corrupt or unreadable file is skipped with a warning (rank 0, stderr); a
// valid one written for other settings throws ConfigError naming the first setting that
// differs. Returns nothing when no valid checkpoint exists.
std::optional<LoadedCheckpoint> read_checkpoint(const std::string& path,
                                                const CheckpointLayout& layout,
                                                const CheckpointIdentity& identity,
                                                Communicator& comm);

}  // namespace spikevi
