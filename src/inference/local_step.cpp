#include "spikevi/inference/local_step.hpp"

#include <algorithm>
#include <cmath>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

void blend_sites(const Sites& from, const Sites& to, double rho, Sites& out) {
  out.precision = from.precision + rho * (to.precision - from.precision);
  out.shift = from.shift + rho * (to.shift - from.shift);
}

// Evaluates a candidate; a failed factorisation or a non-finite ELBO is a rejected step.
bool try_evaluate(const LocalProblem& problem, const Sites& sites, GaussMarkovState& candidate) {
  try {
    problem.evaluate(sites, candidate);
  } catch (const NumericalError&) {
    return false;
  }
  return std::isfinite(candidate.elbo);
}

}  // namespace

LocalStepReport cvi_local_step(const LocalProblem& problem, GaussMarkovState& state,
                               const LocalStepSettings& settings) {
  LocalStepReport report;
  report.start_elbo = state.elbo;
  GaussMarkovState candidate;
  Sites proposal;
  double rho = 1.0;
  const double min_rho = std::ldexp(1.0, -settings.max_halvings);
  int accepted = 0;
  for (report.iterations = 1; report.iterations <= settings.max_iterations; ++report.iterations) {
    blend_sites(state.sites, state.targets, rho, proposal);
    ++report.evaluations;
    const bool ok = try_evaluate(problem, proposal, candidate);
    if (ok && candidate.elbo >= state.elbo) {
      const double gain = candidate.elbo - state.elbo;
      std::swap(state, candidate);
      if (gain < settings.tolerance || ++accepted == settings.steps) {
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

LocalStepReport adam_local_step(const LocalProblem& problem, GaussMarkovState& state,
                                const LocalStepSettings& settings, const AdamSettings& adam) {
  LocalStepReport report;
  report.start_elbo = state.elbo;
  AdamState precision_moments, shift_moments;
  GaussMarkovState candidate;
  Sites gradient, proposal;
  double rate = adam.learning_rate;
  int quiet_steps = 0;
  bool state_is_current = true;  // the family's factor is that of `state`
  const double min_rate = std::ldexp(adam.learning_rate, -settings.max_halvings);
  for (report.iterations = 1; report.iterations <= settings.max_iterations; ++report.iterations) {
    if (!state_is_current) {
      problem.evaluate(state.sites, state);
      ++report.evaluations;
    }
    problem.family.site_gradient(state, gradient);
    proposal.precision = state.sites.precision +
                         precision_moments.step(gradient.precision.array(), adam, rate).matrix();
    proposal.shift =
        state.sites.shift + shift_moments.step(gradient.shift.array(), adam, rate).matrix();
    ++report.evaluations;
    if (!try_evaluate(problem, proposal, candidate)) {
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

bool warm_start(const LocalProblem& problem, GaussMarkovState& state) {
  const Sites warm_sites = state.sites;
  if (try_evaluate(problem, warm_sites, state)) return false;
  // q from J = J_prior, SPD whenever the globals are valid.
  const int dim = static_cast<int>(problem.prior.shift.rows());
  problem.evaluate(Sites::zero(dim, static_cast<int>(problem.prior.shift.cols())), state);
  return true;
}

}  // namespace spikevi
