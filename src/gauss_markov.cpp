#include "spikevi/gauss_markov.hpp"

#include <cmath>
#include <numbers>

#include "spikevi/error.hpp"

namespace spikevi {

void GaussMarkovEvaluator::evaluate(const PriorBlocks& prior,
                                    const std::vector<ModalityView>& modalities, const Sites& sites,
                                    GaussMarkovState& out) {
  precision_.diagonal = prior.precision.diagonal + sites.precision;
  precision_.lower = prior.precision.lower;
  shift_ = prior.shift + sites.shift;
  cholesky_.factor(precision_);

  GaussianMoments& q = out.moments;
  q.mean = cholesky_.solve(shift_);
  cholesky_.selected_inverse(q.cov, q.lag_cov);
  q.log_det_precision = cholesky_.log_determinant();

  out.sites = sites;
  out.expected_log_lik = expected_log_likelihood(modalities, q, work_, &out.targets);
  out.elbo = site_form_elbo(prior, sites, q, out.expected_log_lik);
}

double site_form_elbo(const PriorBlocks& prior, const Sites& sites, const GaussianMoments& q,
                      double expected_log_lik) {
  const int dim = q.dim();
  const int bins = q.bins();
  double site_terms = 0.0;
  for (int t = 0; t < bins; ++t) {
    const auto L = sites.precision.middleCols(static_cast<Eigen::Index>(t) * dim, dim);
    const auto m = q.mean.col(t);
    // tr(L (S + m m'))/2 - l'm
    site_terms +=
        0.5 * (L.cwiseProduct(q.cov_block(t)).sum() + m.dot(L * m)) - sites.shift.col(t).dot(m);
  }
  const double h_dot_m = (prior.shift + sites.shift).cwiseProduct(q.mean).sum();
  const double log_2pi = std::log(2.0 * std::numbers::pi);
  return expected_log_lik + site_terms + 0.5 * h_dot_m - 0.5 * q.log_det_precision +
         0.5 * bins * dim * log_2pi - prior.constant;
}

namespace {

void blend_sites(const Sites& from, const Sites& to, double rho, Sites& out) {
  out.precision = from.precision + rho * (to.precision - from.precision);
  out.shift = from.shift + rho * (to.shift - from.shift);
}

// Evaluates a candidate; a failed factorisation or a non-finite ELBO is a rejected step.
bool try_evaluate(GaussMarkovEvaluator& evaluator, const PriorBlocks& prior,
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

LocalStepReport gauss_markov_local_step(const PriorBlocks& prior,
                                        const std::vector<ModalityView>& modalities,
                                        GaussMarkovState& state, GaussMarkovEvaluator& evaluator,
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

}  // namespace spikevi

namespace spikevi {

LocalStepReport gauss_markov_warm_local_step(const PriorBlocks& prior,
                                             const std::vector<ModalityView>& modalities,
                                             GaussMarkovState& state,
                                             GaussMarkovEvaluator& evaluator,
                                             const LocalStepSettings& settings) {
  const Sites warm_sites = state.sites;
  bool restarted = false;
  if (!try_evaluate(evaluator, prior, modalities, warm_sites, state)) {
    // q = the prior itself: J = J_prior is SPD whenever the globals are valid.
    const int dim = static_cast<int>(prior.shift.rows());
    evaluator.evaluate(prior, modalities, Sites::zero(dim, static_cast<int>(prior.shift.cols())),
                       state);
    restarted = true;
  }
  LocalStepReport report = gauss_markov_local_step(prior, modalities, state, evaluator, settings);
  report.restarted = restarted;
  return report;
}

}  // namespace spikevi
