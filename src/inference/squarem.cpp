#include "spikevi/inference/squarem.hpp"

#include <algorithm>
#include <cassert>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/inference/global_step.hpp"

namespace spikevi {
namespace {

using Eigen::Index;
using Eigen::MatrixXd;

// Appends matrices to a coordinate vector, each divided by a scale.
class CoordinateWriter {
 public:
  template <class Dense>
  void add(const Dense& m, double scale = 1.0) {
    for (Index j = 0; j < m.cols(); ++j)
      for (Index i = 0; i < m.rows(); ++i) values_.push_back(m(i, j) / scale);
  }
  Eigen::VectorXd done() const {
    return Eigen::Map<const Eigen::VectorXd>(values_.data(), static_cast<Index>(values_.size()));
  }

 private:
  std::vector<double> values_;
};

// Reads them back in the same order, each multiplied by its scale.
class CoordinateReader {
 public:
  explicit CoordinateReader(const Eigen::VectorXd& x) : x_(x) {}
  template <class Dense>
  void get(Dense&& m, double scale = 1.0) {
    for (Index j = 0; j < m.cols(); ++j)
      for (Index i = 0; i < m.rows(); ++i) {
        assert(next_ < x_.size());
        m(i, j) = scale * x_(next_++);
      }
  }
  bool finished() const { return next_ == x_.size(); }

