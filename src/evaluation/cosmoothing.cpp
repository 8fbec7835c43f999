#include "spikevi/evaluation/cosmoothing.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <sstream>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/poisson_regression_batch.hpp"
#include "spikevi/math/smoothing.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi {
namespace {

constexpr double kZeroRateFloor = 1e-9;  // NLB's stand-in for a predicted rate of 0
// Relative Newton-decrement tolerances of the baseline's batched regressions: the folds' fits
// only rank the candidates (their validation log-likelihoods move by < 1e-8 bits per spike
// below 1e-12), the final fit gives the written rates (within ~1e-6 of the optimum at 1e-14;
// the single-regression Newton's 1e-10 left them up to 1e-4 away).
constexpr double kCrossValidationTolerance = 1e-12;
constexpr double kFinalFitTolerance = 1e-14;

std::string shape(const Eigen::MatrixXd& m) {
  return std::to_string(m.rows()) + " x " + std::to_string(m.cols());
}

// x log r with 0 log r = 0 (also for r = 0), and r = 0 read as kZeroRateFloor when x > 0.
double x_log_r(double x, double r) {
  return x == 0.0 ? 0.0 : x * std::log(r > 0.0 ? r : kZeroRateFloor);
}

// A double as printed by an ostream: "-0.5", "nan", "1e-09".
std::string number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

bool finite_non_negative(double x) { return std::isfinite(x) && x >= 0.0; }

void check_score_trial(std::size_t k, const Eigen::MatrixXd& rates, const Eigen::MatrixXd& counts,
                       Eigen::Index neurons) {
  const std::string trial = "bits_per_spike: test trial " + std::to_string(k);
  if (counts.rows() != neurons || rates.rows() != counts.rows() || rates.cols() != counts.cols())
    throw InputError(trial + ": predicted rates are " + shape(rates) + ", held-out counts " +
                     shape(counts) + ", expected " + std::to_string(neurons) + " neurons each");
  for (Eigen::Index t = 0; t < counts.cols(); ++t)
    for (Eigen::Index n = 0; n < neurons; ++n) {
      if (finite_non_negative(rates(n, t)) && finite_non_negative(counts(n, t))) continue;
      throw InputError(trial + ", held-out neuron " + std::to_string(n) + ", bin " +
                       std::to_string(t) + ": predicted rate " + number(rates(n, t)) +
                       " and count " + number(counts(n, t)) +
                       " must both be finite and non-negative");
    }
}

// Sum over bins of (r - x log r): the Poisson NLL without the log x! terms.
double poisson_nll(const Eigen::MatrixXd& rates, const Eigen::MatrixXd& counts) {
  double total = 0.0;
  for (Eigen::Index t = 0; t < counts.cols(); ++t)
    for (Eigen::Index n = 0; n < counts.rows(); ++n)
      total += rates(n, t) - x_log_r(counts(n, t), rates(n, t));
  return total;
}

// Columns centred and scaled to unit SD (SD 0 -> scale 1), the design [1, standardised X].
struct Standardised {
  Eigen::RowVectorXd mean, scale;
  Eigen::MatrixXd design;
};

Standardised standardise(const Eigen::MatrixXd& features) {
  Standardised s;
  const double rows = static_cast<double>(features.rows());
  s.mean = features.colwise().mean();
  const Eigen::MatrixXd centred = features.rowwise() - s.mean;
  s.scale = (centred.colwise().squaredNorm() / rows).cwiseSqrt();
  for (Eigen::Index j = 0; j < s.scale.size(); ++j)
    if (!(s.scale(j) > 0.0)) s.scale(j) = 1.0;
  s.design.resize(features.rows(), features.cols() + 1);
  s.design.col(0).setOnes();
  s.design.rightCols(features.cols()) = centred.array().rowwise() / s.scale.array();
  return s;
}

// The penalised objective sum(exp(eta) - y eta) + penalty/2 |beta_1:|^2 and eta = X beta.
double glm_objective(const Eigen::MatrixXd& design, const Eigen::VectorXd& counts,
                     const Eigen::VectorXd& beta, double penalty) {
  const Eigen::VectorXd eta = design * beta;
  return eta.array().exp().sum() - counts.dot(eta) +
         0.5 * penalty * beta.tail(beta.size() - 1).squaredNorm();
}

// The Newton direction -H^-1 g at beta, with H = X' diag(mu) X + penalty (weights only).
Eigen::VectorXd newton_direction(const Eigen::MatrixXd& design, const Eigen::VectorXd& counts,
                                 const Eigen::VectorXd& beta, double penalty,
                                 Eigen::VectorXd& gradient) {
  const Eigen::ArrayXd mu = (design * beta).array().exp();
  gradient = design.transpose() * (mu.matrix() - counts);
  gradient.tail(beta.size() - 1) += penalty * beta.tail(beta.size() - 1);
  const Eigen::MatrixXd weighted = design.array().colwise() * mu.sqrt();
  Eigen::MatrixXd hessian = Eigen::MatrixXd::Zero(beta.size(), beta.size());
  hessian.selfadjointView<Eigen::Lower>().rankUpdate(weighted.transpose());
  hessian.diagonal().tail(beta.size() - 1).array() += penalty;
  // Without a penalty, collinear features make H singular: a relative jitter keeps it SPD.
  hessian.diagonal().array() += 1e-12 * (1.0 + hessian.diagonal().maxCoeff());
  return hessian.selfadjointView<Eigen::Lower>().ldlt().solve(-gradient);
}

void check_regression_input(const Eigen::MatrixXd& features, const Eigen::VectorXd& counts,
                            const PoissonRegressionSettings& settings,
                            const PoissonRegression* start) {
  if (start && (start->weights.size() != features.cols() || !start->weights.allFinite() ||
                !std::isfinite(start->intercept)))
    throw InputError("fit_poisson_regression: the warm start has " +
                     std::to_string(start->weights.size()) + " weights (need " +
                     std::to_string(features.cols()) + ", finite)");
  if (features.rows() != counts.size() || counts.size() == 0)
    throw InputError("fit_poisson_regression: features are " + shape(features) + " but there are " +
                     std::to_string(counts.size()) + " counts (need equal, > 0)");
  if (!features.allFinite() || !counts.allFinite() || (counts.array() < 0.0).any())
    throw InputError("fit_poisson_regression: non-finite feature or negative/non-finite count");
  if (!(counts.sum() > 0.0))
    throw InputError("fit_poisson_regression: all counts are zero (the fit has rate 0)");
  if (!(settings.penalty >= 0.0) || !std::isfinite(settings.penalty))
    throw ConfigError("fit_poisson_regression: penalty must be finite and >= 0 (got " +
                      number(settings.penalty) + ")");
}

// fit_poisson_regression on features already standardised (`s`, of features with
// s.design.cols() - 1 columns): the baseline standardises its features once for every neuron.
PoissonRegression fit_standardised(const Standardised& s, const Eigen::VectorXd& counts,
                                   const PoissonRegressionSettings& settings,
                                   const PoissonRegression* start = nullptr) {
  const Eigen::Index columns = s.design.cols() - 1;
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(s.design.cols());
  beta(0) = std::log(counts.mean());
  if (start) {  // the same model in standardised coordinates
    beta.tail(columns) = start->weights.cwiseProduct(s.scale.transpose());
    beta(0) = start->intercept + s.mean.dot(start->weights);
  }
  double objective = glm_objective(s.design, counts, beta, settings.penalty);
  PoissonRegression fit;
  Eigen::VectorXd gradient;
  for (; fit.iterations < settings.max_iterations; ++fit.iterations) {
    const Eigen::VectorXd step =
        newton_direction(s.design, counts, beta, settings.penalty, gradient);
    const double slope = gradient.dot(step);  // -(Newton decrement)^2
    if (-0.5 * slope <= settings.tolerance * (1.0 + std::abs(objective))) {
      fit.converged = true;
      break;
    }
    double t = 1.0, trial = objective;
    for (int halving = 0; halving < 60; ++halving, t *= 0.5) {
      trial = glm_objective(s.design, counts, beta + t * step, settings.penalty);
      if (trial <= objective + 0.25 * t * slope) break;  // Armijo; NaN/inf rejected
    }
    if (!(trial <= objective + 0.25 * t * slope)) break;  // no descent left: stop
    beta += t * step;
    objective = trial;
  }
  fit.weights = beta.tail(columns).cwiseQuotient(s.scale.transpose());
  fit.intercept = beta(0) - s.mean.dot(fit.weights);
  return fit;
}

}  // namespace

