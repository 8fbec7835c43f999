#include "support/test_support.hpp"

#include <unistd.h>

#include <atomic>

namespace spikevi::testing {

Eigen::MatrixXd random_normal(int rows, int cols, std::mt19937_64& rng, double sd) {
  std::normal_distribution<double> normal(0.0, sd);
  Eigen::MatrixXd out(rows, cols);
  for (Eigen::Index j = 0; j < out.cols(); ++j)
    for (Eigen::Index i = 0; i < out.rows(); ++i) out(i, j) = normal(rng);
  return out;
}

Eigen::MatrixXd random_spd(int n, std::mt19937_64& rng, double floor, double scale) {
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(random_normal(n, n, rng));
  const Eigen::MatrixXd rotation = qr.householderQ();
  std::uniform_real_distribution<double> eigen(floor, floor + scale);
  Eigen::VectorXd values(n);
  for (int i = 0; i < n; ++i) values(i) = eigen(rng);
  const Eigen::MatrixXd spd = rotation * values.asDiagonal() * rotation.transpose();
  return 0.5 * (spd + spd.transpose());
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("spikevi-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff();
}

}  // namespace spikevi::testing
