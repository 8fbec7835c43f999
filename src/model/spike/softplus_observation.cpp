// The softplus family's expectations from its moments (see softplus_observation.hpp).
#include "model/spike/softplus_observation.hpp"

#include <utility>

#include "model/observation_checks.hpp"

namespace spikevi {

using Eigen::Index;
using Moment = SoftplusMoments::Moment;

SoftplusObservation::SoftplusObservation(int nodes, Eigen::ArrayXd shifts, Eigen::ArrayXd shapes)
    : QuadratureObservation(nodes, kSoftplusNodeSchedule),
      shifts_(std::move(shifts)),
      shapes_(std::move(shapes)) {}

void SoftplusObservation::trials_of_column(const Eigen::ArrayXXd& x, Index col,
                                           Eigen::ArrayXd& n) const {
  if (shapes_.size() > 0)
    n = x.col(col) + shapes_;
  else
    n.setOnes(x.rows());
}

const SoftplusMoments& SoftplusObservation::first_terms(const Eigen::ArrayXXd& x,
                                                        const Eigen::ArrayXXd& mu,
                                                        const Eigen::ArrayXXd& s2,
                                                        Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                                                        Eigen::ArrayXXd& d2) const {
  check_same_shape(name().c_str(), x, mu, s2);
  check(x);
  const SoftplusMoments& m = moments(mu, s2);
  resize_like(x, ell, g, d2);
  Eigen::ArrayXd n(x.rows());
  for (Index j = 0; j < x.cols(); ++j) {
    trials_of_column(x, j, n);
    ell.col(j) = x.col(j) * mu.col(j) - n * m.of[Moment::kSoftplus].col(j);
    g.col(j) = x.col(j) - n * m.of[Moment::kP].col(j);
    d2.col(j) = -n * m.of[Moment::kPQ].col(j);
  }
  add_eta_free_terms(x, ell);
  return m;
}

void SoftplusObservation::higher_terms(const Eigen::ArrayXXd& x, const SoftplusMoments& m,
                                       Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const {
  d3.resize(x.rows(), x.cols());
  d4.resize(x.rows(), x.cols());
  Eigen::ArrayXd n(x.rows());
  for (Index j = 0; j < x.cols(); ++j) {
    trials_of_column(x, j, n);
    d3.col(j) = -n * m.of[Moment::kPQSkew].col(j);
    d4.col(j) = -n * m.of[Moment::kPQKurt].col(j);
  }
}

void SoftplusObservation::expected_log_likelihood(const Eigen::ArrayXXd& x,
                                                  const Eigen::ArrayXXd& mu,
                                                  const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                                  Eigen::ArrayXXd& g, Eigen::ArrayXXd& G) const {
  first_terms(x, mu, s2, ell, g, G);
  G *= 0.5;  // Price: d/ds2 E f = E f'' / 2
}

void SoftplusObservation::expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2,
                                               Eigen::ArrayXXd& d3, Eigen::ArrayXXd& d4) const {
  check_same_shape(name().c_str(), x, mu, s2);
  check(x);
  const SoftplusMoments& m = moments(mu, s2);
  d2.resize(x.rows(), x.cols());
  Eigen::ArrayXd n(x.rows());
  for (Index j = 0; j < x.cols(); ++j) {
    trials_of_column(x, j, n);
    d2.col(j) = -n * m.of[Moment::kPQ].col(j);  // as first_terms
  }
  higher_terms(x, m, d3, d4);
}

void SoftplusObservation::expected_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                         const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                         Eigen::ArrayXXd& g, Eigen::ArrayXXd& G,
                                         Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                                         Eigen::ArrayXXd& d4) const {
  const SoftplusMoments& m = first_terms(x, mu, s2, ell, g, d2);
  G = 0.5 * d2;  // Price: d/ds2 E f = E f'' / 2
  higher_terms(x, m, d3, d4);
}

}  // namespace spikevi
