#pragma once
// A data set in the layout of docs/input-format.md, held in memory trial by trial. A process
// may hold only a contiguous block of trials (MPI sharding); metadata covers all trials.
#include <Eigen/Dense>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/model/spike_model.hpp"
#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

struct Split {
  std::vector<int> train_trials;            // 0-based, as in /split/train_trials
  std::vector<int> test_trials;             // 0-based
  std::vector<int> heldout_neurons;         // 0-based
  std::vector<int> heldin_neurons() const;  // the complement, ascending (needs neuron count)
  int neurons = 0;                          // total neuron count, for heldin_neurons()
};

// Ground truth of a Gaussian modality /continuous/NAME: y_tj ~ N(W_j.z_t + e_j, R_j).
struct ContinuousTruth {
  Eigen::MatrixXd W;  // channels x D, /truth/NAME_W
  Eigen::VectorXd e;  // channels, /truth/NAME_e
  Eigen::VectorXd R;  // channels, /truth/NAME_R (variances)
};

// Ground truth of a simulated data set (/truth). Per-trial arrays only for the held trials.
struct Truth {
  std::string observation = "poisson";  // attribute `observation`: a SpikeModel's name
  Eigen::MatrixXd C;                    // N x D
  Eigen::VectorXd d;                    // N
  Eigen::MatrixXd A;                    // D x D
  Eigen::VectorXd b;                    // D
  Eigen::MatrixXd B;                    // D x inputs, with /inputs (else empty)
  Eigen::MatrixXd Q;                    // D x D
  Eigen::VectorXd mu0;                  // D
  Eigen::MatrixXd Sigma0;               // D x D
  // The spike model's row parameters, /truth/NAME [N] (the negative binomial's "dispersion").
  std::map<std::string, Eigen::VectorXd> row_parameters;
  std::vector<Eigen::MatrixXd> latents;  // per held trial: D x T_k
  std::vector<Eigen::MatrixXd> rates;    // per held trial: N x T_k, expected counts per bin
  std::map<std::string, ContinuousTruth> continuous;  // per modality NAME of /continuous/NAME
  // A simulated MLP readout (simulation.hpp; empty otherwise): /truth/mlp_A [N, H],
  // /truth/mlp_W [H, D], /truth/mlp_b [H]; eta = C z + d + A tanh(W z + b).
  Eigen::MatrixXd mlp_A, mlp_W;
  Eigen::VectorXd mlp_b;
  int dim() const { return static_cast<int>(A.rows()); }
};

struct Dataset {
  std::string path;  // file it came from ("" if made in memory)
  int trials = 0;    // in the file
  int bins = 0;      // padded length (second dimension of /counts)
  int neurons = 0;
  double bin_width_s = 0.0;
  std::vector<int> trial_lengths;  // all trials, 1..bins

  int first_trial = 0;  // the held trials are first_trial .. first_trial + held() - 1
  std::vector<Eigen::MatrixXd> counts;  // per held trial: N x T_k (column t = bin t), as doubles
  // per modality NAME of /continuous/NAME, per held trial: channels x T_k, NaN = missing
  std::map<std::string, std::vector<Eigen::MatrixXd>> continuous;
  std::vector<Eigen::MatrixXd> inputs;  // per held trial: inputs x T_k, empty if none
  // /counts came in one collective MPI-IO read (ReadOptions::collective, and HDF5 did not fall
  // back to independent I/O on this rank)
  bool counts_read_collectively = false;

  std::optional<Split> split;
  std::optional<Truth> truth;

  int held() const { return static_cast<int>(counts.size()); }
  bool holds(int trial) const { return trial >= first_trial && trial < first_trial + held(); }
  const Eigen::MatrixXd& trial_counts(int trial) const { return counts.at(trial - first_trial); }
  double total_spikes() const;  // over held trials, valid bins only
};

struct ReadOptions {
  int first_trial = 0;
  int trial_count = -1;  // -1: all trials from first_trial on
  bool read_truth = true;
  bool read_continuous = true;
  // Parallel HDF5: the file is opened with MPI-IO over MPI_COMM_WORLD and each rank's block of
  // /counts comes in one collective read. Every rank must then call read_dataset with the same
  // path and options (trials apart); each still gets its own verdict, thrown only after the
  // file is closed on every rank, so that an error on one rank leaves none waiting.
  bool collective = false;
  // Where /truth's `observation` is looked up (nullptr: builtin_spike_models()).
  const SpikeModelCatalogue* spike_models = nullptr;
};

// /split/train_trials ascending (all trials when the file lists no training trials):
// ascending, so that each MPI rank's share is one contiguous block of the file.
std::vector<int> training_trials(const Dataset& data);

// Reads and validates a file (docs/input-format.md#refused-files). Throws InputError naming the
// file, the dataset and the offending value for every violation the format lists. Holds only the
// requested block of trials of /counts, /continuous, /inputs and /truth's per-trial arrays.
Dataset read_dataset(const std::string& path, const ReadOptions& options = {});

// read_dataset on every rank, with one verdict: if any rank's read fails (each rank validates
// its own block of trials), the lowest failing rank prints its error ("spikevi: error: ...") and
// every rank throws PeerFailure(3), so no rank is left waiting in a later collective.
Dataset read_dataset_on_every_rank(const std::string& path, const ReadOptions& options,
                                   Communicator& comm);

// Writes a complete data set (all trials held) in the format, counts as int32 chunked by
// trial, with /split and /truth when present, and `provenance` as root string attributes (what
// wrote the file: simulate's version, git_revision, date, ...). Overwrites `path`.
void write_dataset(const std::string& path, const Dataset& data,
                   const std::map<std::string, std::string>& provenance = {});

}  // namespace spikevi
