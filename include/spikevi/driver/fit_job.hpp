#pragma once
// A whole fit as one job (what `spikevi fit` runs; compare runs the same job on each fold):
// read this rank's shard of the training trials, continue from the newest valid checkpoint or
// initialise, iterate (variational_fit.hpp) with the caller's callbacks plus the checkpoint
// schedule and the timer, gather the posteriors, put the result in the canonical gauge and
// write the fit file. The command line only parses options into FitJobSettings and prints.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/driver/amortised_fit.hpp"
#include "spikevi/driver/fit_callbacks.hpp"
#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/model/gauge.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

struct FitJobSettings {
  std::string data;  // the input data set (docs/input-format.md)
  // The fit file to write; its checkpoints are OUT.checkpoint.h5 (and .prev). Empty: in
  // memory only (no checkpoint, no file).
  std::string out;
  FitSettings fit;
  bool use_continuous = true;  // fit the Gaussian modalities of /continuous with the spikes
  double epochs = 0.0;         // > 0 with minibatches: iterations = ceil(epochs K / |B|)
  int checkpoint_every = 10;   // also after the last iteration, on a stop and on a failure
  bool restart = false;        // insist on continuing from a checkpoint
  bool overwrite = false;      // replace `out`; without `restart`, start afresh
  // Settings (name -> value as text) a checkpoint must share with the fit that continues it:
  // those that change the iterations. The job adds the data's identity.
  std::map<std::string, std::string> identity;
  std::map<std::string, std::string> configuration;  // /config of the fit file
  std::map<std::string, std::string> provenance;     // root attributes of the fit file
  // `fit --inference amortised` (amortised_fit.hpp): train an encoder instead of local steps.
  // The encoder reads the held-in neurons; its checkpoints hold the encoder's state too.
  std::optional<AmortisedSettings> amortised;
};

// A line the job has to say (a header, where the data came from, a warning). Called on every
// rank; the caller prints it on rank 0, or not at all.
using JobNote = std::function<void(const std::string&)>;

struct FitJobResult {
  FitOutcome outcome;  // this rank's trials, globals as fitted (not gauged)
  FitTiming timing;
  double io_seconds = 0.0;      // reading, checkpoints and the fit file
  double total_seconds = 0.0;   // the whole job
  double peak_rss_bytes = 0.0;  // the largest resident set size over the ranks
  int ranks = 1;
  std::string checkpoint;  // OUT.checkpoint.h5 ("" in memory)
  // Rank 0 (and in memory): the record written to `out`, in the canonical gauge, with the
  // latents of every fitted trial. Empty when the fit was stopped or failed.
  FitRecord record;
  AffineGauge gauge;                                  // the canonical gauge `record` is in (rank 0)
  std::shared_ptr<const AmortisedOutcome> amortised;  // an amortised fit's encoder and traces
  // The /timing attributes of the fit file (see docs/output-files.md#timing).
  std::map<std::string, double> timing_record() const;
};

// The job on `settings.data` over the ranks of `comm`. ConfigError / InputError / OutputError
// for bad settings, data or outputs (before any iteration where they can be seen); a stopped or
// numerically failed fit returns with its termination (the checkpoint holds the state to
// continue from) and writes no fit file.
FitJobResult run_fit_job(const FitJobSettings& settings, Communicator& comm,
                         const std::vector<FitCallback*>& callbacks = {}, const JobNote& note = {});

// The same job on trials of a data set held in memory, on one process, with no checkpoint and
// no file: compare's folds. `trials` are file indices held by `data`.
FitJobResult run_fit_job(const Dataset& data, const std::vector<int>& trials,
                         const FitJobSettings& settings,
                         const std::vector<FitCallback*>& callbacks = {});

// The checkpoint of fit file `out`.
std::string checkpoint_path(const std::string& out);

}  // namespace spikevi
