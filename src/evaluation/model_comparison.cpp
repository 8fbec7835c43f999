#include "spikevi/evaluation/model_comparison.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/version.hpp"

namespace spikevi {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The shortest %g text that reads back as exactly `x`; NaN as an empty cell.
std::string csv_number(double x) {
  if (std::isnan(x)) return "";
  char text[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, x);
    if (std::strtod(text, nullptr) == x) break;
  }
  return text;
}

std::string mean_and_se(const Summary& s, int width, int decimals) {
  char text[64];
  if (std::isnan(s.mean))
    std::snprintf(text, sizeof text, "%*s", width, "n/a");
  else if (!(std::abs(s.mean) < 1e6))  // a diverged fold: the magnitude is what matters
    std::snprintf(text, sizeof text, "%+.2e (diverged)", s.mean);
  else if (std::isnan(s.se))
    std::snprintf(text, sizeof text, "%+.*f", decimals, s.mean);
  else
    std::snprintf(text, sizeof text, "%+.*f ± %.*f", decimals, s.mean, decimals, s.se);
  std::string out = text;
  // "±" is two bytes but one column wide.
  const int columns = static_cast<int>(out.size()) - (out.find("±") != std::string::npos);
  if (columns < width) out.append(static_cast<std::size_t>(width - columns), ' ');
  return out;
}

}  // namespace

std::vector<std::vector<int>> assign_folds(std::vector<int> trials, int folds) {
  if (folds < 2) throw ConfigError("--folds must be >= 2 (got " + std::to_string(folds) + ")");
  if (static_cast<std::size_t>(folds) > trials.size())
    throw ConfigError("--folds " + std::to_string(folds) + " is more than the " +
                      std::to_string(trials.size()) +
                      " training trials: every fold needs at least one trial");
  std::sort(trials.begin(), trials.end());
  if (std::adjacent_find(trials.begin(), trials.end()) != trials.end())
    throw InputError("trial " + std::to_string(*std::adjacent_find(trials.begin(), trials.end())) +
                     " is listed twice among the training trials");
  std::vector<std::vector<int>> out(static_cast<std::size_t>(folds));
  for (std::size_t i = 0; i < trials.size(); ++i)
    out[i % static_cast<std::size_t>(folds)].push_back(trials[i]);
  return out;
}

std::vector<int> training_trials_of(const std::vector<std::vector<int>>& folds, int fold) {
  std::vector<int> out;
  for (std::size_t f = 0; f < folds.size(); ++f)
    if (static_cast<int>(f) != fold) out.insert(out.end(), folds[f].begin(), folds[f].end());
  std::sort(out.begin(), out.end());
  return out;
}

Summary summarise(const std::vector<double>& values) {
  Summary s;
  s.count = static_cast<int>(values.size());
  if (values.empty()) return s;
  double sum = 0.0;
  for (double v : values) sum += v;
  s.mean = sum / s.count;
  if (s.count < 2 || std::isnan(s.mean)) return s;
  double squares = 0.0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.se = std::sqrt(squares / (s.count - 1)) / std::sqrt(static_cast<double>(s.count));
  return s;
}

double median(std::vector<double> values) {
  if (values.empty()) return kNaN;
  const std::size_t half = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(half),
                   values.end());
  const double upper = values[half];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(half));
  return 0.5 * (lower + upper);
}

double elbo_excess_over_likelihood(const FoldScores& fold) {
  const double excess = fold.heldout_elbo_per_spike - fold.heldout_ll_per_spike;
  const double allowed = 5.0 * fold.heldout_ll_mc_se_per_spike + kElboExcessTolerance;
  return excess > allowed ? excess : 0.0;  // NaN scores (a failed fold) give 0
}

