#pragma once
// Conversions between Eigen's column-major matrices and the row-major arrays HDF5 files hold.
#include <Eigen/Dense>
#include <vector>

namespace spikevi {

// Row-major copy of a matrix ([rows, cols] in the file).
inline std::vector<double> row_major(const Eigen::MatrixXd& m) {
  std::vector<double> out(static_cast<std::size_t>(m.size()));
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      out.data(), m.rows(), m.cols()) = m;
  return out;
}

inline Eigen::MatrixXd from_row_major(const std::vector<double>& data, Eigen::Index rows,
                                      Eigen::Index cols) {
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      data.data(), rows, cols);
}

inline std::vector<double> as_vector(const Eigen::VectorXd& v) {
  return std::vector<double>(v.data(), v.data() + v.size());
}

}  // namespace spikevi