double bits_per_spike(const std::vector<Eigen::MatrixXd>& predicted_rates,
                      const std::vector<Eigen::MatrixXd>& heldout_counts) {
  if (predicted_rates.size() != heldout_counts.size() || heldout_counts.empty())
    throw InputError("bits_per_spike: " + std::to_string(predicted_rates.size()) +
                     " trials of predicted rates, " + std::to_string(heldout_counts.size()) +
                     " of held-out counts (need equal, > 0)");
  const Eigen::Index neurons = heldout_counts.front().rows();
  Eigen::VectorXd spikes = Eigen::VectorXd::Zero(neurons);
  double bins = 0.0;
  double nll_model = 0.0;
  for (std::size_t k = 0; k < heldout_counts.size(); ++k) {
    check_score_trial(k, predicted_rates[k], heldout_counts[k], neurons);
    nll_model += poisson_nll(predicted_rates[k], heldout_counts[k]);
    spikes += heldout_counts[k].rowwise().sum();
    bins += static_cast<double>(heldout_counts[k].cols());
  }
  const double total = spikes.sum();
  if (!(total > 0.0)) throw InputError("bits_per_spike: the held-out neurons have no spikes");
  // Null model: rate spikes_n / bins in every bin, so its rates sum to spikes_n.
  double nll_null = 0.0;
  for (Eigen::Index n = 0; n < neurons; ++n)
    nll_null += spikes(n) - x_log_r(spikes(n), spikes(n) / bins);
  return (nll_null - nll_model) / (total * std::numbers::ln2);
}