ComparisonRow summarise_folds(const std::string& observation, const std::string& family,
                              const std::vector<FoldScores>& folds) {
  ComparisonRow row;
  row.observation = observation;
  row.family = family;
  std::vector<double> train, heldout_elbo, heldout_ll, cobps;
  for (const FoldScores& f : folds) {
    train.push_back(f.train_elbo_per_spike);
    heldout_elbo.push_back(f.heldout_elbo_per_spike);
    heldout_ll.push_back(f.heldout_ll_per_spike);
    cobps.push_back(f.cobps);
    row.heldout_ll_mc_se = std::isnan(row.heldout_ll_mc_se)
                               ? f.heldout_ll_mc_se_per_spike
                               : std::max(row.heldout_ll_mc_se, f.heldout_ll_mc_se_per_spike);
    row.seconds += f.seconds;
    if (const double excess = elbo_excess_over_likelihood(f); excess > 0.0) {
      row.mean_elbo_excess += excess;
      ++row.folds_elbo_above_likelihood;
    }
  }
  if (row.folds_elbo_above_likelihood > 0) row.mean_elbo_excess /= row.folds_elbo_above_likelihood;
  row.elbo_per_spike = summarise(train);
  row.heldout_elbo_per_spike = summarise(heldout_elbo);
  row.heldout_ll_per_spike = summarise(heldout_ll);
  row.cobps = summarise(cobps);
  return row;
}

SelectionCriterion parse_selection_criterion(const std::string& name) {
  if (name == "cobps") return SelectionCriterion::kCosmoothing;
  if (name == "heldout-ll") return SelectionCriterion::kHeldoutLikelihood;
  throw ConfigError("--select must be cobps or heldout-ll (got '" + name + "')");
}

std::string selection_criterion_name(SelectionCriterion criterion) {
  return criterion == SelectionCriterion::kCosmoothing ? "cobps" : "heldout-ll";
}

double selection_score(const ComparisonRow& row, SelectionCriterion criterion) {
  return criterion == SelectionCriterion::kCosmoothing ? row.cobps.mean
                                                       : row.heldout_ll_per_spike.mean;
}

std::size_t best_row(const std::vector<ComparisonRow>& rows, SelectionCriterion criterion) {
  std::size_t best = rows.size();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double score = selection_score(rows[i], criterion);
    if (std::isnan(score)) continue;
    if (best == rows.size() || score > selection_score(rows[best], criterion)) best = i;
  }
  if (best == rows.size())
    throw InputError("no configuration of the comparison has a " +
                     selection_criterion_name(criterion) + " score in every fold");
  return best;
}

std::vector<Eigen::ArrayXXd> log_rate_variances(const Readout& readout,
                                                const std::vector<GaussianMoments>& posteriors) {
  const ReadoutKernels kernels(readout);
  std::vector<Eigen::ArrayXXd> out;
  out.reserve(posteriors.size());
  Eigen::ArrayXXd mean, variance;
  for (const GaussianMoments& q : posteriors) {
    kernels.eta_moments(q, mean, variance);
    out.push_back(variance);
  }
  return out;
}

double median_variance_ratio(const std::vector<Eigen::ArrayXXd>& numerator,
                             const std::vector<Eigen::ArrayXXd>& denominator) {
  if (numerator.size() != denominator.size())
    throw InputError("variance ratio: " + std::to_string(numerator.size()) + " trials against " +
                     std::to_string(denominator.size()));
  std::vector<double> ratios;
  for (std::size_t k = 0; k < numerator.size(); ++k) {
    if (numerator[k].rows() != denominator[k].rows() ||
        numerator[k].cols() != denominator[k].cols())
      throw InputError("variance ratio: trial " + std::to_string(k) +
                       " has posteriors of different shapes");
    for (Eigen::Index j = 0; j < numerator[k].size(); ++j)
      ratios.push_back(numerator[k].data()[j] / denominator[k].data()[j]);
  }
  if (ratios.empty()) throw InputError("variance ratio: no posterior variances to compare");
  return median(std::move(ratios));
}

const std::vector<std::string>& comparison_columns() {
  static const std::vector<std::string> columns{"observation",
                                                "family",
                                                "latents",
                                                "continuous",
                                                "elbo_per_spike",
                                                "elbo_se",
                                                "heldout_ll_per_spike",
                                                "heldout_ll_se",
                                                "cobps",
                                                "cobps_se",
                                                "seconds",
                                                "family_elbo_gap_per_spike",
                                                "variance_ratio",
                                                "version",
                                                "git_revision"};
  return columns;
}

