// The negative-binomial spike model (DESIGN.md §1): mean e^eta, a learned shape r_n per neuron
// (the row parameter "dispersion"), expectations by Gauss–Hermite quadrature.
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <cmath>
#include <string>
#include <utility>

#include "model/observation_checks.hpp"
#include "model/spike/softplus_observation.hpp"
#include "model/spike/softplus_terms.hpp"
#include "spikevi/error.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

// The shapes, after checking them.
Eigen::VectorXd checked_shapes(Eigen::VectorXd shapes) {
  for (Index n = 0; n < shapes.size(); ++n) {
    const double r = shapes(n);
    if (!std::isfinite(r) || r <= 0.0) {
      throw NumericalError("negative binomial observation: shape of row " + std::to_string(n) +
                           " is " + std::to_string(r) + ", must be finite and > 0");
    }
  }
  return shapes;
}

// The shape-dependent part of the negative binomial pmf relative to its Poisson limit
// (the "NB2" parameterisation of Cameron & Trivedi 1986: mean m, variance m + m^2 / r):
//   a(x, r) = lgamma(x + r) - lgamma(r) - x log r,
//   a_r = psi(x + r) - psi(r) - x / r,   a_rr = psi'(x + r) - psi'(r) + x / r^2.
// Each tends to 0 as r -> infinity while its terms grow like log r, so Boost's differences
// lose all relative accuracy there (at r = 1e7, a_r is ~1e-13 against an error of ~4e-15).
// For integer x <= kExactCountLimit, Gamma(x + r) / Gamma(r) = prod_{k<x} (r + k) gives
//   a = sum_{k=1}^{x-1} log1p(k / r),   a_r = -sum_{k=1}^{x-1} k / (r (r + k)),
//   a_rr = sum_{k=1}^{x-1} k (2r + k) / (r (r + k))^2,
// exact to a few ulp for any r; other counts use Boost.Math lgamma, digamma and trigamma.
constexpr double kExactCountLimit = 64.0;

bool small_integer(double x) { return x <= kExactCountLimit && x == std::floor(x); }

double shape_normaliser(double x, double r) {
  if (small_integer(x)) {
    double sum = 0.0;
    for (int k = 1; k < static_cast<int>(x); ++k) sum += std::log1p(k / r);
    return sum;
  }
  return boost::math::lgamma(x + r) - boost::math::lgamma(r) - x * std::log(r);
}

struct ShapeDerivatives {
  double first, second;
};

ShapeDerivatives shape_normaliser_derivatives(double x, double r) {
  if (small_integer(x)) {
    ShapeDerivatives sum{0.0, 0.0};
    for (int k = 1; k < static_cast<int>(x); ++k) {
      const double rk = r * (r + k);
      sum.first -= k / rk;
      sum.second += k * (2.0 * r + k) / (rk * rk);
    }
    return sum;
  }
  return {boost::math::digamma(x + r) - boost::math::digamma(r) - x / r,
          boost::math::trigamma(x + r) - boost::math::trigamma(r) + x / (r * r)};
}

// a, a_r and a_rr of every count 0..kExactCountLimit for each shape: the partial sums of the
// loops above in the same order, so the same numbers, made once per model (its shapes are
// fixed) instead of once per entry and evaluation. Row n is row n's shape, column x the count,
// so that the rows of one bin, mostly of counts 0..3, read a few neighbouring columns.
class ShapeTerms {
 public:
  explicit ShapeTerms(const Eigen::VectorXd& shapes) {
    const auto counts = static_cast<Index>(kExactCountLimit) + 1;
    value_.setZero(shapes.size(), counts);
    first_.setZero(shapes.size(), counts);
    second_.setZero(shapes.size(), counts);
    for (Index n = 0; n < shapes.size(); ++n) {
      const double r = shapes(n);
      for (Index x = 2; x < counts; ++x) {
        const auto k = static_cast<double>(x - 1);
        const double rk = r * (r + k);
        value_(n, x) = value_(n, x - 1) + std::log1p(k / r);
        first_(n, x) = first_(n, x - 1) - k / rk;
        second_(n, x) = second_(n, x - 1) + k * (2.0 * r + k) / (rk * rk);
      }
    }
  }

  // Whether every count of the column is an integer 0..kExactCountLimit: then the tabulated_
  // accessors read the tables without a test per entry (vectorised reductions; a NaN fails the
  // first).
  template <class Column>
  static bool tabulated(const Column& x) {
    return x.size() == 0 || ((x.floor() - x).abs().sum() == 0.0 && x.minCoeff() >= 0.0 &&
                             x.maxCoeff() <= kExactCountLimit);
  }
  double tabulated_value(Index count, Index row) const { return value_(row, count); }
  ShapeDerivatives tabulated_derivatives(Index count, Index row) const {
    return {first_(row, count), second_(row, count)};
  }