Eigen::VectorXd PoissonRegression::predict(const Eigen::MatrixXd& features) const {
  return ((features * weights).array() + intercept).exp().matrix();
}

PoissonRegression fit_poisson_regression(const Eigen::MatrixXd& features,
                                         const Eigen::VectorXd& counts,
                                         const PoissonRegressionSettings& settings,
                                         const PoissonRegression* start) {
  check_regression_input(features, counts, settings, start);
  return fit_standardised(standardise(features), counts, settings, start);
}

// --- Smoothed-spikes baseline -----------------------------------------------------------

namespace {

void check_baseline_settings(const SmoothingBaselineSettings& s) {
  auto require = [](bool ok, const std::string& what, double value) {
    if (!ok) throw ConfigError("smoothing baseline: " + what + " (got " + number(value) + ")");
  };
  require(s.kernel_sd_bins > 0.0, "kernel_sd_bins must be > 0", s.kernel_sd_bins);
  for (double sd : s.kernel_sd_candidates)
    require(sd > 0.0, "kernel_sd_candidates must be > 0", sd);
  require(s.ridge >= 0.0 && std::isfinite(s.ridge), "ridge must be finite and >= 0", s.ridge);
  for (double ridge : s.ridge_candidates)
    require(ridge >= 0.0 && std::isfinite(ridge), "ridge_candidates must be finite and >= 0",
            ridge);
  require(s.folds >= 2, "folds must be >= 2", s.folds);
  require(s.max_newton_iterations >= 1, "max_newton_iterations must be >= 1",
          s.max_newton_iterations);
}

void check_rows(const std::vector<Eigen::MatrixXd>& trials, Eigen::Index rows, const char* name) {
  for (std::size_t k = 0; k < trials.size(); ++k)
    if (trials[k].rows() != rows || trials[k].cols() == 0)
      throw InputError(std::string("smoothing baseline: ") + name + " trial " + std::to_string(k) +
                       " is " + shape(trials[k]) + ", expected " + std::to_string(rows) +
                       " neurons and > 0 bins");
}

void check_baseline_input(const std::vector<Eigen::MatrixXd>& train_heldin,
                          const std::vector<Eigen::MatrixXd>& train_heldout,
                          const std::vector<Eigen::MatrixXd>& test_heldin) {
  if (train_heldin.empty() || train_heldin.size() != train_heldout.size())
    throw InputError("smoothing baseline: " + std::to_string(train_heldin.size()) +
                     " held-in and " + std::to_string(train_heldout.size()) +
                     " held-out train trials (need equal, > 0)");
  check_rows(train_heldin, train_heldin.front().rows(), "held-in train");
  check_rows(train_heldout, train_heldout.front().rows(), "held-out train");
  check_rows(test_heldin, train_heldin.front().rows(), "held-in test");
  for (std::size_t k = 0; k < train_heldin.size(); ++k)
    if (train_heldin[k].cols() != train_heldout[k].cols())
      throw InputError("smoothing baseline: train trial " + std::to_string(k) + " has " +
                       std::to_string(train_heldin[k].cols()) + " held-in and " +
                       std::to_string(train_heldout[k].cols()) + " held-out bins");
}

// The regression's features of one trial: its held-in counts smoothed, then transformed.
Eigen::MatrixXd smoothed_features(const Eigen::MatrixXd& trial, double sd_bins,
                                  SmoothingFeatures features) {
  Eigen::MatrixXd smoothed = gaussian_smooth_rows(trial, sd_bins);
  if (features == SmoothingFeatures::kLog) smoothed = (smoothed.array() + 1e-4).log().matrix();
  return smoothed;
}

std::vector<Eigen::MatrixXd> smooth_trials(const std::vector<Eigen::MatrixXd>& trials,
                                           double sd_bins, SmoothingFeatures features) {
  std::vector<Eigen::MatrixXd> out;
  out.reserve(trials.size());
  for (const Eigen::MatrixXd& trial : trials)
    out.push_back(smoothed_features(trial, sd_bins, features));
  return out;
}

// The chosen trials' neurons x T_k matrices, stacked as one (sum T_k) x neurons matrix.
Eigen::MatrixXd stack_bins(const std::vector<Eigen::MatrixXd>& trials,
                           const std::vector<std::size_t>& chosen) {
  Eigen::Index rows = 0;
  for (std::size_t k : chosen) rows += trials[k].cols();
  Eigen::MatrixXd out(rows, chosen.empty() ? 0 : trials[chosen.front()].rows());
  Eigen::Index row = 0;
  for (std::size_t k : chosen) {
    out.middleRows(row, trials[k].cols()) = trials[k].transpose();
    row += trials[k].cols();
  }
  return out;
}

// The fit of a held-out neuron without spikes on the fitted rows: rate 0.5 / rows.
PoissonRegression constant_fit(Eigen::Index features, Eigen::Index rows) {
  return {Eigen::VectorXd::Zero(features), std::log(0.5 / static_cast<double>(rows)), 0, true};
}

PoissonRegressionSettings glm_settings(double ridge, Eigen::Index rows,
                                       const SmoothingBaselineSettings& settings) {
  return {ridge * static_cast<double>(rows), settings.max_newton_iterations};
}

// Features clipped to [lowest, highest] column by column: a burst larger than any seen in
// training would otherwise be extrapolated exponentially (a real failure on the sparse
// preset, costing tens of bits per spike).
Eigen::MatrixXd clip_features(const Eigen::MatrixXd& features, const Eigen::MatrixXd& fitted) {
  Eigen::MatrixXd clipped(features.rows(), features.cols());
  for (Eigen::Index i = 0; i < features.cols(); ++i)
    clipped.col(i) =
        features.col(i).cwiseMax(fitted.col(i).minCoeff()).cwiseMin(fitted.col(i).maxCoeff());
  return clipped;
}

// Sum over the bins of x log r - r (the log-likelihood without log x!) of one neuron.
double log_likelihood(const Eigen::VectorXd& rates, const Eigen::VectorXd& counts) {
  double total = 0.0;
  for (Eigen::Index t = 0; t < counts.size(); ++t) total += x_log_r(counts(t), rates(t)) - rates(t);
  return total;
}

// Candidate indices from the strongest ridge to the weakest: each fit warm-starts the next.
std::vector<std::size_t> strongest_first(const std::vector<double>& ridges) {
  std::vector<std::size_t> order(ridges.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return ridges[a] > ridges[b]; });
  return order;
}