 private:
  const Eigen::VectorXd& x_;
  Index next_ = 0;
};

void require_spd(const MatrixXd& m, const std::string& what) {
  if (!m.allFinite() || Eigen::LLT<MatrixXd>(m).info() != Eigen::Success)
    throw NumericalError("SQUAREM: the extrapolated " + what + " is not positive definite");
}

// The channel's statistics are sums over its observed bins: per bin, they are of order one.
double observed_bins(const RegressionStatistics& s, int channel) {
  return std::max(s.observed(channel), 1.0);
}

}  // namespace

Acceleration parse_acceleration(const std::string& name) {
  if (name == "none") return Acceleration::kNone;
  if (name == "squarem") return Acceleration::kSquarem;
  throw ConfigError("--accelerate must be none or squarem (got '" + name + "')");
}

std::string acceleration_name(Acceleration acceleration) {
  return acceleration == Acceleration::kSquarem ? "squarem" : "none";
}

Eigen::VectorXd squarem_coordinates(const GlobalState& g) {
  CoordinateWriter out;
  const MatrixNormalInverseWishart::Natural eta = g.dynamics.natural();
  out.add(eta.eta1, eta.nu);
  out.add(eta.eta2, eta.nu);
  out.add(eta.eta3, eta.nu);
  out.add(g.mu0);
  out.add(MatrixXd(g.Sigma0 + g.mu0 * g.mu0.transpose()));
  out.add(g.spikes.C);
  out.add(g.spikes.d);
  for (const RowParameter& parameter : g.spike_parameters.parameters)
    out.add(parameter.values.unaryExpr(
        [&](double theta) { return to_unconstrained(parameter.spec.transform, theta); }));
  for (const ContinuousReadout& modality : g.continuous) {
    const RegressionStatistics& s = modality.statistics;
    const Index p = s.cross.rows();
    for (int j = 0; j < s.channels(); ++j) {
      const double bins = observed_bins(s, j);
      out.add(s.second_moment.middleCols(j * p, p), bins);
      out.add(s.cross.col(j), bins);
      out.add(s.sum_squares.segment(j, 1), bins);
    }
  }
  return out.done();
}

GlobalState globals_at_squarem_coordinates(const Eigen::VectorXd& x, const GlobalState& like) {
  GlobalState g = like;
  CoordinateReader in(x);
  MatrixNormalInverseWishart::Natural eta = like.dynamics.natural();
  in.get(eta.eta1, eta.nu);
  in.get(eta.eta2, eta.nu);
  in.get(eta.eta3, eta.nu);
  g.dynamics = MatrixNormalInverseWishart::from_natural(eta);  // NumericalError unless SPD
  in.get(g.mu0);
  MatrixXd second = g.Sigma0;
  in.get(second);
  g.Sigma0 = second - g.mu0 * g.mu0.transpose();
  g.Sigma0 = 0.5 * (g.Sigma0 + g.Sigma0.transpose()).eval();
  require_spd(g.Sigma0, "Sigma0");
  in.get(g.spikes.C);
  in.get(g.spikes.d);
  for (RowParameter& parameter : g.spike_parameters.parameters) {
    const RowParameterSpec& spec = parameter.spec;
    in.get(parameter.values);
    parameter.values = parameter.values.unaryExpr([&](double u) {
      return std::clamp(from_unconstrained(spec.transform, u), spec.lower, spec.upper);
    });
  }
  for (ContinuousReadout& modality : g.continuous) {
    RegressionStatistics& s = modality.statistics;
    const Index p = s.cross.rows();
    for (int j = 0; j < s.channels(); ++j) {
      const double bins = observed_bins(s, j);
      in.get(s.second_moment.middleCols(j * p, p), bins);
      in.get(s.cross.col(j), bins);
      in.get(s.sum_squares.segment(j, 1), bins);
      if (s.observed(j) > 0)
        require_spd(s.second_moment.middleCols(j * p, p),
                    "second moment of continuous modality '" + modality.name + "'");
    }
    solve_continuous_readout(modality, g.continuous_prior, g.noise_prior);
  }
  assert(in.finished());
  if (const std::string bad = non_finite_parameter(g); !bad.empty())
    throw NumericalError("SQUAREM: the extrapolated " + bad + " is not finite");
  return g;
}

double squarem_step_length(const Eigen::VectorXd& r, const Eigen::VectorXd& v, double step_max) {
  const double v_norm = v.norm();
  if (!(v_norm > 0.0)) return -1.0;
  return std::clamp(-r.norm() / v_norm, -step_max, -1.0);
}

std::optional<Squarem::Proposal> Squarem::propose(const GlobalState& last,
                                                  const GlobalState& plain) const {
  const Eigen::VectorXd x1 = squarem_coordinates(last);
  if (first_.size() != x1.size()) return std::nullopt;
  const Eigen::VectorXd r = x1 - first_;
  const Eigen::VectorXd v = squarem_coordinates(plain) - 2.0 * x1 + first_;
  double alpha = squarem_step_length(r, v, step_max_);
  for (int backtrack = 0; backtrack <= max_backtracks_ && alpha < -1.0; ++backtrack) {
    try {
      return Proposal{
          globals_at_squarem_coordinates(first_ - 2.0 * alpha * r + alpha * alpha * v, plain),
          alpha};
    } catch (const NumericalError&) {
      alpha = 0.5 * (alpha - 1.0);  // halfway back towards the plain step
    }
  }
  return std::nullopt;
}

void Squarem::plain_iteration(const GlobalState& globals) {
  if (++plain_iterations_ == 1) first_ = squarem_coordinates(globals);
}

void Squarem::attempted(bool accepted, double alpha) {
  plain_iterations_ = 0;
  if (alpha > -step_max_) return;
  step_max_ = accepted ? 4.0 * step_max_ : std::max(1.0, 0.25 * step_max_);
}

OptimizerState Squarem::state_template(Eigen::Index coordinates) {
  return {{"squarem/first", Eigen::ArrayXXd::Zero(coordinates, 1)},
          {"squarem/counters", Eigen::ArrayXXd::Zero(1, 2)}};
}

void Squarem::add_state(OptimizerState& state, Eigen::Index coordinates) const {
  state["squarem/first"] = first_.size() == coordinates ? Eigen::ArrayXXd(first_.array())
                                                        : Eigen::ArrayXXd::Zero(coordinates, 1);
  Eigen::ArrayXXd counters(1, 2);
  counters << plain_iterations_, step_max_;
  state["squarem/counters"] = counters;
}

void Squarem::restore(const OptimizerState& state) {
  if (!state.count("squarem/first") || !state.count("squarem/counters"))
    throw InputError("checkpoint: no SQUAREM state (not written by an --accelerate squarem fit)");
  first_ = state.at("squarem/first").matrix().col(0);
  plain_iterations_ = static_cast<int>(state.at("squarem/counters")(0, 0));
  step_max_ = state.at("squarem/counters")(0, 1);
}

}  // namespace spikevi
