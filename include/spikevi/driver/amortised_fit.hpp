#pragma once
// Amortised variational inference (`fit --inference amortised`; DESIGN.md §6 "Amortised
// inference", "KL annealing"; Archer et al. 2015, Gao et al. 2016): instead of a local step
// per trial, an encoder network (site_encoder.hpp) maps each trial's spike counts to the sites
// of its Gauss-Markov posterior. Iteration i, on the minibatch B_i (all trials in full batch):
//   1. every rank encodes its members, evaluates q and ELBO_beta_i exactly (site form; with
//      --history the spike eta holds the trial's offset B f_t), and backpropagates the gradient
//      of ELBO_beta_i (with --free-bits also that of E_q[ell]) into the encoder's weights;
//   2. ONE reproducible allreduce of [global statistics | encoder gradient | ELBO_beta | chain
//      KL | collapse sums | (free bits) E_q[ell]'s gradient] (reproducible_sum.hpp: the same
//      bits on any number of ranks);
//   3. every rank takes the same Adam step on the encoder (gradient scaled by K/|B|; free bits
//      pick the gradient from the reduced KL) and the same global step (global_step.hpp) on the
//      decoder — the spike readout, its row parameters, the history weights b_n, the dynamics
//      and the Gaussian modalities — at rho_i = (i - 1 + tau)^-kappa.
// The globals start from the iterative engine's initialisation and `initial_iterations`
// full-batch VB-EM iterations of it; the encoder from random weights.
#include <Eigen/Dense>
#include <functional>
#include <vector>

#include "spikevi/driver/variational_fit.hpp"
#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/optimizer.hpp"
#include "spikevi/inference/site_encoder.hpp"

namespace spikevi {

struct AmortisedSettings {
  int hidden = 32;                           // --encoder-hidden
  int window = 5;                            // --encoder-window (odd)
  AdamSettings adam{.learning_rate = 0.01};  // --encoder-rate
  // KL annealing: beta_i = beta0 + (1 - beta0) (i - 1) / warmup for i <= warmup, then 1.
  int kl_warmup = 0;
  double kl_beta0 = 0.01;
  // --free-bits lambda (Kingma et al. 2016, one group of all D dimensions): the encoder ascends
  // E_q[ell] - beta max(D lambda, KL per bin) summed over the batch's bins, KL that of the whole
  // chain, KL(q(z) || p(z)) = E_q[ell] - ELBO (its per-dimension split is not exact for a
  // Gauss-Markov q). So an iteration whose batch KL per bin (reduced over ranks: the same on
  // all) is below D lambda takes the gradient of E_q[ell] alone (beta recorded as 0); 0: off.
  // The decoder's step is the beta = 1 step either way, and "elbo" stays the ELBO.
  double free_bits = 0.0;
  int initial_iterations = 1;
  // The neurons the encoder reads (rows of the counts, ascending; empty: all): the held-in
  // neurons when a split holds some out, so that test trials can be encoded.
  std::vector<int> encoder_rows;
  // Called on every rank after every iteration with its diagnostics (printing).
  std::function<void(int iteration, double beta, const Eigen::VectorXd& kl_per_dimension,
                     int active_units)>
      on_diagnostics;
  double beta(int iteration) const;  // 1-based iteration
  // ConfigError naming the option.
  void validate() const;
};

struct AmortisedOutcome {
  FitOutcome fit;  // globals, trace, posteriors (encoder sites) of this rank's trials, elbo
  SiteEncoder encoder;
  std::vector<int> input_neurons;  // the rows of /counts the encoder reads
  AdamState encoder_moments;
  std::vector<double> beta;                // per iteration, the KL's weight taken (free bits: 0)
  std::vector<double> kl_per_bin;          // per iteration, the batch's chain KL per bin
  Eigen::MatrixXd kl_per_dimension;        // iterations x D (the minibatch's trials and bins)
  std::vector<int> active_units;           // per iteration
  Eigen::VectorXd final_kl_per_dimension;  // on every fitted trial at the final state
  Eigen::VectorXd final_mean_variance;
  int final_active_units = 0;
};

// Fits encoder and decoder on this rank's trials (as fit_variational). A numerical failure ends
// the fit (kNumericalFailure) with the state before the failed iteration. The FitState its
// callbacks see (checkpoints) holds the globals, the trace, the encoder's last sites and, in
// optimizer_state (names of amortised_state_template), the encoder's weights, Adam's moments
// and the per-iteration diagnostics; with `resume` the fit continues from such a state, bit
// for bit as if it had not stopped (at the same --iterations: the diagnostics are sized by it).
AmortisedOutcome fit_amortised(const std::vector<TrialCounts>& trials, const FitSettings& settings,
                               const AmortisedSettings& amortised, Communicator& comm,
                               const std::vector<FitCallback*>& callbacks = {},
                               const FitState* resume = nullptr);

// The names and shapes of the amortised state in FitState::optimizer_state for an encoder of
// `inputs` neurons and `latents` latents over `iterations` iterations (CheckpointLayout's
// extra_state).
OptimizerState amortised_state_template(const AmortisedSettings& amortised, int inputs, int latents,
                                        int iterations);

// The encoder's input of a trial: its counts on `rows` (all rows when empty).
Eigen::ArrayXXd encoder_input(const Eigen::ArrayXXd& counts, const std::vector<int>& rows);

}  // namespace spikevi