// The model of standardised coefficients b = (intercept, weights) in raw features.
PoissonRegression raw_fit(const Standardised& s, const Eigen::VectorXd& b, bool converged) {
  PoissonRegression fit;
  fit.weights = b.tail(b.size() - 1).cwiseQuotient(s.scale.transpose());
  fit.intercept = b(0) - s.mean.dot(fit.weights);
  fit.converged = converged;
  return fit;
}

// Fits every held-out neuron (column of `counts`) with spikes on the fitted rows at its own
// ridge (`ridges`, per column) from `start` (standardised coefficients, design columns x
// neurons; the constant-rate fit where empty), all neurons at once (poisson_regression_batch.hpp);
// a neuron the batch leaves unconverged, or one without a penalty, gets the single-regression
// Newton fit from where the batch left it. `start` is overwritten with the fits. Silent
// neurons keep their column of `start` and are reported converged.
std::vector<bool> fit_neurons(const Standardised& s, const Eigen::MatrixXd& counts,
                              const Eigen::VectorXd& ridges, double tolerance,
                              const SmoothingBaselineSettings& settings, Eigen::MatrixXd& start) {
  const Eigen::Index rows = s.design.rows(), neurons = counts.cols();
  if (start.size() == 0) {
    start = Eigen::MatrixXd::Zero(s.design.cols(), neurons);
    for (Eigen::Index j = 0; j < neurons; ++j)
      start(0, j) = counts.col(j).sum() > 0.0 ? std::log(counts.col(j).mean())
                                              : constant_fit(0, rows).intercept;
  }
  std::vector<Eigen::Index> batched;
  std::vector<bool> converged(static_cast<std::size_t>(neurons), true);
  for (Eigen::Index j = 0; j < neurons; ++j)
    if (counts.col(j).sum() > 0.0 && ridges(j) > 0.0) batched.push_back(j);
  std::vector<bool> newton(static_cast<std::size_t>(neurons), false);
  for (Eigen::Index j = 0; j < neurons; ++j)
    newton[static_cast<std::size_t>(j)] = counts.col(j).sum() > 0.0 && !(ridges(j) > 0.0);
  if (!batched.empty()) {
    const Eigen::MatrixXd batch_counts = counts(Eigen::all, batched);
    Eigen::MatrixXd coefficients = start(Eigen::all, batched);
    PoissonRegressionBatchSettings batch_settings;
    batch_settings.max_iterations = settings.max_newton_iterations;
    batch_settings.tolerance = tolerance;
    PoissonRegressionBatch batch(s.design, batch_counts, batch_settings);
    const Eigen::VectorXd penalties = ridges(batched) * static_cast<double>(rows);
    const PoissonRegressionBatchReport report = batch.solve(penalties, coefficients);
    start(Eigen::all, batched) = coefficients;
    for (std::size_t a = 0; a < batched.size(); ++a)
      if (!report.converged[a]) newton[static_cast<std::size_t>(batched[a])] = true;
  }
  for (Eigen::Index j = 0; j < neurons; ++j) {
    if (!newton[static_cast<std::size_t>(j)]) continue;
    const PoissonRegression from = raw_fit(s, start.col(j), false);
    const PoissonRegression fit =
        fit_standardised(s, counts.col(j), glm_settings(ridges(j), rows, settings), &from);
    start.col(j) << fit.intercept + s.mean.dot(fit.weights),
        fit.weights.cwiseProduct(s.scale.transpose());
    converged[static_cast<std::size_t>(j)] = fit.converged;
  }
  return converged;
}

