#pragma once
// Co-smoothing of an amortised fit (DESIGN.md §6-7): the test trials' q(z) from the trained
// encoder applied to their held-in neurons (its sites, in the fit file's gauge), optionally
// refined by N natural-gradient local steps started from those sites (`evaluate --refine N`),
// then the held-out neurons predicted and scored exactly as for an iterative fit
// (evaluation.hpp), so the two modes are comparable.
#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/io/encoder_file.hpp"

namespace spikevi {

// q of each trial (counts over every neuron of the file; the encoder reads its input neurons,
// the likelihood of a refinement the rows of `model`, restricted by the caller) from the
// encoder's sites, then up to `refine` CVI steps (0: the encoder's q itself; then only the
// states' sites and moments are filled: the likelihood is not evaluated, elbo stays 0).
std::vector<GaussMarkovState> encode_latents(const InferenceModel& model,
                                             const EncoderRecord& encoder,
                                             const std::vector<TrialCounts>& all_neuron_trials,
                                             const std::vector<int>& likelihood_rows, int refine,
                                             const LocalStepSettings& settings);

// As cosmooth(), with the test trials' latents from the encoder (and `refine` local steps).
// InputError when the encoder reads a held-out neuron of the split (it would see the answer).
CosmoothingResult cosmooth_amortised(const InferenceModel& model, const EncoderRecord& encoder,
                                     const Dataset& data, int refine,
                                     const LocalStepSettings& settings);

}  // namespace spikevi
