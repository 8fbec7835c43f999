#pragma once
// Model comparison by k-fold cross-validation over trials (DESIGN.md §7, §8 "Family check"):
// fold assignment, mean and standard error over folds, the comparison table's rows, its CSV
// and its printed form. Pure functions; `spikevi compare` runs the fits.
#include <Eigen/Dense>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "spikevi/math/gaussian_moments.hpp"
#include "spikevi/model/readout.hpp"

namespace spikevi {

// Folds of `trials` (file indices, any order): with the trials sorted ascending, the i-th is in
// fold i mod `folds`, so folds are disjoint, cover every trial, and their sizes differ by at
// most one (the first ones are the larger). ConfigError naming --folds when folds < 2 or
// folds > trials.size(); duplicate trials are an InputError.
std::vector<std::vector<int>> assign_folds(std::vector<int> trials, int folds);

// The trials of every fold but `fold`, ascending (the training set of that fold).
std::vector<int> training_trials_of(const std::vector<std::vector<int>>& folds, int fold);

// Mean and standard error of a figure over folds: se = sd / sqrt(n) with the sample standard
// deviation (n - 1 denominator). A NaN value makes both NaN (a figure that failed in one fold
// has no mean); n = 1 gives se = NaN, n = 0 both NaN.
struct Summary {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double se = std::numeric_limits<double>::quiet_NaN();
  int count = 0;
};
Summary summarise(const std::vector<double>& values);

// The median (mean of the two middle values for an even count); NaN for none. Values must not
// be NaN.
double median(std::vector<double> values);

// What one fold of one configuration gave, per spike of the trials scored.
struct FoldScores {
  double train_elbo_per_spike = 0.0;        // fit objective on the fold's training trials
  double heldout_elbo_per_spike = 0.0;      // held-out trials, globals fixed
  double heldout_ll_per_spike = 0.0;        // importance-sampled log p(x) of the held-out trials
  double heldout_ll_mc_se_per_spike = 0.0;  // its Monte Carlo standard error
  double cobps = 0.0;                       // co-smoothing bits/spike on the held-out trials
  double seconds = 0.0;                     // fit and scoring
};

// How far (nats per spike) a fold's held-out ELBO lies above its importance-sampled
// log-likelihood beyond what Monte Carlo error explains, or 0. The importance-sampling estimate
// (q as proposal) is a lower bound of log p(x) whose expectation is at least the exact ELBO, so
// an ELBO above it by more than 5 standard errors plus kElboExcessTolerance means the ELBO's
// expectations are wrong for this fit: the MLP readout's cubature, when the fit has learned to
// exploit its few nodes (docs/model-and-inference.md "The MLP readout").
inline constexpr double kElboExcessTolerance = 0.01;  // nats per spike
double elbo_excess_over_likelihood(const FoldScores& fold);

// One configuration (observation x family x latents x behaviour) of the comparison table.
struct ComparisonRow {
  std::string observation;  // observation_name()
  std::string family;       // family_name()
  int latents = 0;          // D
  // Whether the Gaussian modalities of /continuous shaped the latents: "use", "ignore", or
  // "none" when the data set has none.
  std::string continuous = "none";
  Summary elbo_per_spike;  // training ELBO per spike
  Summary heldout_elbo_per_spike;
  Summary heldout_ll_per_spike;
  double heldout_ll_mc_se = std::numeric_limits<double>::quiet_NaN();  // largest over folds
  Summary cobps;
  double seconds = 0.0;  // total over folds
  // Folds whose held-out ELBO lies above their held-out logp (elbo_excess_over_likelihood > 0),
  // and the mean excess over those folds.
  int folds_elbo_above_likelihood = 0;
  double mean_elbo_excess = 0.0;
  // Family check, in the mean-field row of an observation fitted with both families (NaN
  // elsewhere): mean over folds of (Gauss-Markov - mean-field) training ELBO per spike, and of
  // the median ratio of the posterior log-rate variances S_GM / S_MF, both families inferred at
  // the Gauss-Markov fit's globals.
  double family_elbo_gap_per_spike = std::numeric_limits<double>::quiet_NaN();
  double variance_ratio = std::numeric_limits<double>::quiet_NaN();
};

// The row of a configuration from its folds' scores (latents and continuous left as given).
ComparisonRow summarise_folds(const std::string& observation, const std::string& family,
                              const std::vector<FoldScores>& folds);

// What a row is selected by: mean co-smoothing bits/spike or held-out log-likelihood per spike.
enum class SelectionCriterion { kCosmoothing, kHeldoutLikelihood };
SelectionCriterion parse_selection_criterion(const std::string& name);  // "cobps", "heldout-ll"
std::string selection_criterion_name(SelectionCriterion criterion);
double selection_score(const ComparisonRow& row, SelectionCriterion criterion);

// The index of the row with the highest mean score (the first of equals); rows whose score is
// NaN (a failed fold) are passed over. InputError when no row has a score.
std::size_t best_row(const std::vector<ComparisonRow>& rows, SelectionCriterion criterion);

// Posterior variances of every neuron's log-rate eta_nt = c_n z_t + d_n under each trial's q:
// s2_nt = c_n' S_t c_n, N x T per trial. Unlike the latents' own variances these do not depend
// on the gauge a fit settled in (z -> M z + v with C -> C M^-1), so two separate fits (the
// family check) can be compared entry by entry.
std::vector<Eigen::ArrayXXd> log_rate_variances(const Readout& readout,
                                                const std::vector<GaussianMoments>& posteriors);

// The median over all trials, bins and latent dimensions of numerator / denominator
// (same shapes; InputError otherwise, or when there is no entry at all).
double median_variance_ratio(const std::vector<Eigen::ArrayXXd>& numerator,
                             const std::vector<Eigen::ArrayXXd>& denominator);

// The CSV columns, in order.
const std::vector<std::string>& comparison_columns();

// Header line and one line per row; numbers in the shortest form that reads back exactly, NaN
// as an empty cell.
void write_comparison_csv(std::ostream& out, const std::vector<ComparisonRow>& rows);

// Why an ELBO comparison alone can mislead; always part of the printed table.
extern const char* const kComparisonCaveat;

// The table as printed: one line per row with "mean ± se" figures, the family-check lines
// (observations fitted with both families) and kComparisonCaveat.
std::string format_comparison_table(const std::vector<ComparisonRow>& rows, int folds);

}  // namespace spikevi