// Standardised coefficients (intercept, weights) of `s` for raw models (intercept, weights)
// in the columns of `raw`, and back: the same linear predictors in the other coordinates.
Eigen::MatrixXd to_standardised(const Standardised& s, const Eigen::MatrixXd& raw) {
  Eigen::MatrixXd b(raw.rows(), raw.cols());
  b.row(0) = raw.row(0) + s.mean * raw.bottomRows(raw.rows() - 1);
  b.bottomRows(raw.rows() - 1) = s.scale.transpose().asDiagonal() * raw.bottomRows(raw.rows() - 1);
  return b;
}

Eigen::MatrixXd to_raw(const Standardised& s, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd raw(b.rows(), b.cols());
  raw.bottomRows(b.rows() - 1) =
      s.scale.transpose().cwiseInverse().asDiagonal() * b.bottomRows(b.rows() - 1);
  raw.row(0) = b.row(0) - s.mean * raw.bottomRows(b.rows() - 1);
  return raw;
}

// Validation log-likelihood of every (ridge candidate, held-out neuron) of one fold. The fit
// at ridge r starts from `previous[r]` (the last fold's fits there, as raw models) when it is
// not empty, else from the fit at the next stronger ridge (the constant fit for the first);
// `previous[r]` is then overwritten with this fold's fits.
Eigen::MatrixXd fold_log_likelihood(const std::vector<Eigen::MatrixXd>& heldin_smoothed,
                                    const std::vector<Eigen::MatrixXd>& heldout,
                                    const std::vector<double>& ridges, std::size_t fold,
                                    std::size_t folds, const SmoothingBaselineSettings& settings,
                                    std::vector<Eigen::MatrixXd>& previous) {
  std::vector<std::size_t> fit_trials, check_trials;
  for (std::size_t k = 0; k < heldin_smoothed.size(); ++k)
    (k % folds == fold ? check_trials : fit_trials).push_back(k);
  const Eigen::MatrixXd x = stack_bins(heldin_smoothed, fit_trials);
  const Eigen::MatrixXd y = stack_bins(heldout, fit_trials);
  const Eigen::MatrixXd x_check = clip_features(stack_bins(heldin_smoothed, check_trials), x);
  const Eigen::MatrixXd y_check = stack_bins(heldout, check_trials);
  const Standardised standardised = standardise(x);  // once for every neuron and ridge
  Eigen::MatrixXd table(static_cast<Eigen::Index>(ridges.size()), y.cols());
  Eigen::MatrixXd coefficients;  // the ridge path: each fit warm-starts the next
  for (std::size_t r : strongest_first(ridges)) {
    if (previous[r].size() != 0) coefficients = to_standardised(standardised, previous[r]);
    fit_neurons(standardised, y, Eigen::VectorXd::Constant(y.cols(), ridges[r]),
                kCrossValidationTolerance, settings, coefficients);
    previous[r] = to_raw(standardised, coefficients);
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      const PoissonRegression fit = y.col(j).sum() > 0.0
                                        ? raw_fit(standardised, coefficients.col(j), true)
                                        : constant_fit(x.cols(), x.rows());
      table(static_cast<Eigen::Index>(r), j) = log_likelihood(fit.predict(x_check), y_check.col(j));
    }
  }
  return table;
}

