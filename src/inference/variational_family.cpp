#include "spikevi/inference/variational_family.hpp"

#include "spikevi/error.hpp"
#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/inference/mean_field.hpp"

namespace spikevi {

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

}  // namespace spikevi
