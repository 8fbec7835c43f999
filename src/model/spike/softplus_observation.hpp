#pragma once
// The quadrature of the softplus family (negative binomial, Bernoulli; private to
// src/model/spike/): f(eta) = x eta - n softplus(eta - shift) with one shift per row and
// n = x + r_row (shapes given) or n = 1 (none), so that with the moments of softplus_moments.hpp
//   ell = x mu - n E softplus(u) (+ add_eta_free_terms),  g = x - n E p,  G = E f'' / 2,
//   E f'' = -n E pq,  E f''' = -n E pq (q - p),  E f'''' = -n E pq (1 - 6 pq).
// Each entry takes the rule its own s2 needs (the model's ladder), rather than the largest s2
// of its bin as QuadratureObservation's generic pass does; the promise per entry is the same.
// pointwise() (Monte Carlo, evaluation) stays the derived model's.
#include <Eigen/Dense>

#include "model/spike/softplus_moments.hpp"
#include "spikevi/model/observation_model.hpp"

namespace spikevi {

class SoftplusObservation : public QuadratureObservation {
 public:
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const override;
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                            const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override;
  // The same numbers as the two calls.
  void expected_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                      const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                      Eigen::ArrayXXd& G, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                      Eigen::ArrayXXd& d4) const override;

 protected:
  // `shifts`: one per row, or empty for 0; `shapes`: r per row for n = x + r, or empty for
  // n = 1. ConfigError for bad `nodes` (QuadratureObservation).
  SoftplusObservation(int nodes, Eigen::ArrayXd shifts, Eigen::ArrayXd shapes);

  // softplus_moments at (mu, s2) with this model's rule and shifts (valid until this thread's
  // next call).
  const SoftplusMoments& moments(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2) const {
    return softplus_moments(rule(), mu, s2, shifts_);
  }

 private:
  // ell, g and E f'' (into d2) of the entries, from the moments; checks shapes and x first.
  const SoftplusMoments& first_terms(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                     const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell,
                                     Eigen::ArrayXXd& g, Eigen::ArrayXXd& d2) const;
  // E f''' and E f''''.
  void higher_terms(const Eigen::ArrayXXd& x, const SoftplusMoments& m, Eigen::ArrayXXd& d3,
                    Eigen::ArrayXXd& d4) const;
  // n of every row of bin `col`.
  void trials_of_column(const Eigen::ArrayXXd& x, Eigen::Index col, Eigen::ArrayXd& n) const;

  Eigen::ArrayXd shifts_, shapes_;
};

}  // namespace spikevi
