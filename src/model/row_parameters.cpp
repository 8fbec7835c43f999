#include "spikevi/model/row_parameters.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace spikevi {
namespace {

const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::numbers::pi);

double prior_precision(const RowParameterSpec& spec) {
  return 1.0 / (spec.prior_sd * spec.prior_sd);
}

// dtheta/du and d2theta/du2 at theta: log: theta, theta; logit: theta (1 - theta) and
// theta (1 - theta) (1 - 2 theta).
struct Jacobian {
  double first, second;
};
Jacobian jacobian(RowTransform transform, double theta) {
  if (transform == RowTransform::kLog) return {theta, theta};
  const double slope = theta * (1.0 - theta);
  return {slope, slope * (1.0 - 2.0 * theta)};
}

Eigen::ArrayXd unconstrained(RowTransform transform, const Eigen::VectorXd& theta) {
  if (transform == RowTransform::kLog) return theta.array().log();
  return (theta.array() / (1.0 - theta.array())).log();
}

Eigen::ArrayXd first_jacobian(RowTransform transform, const Eigen::VectorXd& theta) {
  if (transform == RowTransform::kLog) return theta.array();
  return theta.array() * (1.0 - theta.array());
}

}  // namespace

double to_unconstrained(RowTransform transform, double theta) {
  return transform == RowTransform::kLog ? std::log(theta) : std::log(theta / (1.0 - theta));
}

double from_unconstrained(RowTransform transform, double u) {
  return transform == RowTransform::kLog ? std::exp(u) : 1.0 / (1.0 + std::exp(-u));
}

std::string transform_name(RowTransform transform) {
  return transform == RowTransform::kLog ? "log" : "logit";
}

RowParameters RowParameters::at_prior(const std::vector<RowParameterSpec>& specs, int rows) {
  RowParameters out;
  for (const RowParameterSpec& spec : specs)
    out.parameters.push_back(RowParameter{spec, Eigen::VectorXd::Constant(rows, spec.prior_median),
                                          Eigen::VectorXd::Constant(rows, prior_precision(spec))});
  return out;
}

std::vector<Eigen::VectorXd> RowParameters::values() const {
  std::vector<Eigen::VectorXd> out;
  for (const RowParameter& parameter : parameters) out.push_back(parameter.values);
  return out;
}

RowParameters RowParameters::select_rows(const std::vector<int>& keep) const {
  RowParameters out = *this;
  for (RowParameter& parameter : out.parameters) {
    parameter.values.resize(static_cast<Eigen::Index>(keep.size()));
    parameter.precision.resize(static_cast<Eigen::Index>(keep.size()));
  }
  for (std::size_t p = 0; p < parameters.size(); ++p)
    for (std::size_t r = 0; r < keep.size(); ++r) {
      out.parameters[p].values(static_cast<Eigen::Index>(r)) = parameters[p].values(keep[r]);
      out.parameters[p].precision(static_cast<Eigen::Index>(r)) = parameters[p].precision(keep[r]);
    }
  return out;
}

double RowParameters::log_prior() const {
  double total = 0.0;
  for (const RowParameter& parameter : parameters) {
    const RowParameterSpec& spec = parameter.spec;
    const Eigen::ArrayXd z =
        (unconstrained(spec.transform, parameter.values) -
         to_unconstrained(spec.transform, spec.prior_median)) /
        spec.prior_sd;
    total += (-0.5 * z.square() - std::log(spec.prior_sd) - kHalfLog2Pi).sum();
  }
  return total;
}

double RowParameters::laplace_correction() const {
  double total = 0.0;
  for (const RowParameter& parameter : parameters)
    total += (kHalfLog2Pi - 0.5 * parameter.precision.array().max(1e-300).log()).sum();
  return total;
}

std::string RowParameters::non_finite() const {
  for (const RowParameter& parameter : parameters)
    if (!parameter.values.allFinite()) return "the row parameter '" + parameter.spec.name + "'";
  return "";
}

void RowParameters::copy_row(const RowParameters& other, Eigen::Index n) {
  for (std::size_t p = 0; p < parameters.size(); ++p) {
    parameters[p].values(n) = other.parameters[p].values(n);
    parameters[p].precision(n) = other.parameters[p].precision(n);
  }
}

Eigen::MatrixXd row_parameter_gradient(const RowParameters& parameters,
                                       const RowParameterStatistics& stats, double scale) {
  const Eigen::Index rows = stats.gradient.rows();
  Eigen::MatrixXd gradient(rows, static_cast<Eigen::Index>(parameters.count()));
  for (std::size_t p = 0; p < parameters.count(); ++p) {
    const RowParameter& parameter = parameters.parameters[p];
    const RowParameterSpec& spec = parameter.spec;
    const auto column = static_cast<Eigen::Index>(p);
    const Eigen::ArrayXd u = unconstrained(spec.transform, parameter.values);
    gradient.col(column) =
        (scale * first_jacobian(spec.transform, parameter.values) *
             stats.gradient.col(column).array() -
         prior_precision(spec) * (u - to_unconstrained(spec.transform, spec.prior_median)))
            .matrix();
  }
  return gradient;
}

void newton_row_parameter_step(RowParameters& parameters, const RowParameterStatistics& stats,
                               double scale, double rho, const Eigen::VectorXd& row_damping,
                               const Eigen::MatrixXd* moves) {
  for (std::size_t p = 0; p < parameters.count(); ++p) {
    RowParameter& parameter = parameters.parameters[p];
    const RowParameterSpec& spec = parameter.spec;
    const auto column = static_cast<Eigen::Index>(p);
    const double u0 = to_unconstrained(spec.transform, spec.prior_median);
    const double lowest = to_unconstrained(spec.transform, spec.lower);
    const double highest = to_unconstrained(spec.transform, spec.upper);
    const double precision0 = prior_precision(spec);
    for (Eigen::Index n = 0; n < parameter.values.size(); ++n) {
      const double theta = parameter.values(n), u = to_unconstrained(spec.transform, theta);
      const Jacobian j = jacobian(spec.transform, theta);
      const double g = stats.gradient(n, column), c = stats.curvature(n, column);
      // d/du and d2/du2 of scale * sum E log p(x_n | theta) + log p0(u).
      const double gradient = scale * j.first * g - precision0 * (u - u0);
      const double curvature = scale * (j.first * j.first * c + j.second * g) - precision0;
      // Newton where the objective is concave in u, else a unit step uphill; never more than
      // one unit per step (the likelihood is nearly flat in theta for Poisson-like rows).
      double move = curvature < 0.0 ? -gradient / curvature : (gradient > 0.0 ? 1.0 : -1.0);
      move = moves ? (*moves)(n, column) : std::clamp(move, -1.0, 1.0);
      const double u_new = std::clamp(u + rho * row_damping(n) * move, lowest, highest);
      parameter.values(n) = from_unconstrained(spec.transform, u_new);
      parameter.precision(n) = std::max(-curvature, precision0);
    }
  }
}

}  // namespace spikevi