void write_comparison_csv(std::ostream& out, const std::vector<ComparisonRow>& rows) {
  const std::vector<std::string>& columns = comparison_columns();
  for (std::size_t c = 0; c < columns.size(); ++c) out << (c ? "," : "") << columns[c];
  out << '\n';
  for (const ComparisonRow& r : rows) {
    out << r.observation << ',' << r.family << ',' << r.latents << ',' << r.continuous;
    for (double x : {r.elbo_per_spike.mean, r.elbo_per_spike.se, r.heldout_ll_per_spike.mean,
                     r.heldout_ll_per_spike.se, r.cobps.mean, r.cobps.se, r.seconds,
                     r.family_elbo_gap_per_spike, r.variance_ratio})
      out << ',' << csv_number(x);
    // Provenance in every row, so that rows pasted together from several tables keep theirs.
    out << ',' << version() << ',' << git_revision() << '\n';
  }
}

const char* const kComparisonCaveat =
    "caveat: an ELBO comparison between models is fair only when their approximation gaps\n"
    "(log p(x) - ELBO) are similar, and the negative binomial's point-estimated shapes favour\n"
    "the richer model; the held-out log-likelihood and co-smoothing figures beside it are the\n"
    "fairer comparison.\n";

std::string format_comparison_table(const std::vector<ComparisonRow>& rows, int folds) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-18s %-13s %3s %-10s %-22s %-22s %-22s %-22s %9s\n",
                "observation", "family", "D", "continuous", "train ELBO/spike",
                "held-out ELBO/spike", "held-out logp/spike", "co-bps", "time (s)");
  out << line;
  for (const ComparisonRow& r : rows) {
    std::snprintf(line, sizeof line, "%-18s %-13s %3d %-10s %s %s %s %s %9.1f\n",
                  r.observation.c_str(), r.family.c_str(), r.latents, r.continuous.c_str(),
                  mean_and_se(r.elbo_per_spike, 22, 4).c_str(),
                  mean_and_se(r.heldout_elbo_per_spike, 22, 4).c_str(),
                  mean_and_se(r.heldout_ll_per_spike, 22, 4).c_str(),
                  mean_and_se(r.cobps, 22, 4).c_str(), r.seconds);
    out << line;
  }
  std::snprintf(line, sizeof line,
                "mean ± standard error over %d folds (nats per spike; co-bps in bits per "
                "held-out spike; higher is better)\n",
                folds);
  out << line;
  double mc_se = kNaN;
  for (const ComparisonRow& r : rows)
    if (!std::isnan(r.heldout_ll_mc_se))
      mc_se = std::isnan(mc_se) ? r.heldout_ll_mc_se : std::max(mc_se, r.heldout_ll_mc_se);
  if (!std::isnan(mc_se)) {
    std::snprintf(line, sizeof line,
                  "held-out logp: importance sampling with q(z) as proposal; its Monte Carlo "
                  "standard error is at most %.2g nats per spike in any fold\n",
                  mc_se);
    out << line;
  }
  for (const ComparisonRow& r : rows) {
    if (std::isnan(r.variance_ratio) && std::isnan(r.family_elbo_gap_per_spike)) continue;
    std::snprintf(
        line, sizeof line,
        "family check (%s, D = %d%s): gauss-markov - mean-field training ELBO %+.4f nats/spike; "
        "median ratio of the posterior log-rate variances S_GM/S_MF at the "
        "Gauss-Markov fit's globals %.3f (mean over folds)%s\n",
        r.observation.c_str(), r.latents,
        r.continuous == "none" ? "" : (", continuous " + r.continuous).c_str(),
        r.family_elbo_gap_per_spike, r.variance_ratio,
        r.variance_ratio > 1.0 ? ": mean-field is over-confident" : "");
    out << line;
  }
  for (const ComparisonRow& r : rows) {
    if (r.folds_elbo_above_likelihood == 0) continue;
    std::snprintf(line, sizeof line,
                  "warning (%s, D = %d): in %d of %d folds the held-out ELBO lies %.3f "
                  "nats/spike above the importance-sampled logp, which exact expectations cannot "
                  "do: this model's ELBO is inflated by the error of its expectations; judge it by "
                  "logp and co-bps only\n",
                  r.observation.c_str(), r.latents, r.folds_elbo_above_likelihood, folds,
                  r.mean_elbo_excess);
    out << line;
  }
  out << kComparisonCaveat;
  return out.str();
}

}  // namespace spikevi