  double value(double x, Index row, double r) const {
    return small_integer(x) ? value_(row, static_cast<Index>(x)) : shape_normaliser(x, r);
  }
  ShapeDerivatives derivatives(double x, Index row, double r) const {
    if (!small_integer(x)) return shape_normaliser_derivatives(x, r);
    const auto count = static_cast<Index>(x);
    return {first_(row, count), second_(row, count)};
  }

 private:
  Eigen::ArrayXXd value_, first_, second_;
};

// Negative binomial with log link (DESIGN.md §1): mean e^eta, one shape r_n > 0 per row,
// variance e^eta + e^{2 eta} / r_n, and as r_n -> infinity the Poisson model;
//   log p(x | eta) = lgamma(x + r) - lgamma(r) - lgamma(x + 1) + r log r + x eta
//                    - (x + r) log(r + e^eta).
// The shapes are learned (row parameter "dispersion"), so only -lgamma(x + 1) is the base
// measure and lgamma(x + r) - lgamma(r) + r log r stays in ell. Counts must be finite and >= 0
// (InputError otherwise); x.rows() must equal the number of shapes (InputError).
class NegativeBinomialObservation final : public SoftplusObservation {
 public:
  // Throws NumericalError for a shape that is not finite and > 0, ConfigError for bad `nodes`.
  NegativeBinomialObservation(Eigen::VectorXd shapes, int nodes);
  std::string name() const override { return "negative_binomial"; }
  double log_base_measure(const Eigen::ArrayXXd& x) const override;  // -sum lgamma(x + 1)
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override;
  // lgamma(x + r) - lgamma(r) - x log r per entry (shape_normaliser says why this split).
  void add_eta_free_terms(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& ell) const override;
  void check(const Eigen::ArrayXXd& x) const override;
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
                      Eigen::ArrayXXd& mean) const override;  // exp(mu + s2/2)
  // d/dr_n and d2/dr_n^2 of sum_t ell_nt, rows x 1.
  void row_parameter_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                 const Eigen::ArrayXXd& s2, Eigen::MatrixXd& gradient,
                                 Eigen::MatrixXd& curvature) const override;

 private:
  Eigen::VectorXd shapes_;
  Eigen::ArrayXd log_shapes_;  // the shift of softplus, once per model rather than per node
  ShapeTerms shape_terms_;
};

// ---- Negative binomial: ell = a(x, r) + E[x eta - (x + r) softplus(eta - log r)] ----
// From log p + lgamma(x + 1) = lgamma(x + r) - lgamma(r) + r log r + x eta - (x + r) log(r + e^eta)
// with log(r + e^eta) = log r + softplus(eta - log r): the r log r and -(x + r) log r terms
// leave a(x, r) = lgamma(x + r) - lgamma(r) - x log r outside the expectation, which is exact
// (see shape_normaliser) and vanishes as r -> infinity, where the integrand tends to x eta - e^eta.

NegativeBinomialObservation::NegativeBinomialObservation(Eigen::VectorXd shapes, int nodes)
    : SoftplusObservation(nodes, checked_shapes(shapes).array().log(), shapes.array()),
      shapes_(std::move(shapes)),
      log_shapes_(shapes_.array().log()),
      shape_terms_(shapes_) {}

void NegativeBinomialObservation::check(const Eigen::ArrayXXd& x) const {
  if (x.rows() != shapes_.size()) {
    throw InputError("negative_binomial: " + std::to_string(x.rows()) +
                     " rows of counts for a model with " + std::to_string(shapes_.size()) +
                     " shapes");
  }
  // Two vectorised reductions first (x * 0 sums to 0 only if every x is finite); the loop only
  // to name the first bad entry.
  if (x.size() == 0 || ((x * 0.0).sum() == 0.0 && x.minCoeff() >= 0.0)) return;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      const double count = x(i, j);
      if (!(count >= 0.0) || !std::isfinite(count)) {
        throw InputError("negative_binomial: count " + std::to_string(count) + at_entry(i, j) +
                         " is not a finite non-negative number");
      }
    }
  }
}

void NegativeBinomialObservation::pointwise(const Eigen::ArrayXXd& x, Eigen::Index col,
                                            const Eigen::ArrayXd& eta,
                                            PointwiseDerivatives& at) const {
  SoftplusTerms& terms = softplus_scratch(x.rows());
  terms.evaluate(eta, log_shapes_, at.wanted[0]);
  terms.likelihood(x.col(col), x.col(col) + shapes_.array(), eta, at);
}

void NegativeBinomialObservation::add_eta_free_terms(const Eigen::ArrayXXd& x,
                                                     Eigen::ArrayXXd& ell) const {
  for (Index j = 0; j < x.cols(); ++j) {
    if (ShapeTerms::tabulated(x.col(j))) {
      for (Index i = 0; i < x.rows(); ++i)
        ell(i, j) += shape_terms_.tabulated_value(static_cast<Index>(x(i, j)), i);
      continue;
    }
    for (Index i = 0; i < x.rows(); ++i) ell(i, j) += shape_terms_.value(x(i, j), i, shapes_(i));
  }
}