// Validation log-likelihood of every (ridge candidate, held-out neuron) for one kernel,
// summed over the folds (train trial i in fold i mod folds) in fold order; each fold
// warm-starts from the last (their fitted trials overlap in all but two folds' worth).
Eigen::MatrixXd cross_validate(const std::vector<Eigen::MatrixXd>& heldin_smoothed,
                               const std::vector<Eigen::MatrixXd>& heldout,
                               const std::vector<double>& ridges,
                               const SmoothingBaselineSettings& settings) {
  const std::size_t trials = heldin_smoothed.size();
  const std::size_t folds = std::min<std::size_t>(static_cast<std::size_t>(settings.folds), trials);
  std::vector<Eigen::MatrixXd> previous(ridges.size());
  Eigen::MatrixXd table =
      Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(ridges.size()), heldout.front().rows());
  for (std::size_t fold = 0; fold < folds; ++fold)
    table += fold_log_likelihood(heldin_smoothed, heldout, ridges, fold, folds, settings, previous);
  return table;
}

// `candidates` when there are at least two, else {fallback}.
std::vector<double> grid(const std::vector<double>& candidates, double fallback) {
  return candidates.size() >= 2 ? candidates : std::vector<double>{fallback};
}

// Picks the kernel SD with the best total validation log-likelihood, each neuron at its best
// ridge, and that ridge per neuron (SmoothingBaselineSettings).
void choose_by_cross_validation(const std::vector<Eigen::MatrixXd>& train_heldin,
                                const std::vector<Eigen::MatrixXd>& train_heldout,
                                const SmoothingBaselineSettings& settings,
                                SmoothingBaseline& result) {
  const std::vector<double> kernels = grid(settings.kernel_sd_candidates, settings.kernel_sd_bins);
  const std::vector<double> ridges = grid(settings.ridge_candidates, settings.ridge);
  // The kernels on `settings.threads` threads, each kernel's work the same whichever thread
  // runs it (threads.hpp), so the choice does not depend on the thread count.
  std::vector<Eigen::MatrixXd> tables(kernels.size());
  for_each_index(kernels.size(), settings.threads, [&](std::size_t k, int) {
    tables[k] = cross_validate(smooth_trials(train_heldin, kernels[k], settings.features),
                               train_heldout, ridges, settings);
  });
  double best = -std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < kernels.size(); ++k) {
    const double sd = kernels[k];
    const Eigen::MatrixXd& table = tables[k];
    result.cv_log_likelihood.push_back(table.colwise().maxCoeff().sum());
    if (!(result.cv_log_likelihood.back() > best)) continue;
    best = result.cv_log_likelihood.back();
    result.kernel_sd_bins = sd;
    for (Eigen::Index j = 0; j < table.cols(); ++j) {
      Eigen::Index r = 0;
      table.col(j).maxCoeff(&r);
      result.ridge[static_cast<std::size_t>(j)] = ridges[static_cast<std::size_t>(r)];
    }
  }
}

}  // namespace

