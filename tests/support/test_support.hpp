#pragma once
// Small helpers shared by the test executables.
#include <Eigen/Dense>
#include <filesystem>
#include <random>
#include <string>

namespace spikevi::testing {

// A random symmetric positive-definite n x n matrix with eigenvalues in [floor, floor + scale].
Eigen::MatrixXd random_spd(int n, std::mt19937_64& rng, double floor = 0.5, double scale = 2.0);
Eigen::MatrixXd random_normal(int rows, int cols, std::mt19937_64& rng, double sd = 1.0);

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Largest absolute element-wise difference.
double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

}  // namespace spikevi::testing