void NegativeBinomialObservation::predicted_mean(const Eigen::ArrayXXd& mu,
                                                 const Eigen::ArrayXXd& s2,
                                                 Eigen::ArrayXXd& mean) const {
  mean = (mu + 0.5 * s2).exp();
}

double NegativeBinomialObservation::log_base_measure(const Eigen::ArrayXXd& x) const {
  check(x);
  double sum = 0.0;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) sum -= boost::math::lgamma(x(i, j) + 1.0);
  }
  return sum;
}

// With u = eta - log r, p = sigmoid(u) (du/dr = -1/r, d softplus/du = p, dp/du = p (1 - p)):
//   d ell/dr   = a_r + (1 + x/r) E p - E softplus(u),
//   d2 ell/dr2 = a_rr + E p^2 / r - x E[p (2 - p)] / r^2,
// the expectations taken by the same quadrature (a_r, a_rr: shape_normaliser_derivatives): the
// moments of the readout statistics' expected_terms at the same (mu, s2), so no second pass.
void NegativeBinomialObservation::row_parameter_derivatives(const Eigen::ArrayXXd& x,
                                                            const Eigen::ArrayXXd& mu,
                                                            const Eigen::ArrayXXd& s2,
                                                            Eigen::MatrixXd& gradient,
                                                            Eigen::MatrixXd& curvature) const {
  check_same_shape("negative_binomial", x, mu, s2);
  check(x);
  const Eigen::ArrayXd r = shapes_.array();
  const SoftplusMoments& m = moments(mu, s2);
  const Eigen::ArrayXXd& softplus_mean = m.of[SoftplusMoments::kSoftplus];
  const Eigen::ArrayXXd& p_mean = m.of[SoftplusMoments::kP];
  const Eigen::ArrayXXd& p_squared_mean = m.of[SoftplusMoments::kPSquared];
  gradient.setZero(x.rows(), 1);
  curvature.setZero(x.rows(), 1);
  // Per entry; a bin whose counts are all tabulated in a loop without a test or call per entry
  // (the same numbers).
  const auto add = [&](Index i, Index j, const ShapeDerivatives& a) {
    const double count = x(i, j), shape = r(i);
    const double p = p_mean(i, j), p2 = p_squared_mean(i, j);
    gradient(i) += a.first + (1.0 + count / shape) * p - softplus_mean(i, j);
    curvature(i) += a.second + p2 / shape - count * (2.0 * p - p2) / (shape * shape);
  };
  for (Index j = 0; j < x.cols(); ++j) {
    if (ShapeTerms::tabulated(x.col(j))) {
      for (Index i = 0; i < x.rows(); ++i)
        add(i, j, shape_terms_.tabulated_derivatives(static_cast<Index>(x(i, j)), i));
    } else {
      for (Index i = 0; i < x.rows(); ++i) add(i, j, shape_terms_.derivatives(x(i, j), i, r(i)));
    }
  }
}

// ---- The model ----

class NegativeBinomialSpikeModel final : public SpikeModel {
 public:
  std::string name() const override { return "negative_binomial"; }
  std::vector<std::string> aliases() const override { return {"negbin"}; }
  std::string description() const override {
    return "negative binomial counts with log link, mean exp(c.z + d) and a learned shape r_n per "
           "neuron (variance mean + mean^2/r_n)";
  }
  std::vector<RowParameterSpec> row_parameters() const override {
    RowParameterSpec shape;
    shape.name = "dispersion";
    shape.description = "negative-binomial shape r of every neuron (variance = mean + mean^2/r)";
    shape.label = "negative-binomial shapes r_n";
    shape.transform = RowTransform::kLog;
    shape.prior_median = 10.0;  // log r_n ~ N(log 10, 3^2)
    shape.prior_sd = 3.0;
    shape.lower = 1e-3;
    shape.upper = 1e6;
    shape.simulation_default = 1.5;
    return {shape};
  }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>& row_values,
                                                bool, int nodes) const override {
    return std::make_unique<NegativeBinomialObservation>(row_values.at(0), nodes);
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override { return eta.exp(); }
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    return means.log().matrix();
  }
  // Gamma(r, mean/r) mixing of a Poisson mean: NB(mean, shape r).
  double draw(double mean, const std::vector<double>& row_values,
              RandomStream& stream) const override {
    const double shape = row_values.at(0);
    const double mixed = stream.next_gamma(shape) * (mean / shape);
    return static_cast<double>(stream.next_poisson(mixed));
  }
  std::uint64_t simulation_code() const override { return 5; }
};

}  // namespace

std::shared_ptr<const SpikeModel> make_negative_binomial_spike_model() {
  return std::make_shared<NegativeBinomialSpikeModel>();
}

}  // namespace spikevi