std::string smoothing_features_name(SmoothingFeatures features) {
  return features == SmoothingFeatures::kLog ? "log" : "raw";
}

SmoothingBaseline smoothing_baseline(const std::vector<Eigen::MatrixXd>& train_heldin,
                                     const std::vector<Eigen::MatrixXd>& train_heldout,
                                     const std::vector<Eigen::MatrixXd>& test_heldin,
                                     const SmoothingBaselineSettings& settings) {
  check_baseline_settings(settings);
  check_baseline_input(train_heldin, train_heldout, test_heldin);
  SmoothingBaseline result;
  result.kernel_sd_bins = settings.kernel_sd_bins;
  result.ridge.assign(static_cast<std::size_t>(train_heldout.front().rows()), settings.ridge);
  const bool search =
      settings.kernel_sd_candidates.size() >= 2 || settings.ridge_candidates.size() >= 2;
  if (search && train_heldin.size() >= 2)
    choose_by_cross_validation(train_heldin, train_heldout, settings, result);

  std::vector<std::size_t> all(train_heldin.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const Eigen::MatrixXd x =
      stack_bins(smooth_trials(train_heldin, result.kernel_sd_bins, settings.features), all);
  const Eigen::MatrixXd y = stack_bins(train_heldout, all);
  const Standardised standardised = standardise(x);
  Eigen::MatrixXd coefficients;
  const std::vector<bool> converged =
      fit_neurons(standardised, y,
                  Eigen::Map<const Eigen::VectorXd>(result.ridge.data(),
                                                    static_cast<Eigen::Index>(result.ridge.size())),
                  kFinalFitTolerance, settings, coefficients);
  std::vector<PoissonRegression> fits(static_cast<std::size_t>(y.cols()));
  for (Eigen::Index j = 0; j < y.cols(); ++j)
    fits[static_cast<std::size_t>(j)] =
        y.col(j).sum() > 0.0
            ? raw_fit(standardised, coefficients.col(j), converged[static_cast<std::size_t>(j)])
            : constant_fit(x.cols(), x.rows());
  for (const PoissonRegression& fit : fits) result.unconverged += fit.converged ? 0 : 1;
  for (const Eigen::MatrixXd& trial : test_heldin) {
    const Eigen::MatrixXd features = clip_features(
        smoothed_features(trial, result.kernel_sd_bins, settings.features).transpose(), x);
    Eigen::MatrixXd rates(y.cols(), trial.cols());
    for (Eigen::Index j = 0; j < y.cols(); ++j)
      rates.row(j) = fits[static_cast<std::size_t>(j)].predict(features).transpose();
    result.rates.push_back(std::move(rates));
  }
  return result;
}

std::vector<Eigen::MatrixXd> smoothing_baseline_rates(
    const std::vector<Eigen::MatrixXd>& train_heldin,
    const std::vector<Eigen::MatrixXd>& train_heldout,
    const std::vector<Eigen::MatrixXd>& test_heldin, const SmoothingBaselineSettings& settings) {
  return smoothing_baseline(train_heldin, train_heldout, test_heldin, settings).rates;
}

std::vector<Eigen::MatrixXd> select_trials_and_rows(const std::vector<Eigen::MatrixXd>& per_trial,
                                                    int first_trial, const std::vector<int>& trials,
                                                    const std::vector<int>& rows) {
  std::vector<Eigen::MatrixXd> out;
  out.reserve(trials.size());
  for (int trial : trials) {
    const int index = trial - first_trial;
    if (index < 0 || index >= static_cast<int>(per_trial.size()))
      throw InputError("select_trials_and_rows: trial " + std::to_string(trial) +
                       " is not among the held trials");
    const Eigen::MatrixXd& m = per_trial[static_cast<std::size_t>(index)];
    for (int row : rows)
      if (row < 0 || row >= m.rows())
        throw InputError("select_trials_and_rows: row " + std::to_string(row) + " of trial " +
                         std::to_string(trial) + " is outside [0, " + std::to_string(m.rows()) +
                         ")");
    out.push_back(m(rows, Eigen::all));
  }
  return out;
}

}  // namespace spikevi
