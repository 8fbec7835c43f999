#include "spikevi/variational_family.hpp"

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/gauss_markov.hpp"
#include "spikevi/mean_field.hpp"

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

LocalStepReport warm_local_step(const PriorBlocks& prior,
                                const std::vector<ModalityView>& modalities,
                                GaussMarkovState& state, FamilyEvaluator& evaluator,
                                const LocalStepSettings& settings) {
  const Sites warm_sites = state.sites;
  bool restarted = false;
  if (!try_evaluate(evaluator, prior, modalities, warm_sites, state)) {
    // q from J = J_prior, SPD whenever the globals are valid.
    const int dim = static_cast<int>(prior.shift.rows());
    evaluator.evaluate(prior, modalities, Sites::zero(dim, static_cast<int>(prior.shift.cols())),
                       state);
    restarted = true;
  }
  LocalStepReport report = local_step(prior, modalities, state, evaluator, settings);
  report.restarted = restarted;
  return report;
}

}  // namespace spikevi
