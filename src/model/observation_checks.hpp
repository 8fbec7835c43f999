#pragma once
// Shape checks and messages shared by the observation models (private to src/model/).
#include <Eigen/Dense>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {

inline bool same_shape(const Eigen::ArrayXXd& a, const Eigen::ArrayXXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols();
}

inline void resize_like(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& a, Eigen::ArrayXXd& b,
                        Eigen::ArrayXXd& c) {
  a.resize(x.rows(), x.cols());
  b.resize(x.rows(), x.cols());
  c.resize(x.rows(), x.cols());
}

// InputError unless x, mu and s2 have one shape.
inline void check_same_shape(const char* model, const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                             const Eigen::ArrayXXd& s2) {
  if (same_shape(x, mu) && same_shape(x, s2)) return;
  throw InputError(std::string(model) + ": observations are " + std::to_string(x.rows()) + " x " +
                   std::to_string(x.cols()) + " but mu is " + std::to_string(mu.rows()) + " x " +
                   std::to_string(mu.cols()) + " and s2 " + std::to_string(s2.rows()) + " x " +
                   std::to_string(s2.cols()));
}

inline std::string at_entry(Eigen::Index i, Eigen::Index j) {
  return " at (" + std::to_string(i) + ", " + std::to_string(j) + ")";
}

// InputError for a count that is negative, NaN or infinite, naming the model and the entry.
inline void check_counts(const char* model, const Eigen::ArrayXXd& x) {
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const double count = x(i, j);
      if (!(count >= 0.0) || !std::isfinite(count))
        throw InputError(std::string(model) + ": count " + std::to_string(count) + at_entry(i, j) +
                         " is not a finite non-negative number");
    }
}

}  // namespace spikevi
