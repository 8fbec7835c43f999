#include "spikevi/inference/variational_family.hpp"

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/inference/mean_field.hpp"

namespace spikevi {

FamilyKind parse_family(const std::string& name) {
  if (name == "gauss-markov") return FamilyKind::kGaussMarkov;
  if (name == "mean-field") return FamilyKind::kMeanField;
  throw ConfigError("--family must be gauss-markov or mean-field (got '" + name + "')");
}

std::string family_name(FamilyKind family) {
  return family == FamilyKind::kMeanField ? "mean-field" : "gauss-markov";
}

void FamilyEvaluator::use_monte_carlo(const MonteCarloSettings& settings, RandomCounter counter) {
  if (settings.samples < 0) throw ConfigError("--samples must be >= 1");
  monte_carlo_ = settings;
  counter_ = counter;
  standard_draws_.assign(static_cast<std::size_t>(settings.samples), Eigen::MatrixXd());
}

void FamilyEvaluator::factor(const PriorBlocks& prior, const Sites& sites) {
  precision_.diagonal = prior.precision.diagonal + sites.precision;
  precision_.lower = prior.precision.lower;
  shift_ = prior.shift + sites.shift;
  cholesky_.factor(precision_);
}

void FamilyEvaluator::mean_part_of_site_gradient(const GaussMarkovState& state,
                                                 Sites& gradient) const {
  const int dim = state.moments.dim(), bins = state.moments.bins();
  const Eigen::MatrixXd& m = state.moments.mean;
  Eigen::MatrixXd residual = state.targets.shift - state.sites.shift;
  for (int t = 0; t < bins; ++t)
    residual.col(t) -= (state.targets.precision - state.sites.precision)
                           .middleCols(static_cast<Eigen::Index>(t) * dim, dim) *
                       m.col(t);
  gradient.shift = cholesky_.solve(residual);
  gradient.precision.resize(dim, static_cast<Eigen::Index>(dim) * bins);
  for (int t = 0; t < bins; ++t)
    gradient.precision.middleCols(static_cast<Eigen::Index>(t) * dim, dim) =
        -0.5 * (gradient.shift.col(t) * m.col(t).transpose() +
                m.col(t) * gradient.shift.col(t).transpose());
}

std::unique_ptr<FamilyEvaluator> make_family_evaluator(FamilyKind family) {
  if (family == FamilyKind::kMeanField) return std::make_unique<MeanFieldEvaluator>();
  return std::make_unique<GaussMarkovEvaluator>();
}

namespace {

void blend_sites(const Sites& from, const Sites& to, double rho, Sites& out) {
  out.precision = from.precision + rho * (to.precision - from.precision);
  out.shift = from.shift + rho * (to.shift - from.shift);
}

// Evaluates a candidate; a failed factorisation or a non-finite ELBO is a rejected step.
bool try_evaluate(FamilyEvaluator& evaluator, const PriorBlocks& prior,
                  const std::vector<ModalityView>& modalities, const Sites& sites,
                  GaussMarkovState& candidate) {
  try {
    evaluator.evaluate(prior, modalities, sites, candidate);
  } catch (const NumericalError&) {
    return false;
  }
  return std::isfinite(candidate.elbo);
}

}  // namespace

LocalStepReport local_step(const PriorBlocks& prior, const std::vector<ModalityView>& modalities,
                           GaussMarkovState& state, FamilyEvaluator& evaluator,
                           const LocalStepSettings& settings) {
  LocalStepReport report;
  report.start_elbo = state.elbo;
  GaussMarkovState candidate;
  Sites proposal;
  double rho = 1.0;
  const double min_rho = std::ldexp(1.0, -settings.max_halvings);
  for (report.iterations = 1; report.iterations <= settings.max_iterations; ++report.iterations) {
    blend_sites(state.sites, state.targets, rho, proposal);
    ++report.evaluations;
    const bool ok = try_evaluate(evaluator, prior, modalities, proposal, candidate);
    if (ok && candidate.elbo >= state.elbo) {
      const double gain = candidate.elbo - state.elbo;
      std::swap(state, candidate);
      if (gain < settings.tolerance) {
        report.converged = true;
        break;
      }
      rho = std::min(1.0, 2.0 * rho);
    } else {
      rho *= 0.5;
      if (rho < min_rho) {
        report.converged = true;  // no ascent direction left at machine precision
        break;
      }
    }
  }
  report.iterations = std::min(report.iterations, settings.max_iterations);
  return report;
}

LocalStepReport adam_local_step(const PriorBlocks& prior,
                                const std::vector<ModalityView>& modalities,
                                GaussMarkovState& state, FamilyEvaluator& evaluator,
                                const LocalStepSettings& settings, const AdamSettings& adam) {
  LocalStepReport report;
  report.start_elbo = state.elbo;
  AdamState precision_moments, shift_moments;
  GaussMarkovState candidate;
  Sites gradient, proposal;
  double rate = adam.learning_rate;
  int quiet_steps = 0;
  bool state_is_current = true;  // the evaluator's factor is that of `state`
  const double min_rate = std::ldexp(adam.learning_rate, -settings.max_halvings);
  for (report.iterations = 1; report.iterations <= settings.max_iterations; ++report.iterations) {
    if (!state_is_current) {
      evaluator.evaluate(prior, modalities, state.sites, state);
      ++report.evaluations;
    }
    evaluator.site_gradient(state, gradient);
    proposal.precision = state.sites.precision +
                         precision_moments.step(gradient.precision.array(), adam, rate).matrix();
    proposal.shift =
        state.sites.shift + shift_moments.step(gradient.shift.array(), adam, rate).matrix();
    ++report.evaluations;
    if (!try_evaluate(evaluator, prior, modalities, proposal, candidate)) {
      state_is_current = false;
      rate *= 0.5;
      if (rate < min_rate) break;
      continue;
    }
    const double change = std::abs(candidate.elbo - state.elbo);
    std::swap(state, candidate);
    state_is_current = true;
    quiet_steps = change < settings.tolerance ? quiet_steps + 1 : 0;
    if (quiet_steps >= 3) {
      report.converged = true;
      break;
    }
  }
  report.iterations = std::min(report.iterations, settings.max_iterations);
  return report;
}

LocalStepReport warm_local_step(const PriorBlocks& prior,
                                const std::vector<ModalityView>& modalities,
                                GaussMarkovState& state, FamilyEvaluator& evaluator,
                                const LocalStepSettings& settings, const AdamSettings* adam) {
  const Sites warm_sites = state.sites;
  bool restarted = false;
  if (!try_evaluate(evaluator, prior, modalities, warm_sites, state)) {
    // q from J = J_prior, SPD whenever the globals are valid.
    const int dim = static_cast<int>(prior.shift.rows());
    evaluator.evaluate(prior, modalities, Sites::zero(dim, static_cast<int>(prior.shift.cols())),
                       state);
    restarted = true;
  }
  LocalStepReport report =
      adam ? adam_local_step(prior, modalities, state, evaluator, settings, *adam)
           : local_step(prior, modalities, state, evaluator, settings);
  report.restarted = restarted;
  return report;
}

}  // namespace spikevi
