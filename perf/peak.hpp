#pragma once
// The machine's measured single-core dense matrix-multiply peak, so that benchmark figures read
// as fractions of it: the median GFLOP/s of repeated 1024 x 1024 double GEMMs (Eigen, one
// thread), measured once per process.
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <vector>

namespace spikevi::perf {

inline double measured_gemm_peak_gflops() {
  static const double peak = [] {
    const int n = 1024;
    const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n);
    const Eigen::MatrixXd b = Eigen::MatrixXd::Random(n, n);
    Eigen::MatrixXd c(n, n);
    std::vector<double> rates;
    for (int repeat = 0; repeat < 7; ++repeat) {
      const auto start = std::chrono::steady_clock::now();
      c.noalias() = a * b;
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rates.push_back(2.0 * n * n * n / seconds * 1e-9);
    }
    std::nth_element(rates.begin(), rates.begin() + 3, rates.end());
    return rates[3];
  }();
  return peak;
}

}  // namespace spikevi::perf
