#include "support/test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>

#include "spikevi/evaluation/evaluation.hpp"
#include "spikevi/io/trial_counts.hpp"
#include "spikevi/model/simulation.hpp"

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

LinearGaussianModel random_linear_gaussian_model(int D, int channels, std::mt19937_64& rng) {
  LinearGaussianModel m;
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(random_normal(D, D, rng));
  m.A = 0.9 * Eigen::MatrixXd(qr.householderQ());
  m.b = random_normal(D, 1, rng, 0.3);
  m.Q = random_spd(D, rng, 0.1, 0.3);
  m.mu0 = random_normal(D, 1, rng);
  m.Sigma0 = random_spd(D, rng, 0.5, 1.0);
  m.W = random_normal(channels, D, rng);
  m.e = random_normal(channels, 1, rng);
  m.R = (random_normal(channels, 1, rng).array().abs() * 0.3 + 0.1).matrix();
  return m;
}

Eigen::ArrayXXd simulate_linear_gaussian(const LinearGaussianModel& m, int T,
                                         std::mt19937_64& rng) {
  const Eigen::Index D = m.A.rows();
  const Eigen::MatrixXd q_chol = m.Q.llt().matrixL();
  Eigen::VectorXd z = m.mu0 + Eigen::MatrixXd(m.Sigma0.llt().matrixL()) * random_normal(D, 1, rng);
  Eigen::ArrayXXd y(m.W.rows(), T);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int t = 0; t < T; ++t) {
    if (t > 0) z = m.A * z + m.b + q_chol * random_normal(D, 1, rng);
    const Eigen::VectorXd noise = random_normal(m.W.rows(), 1, rng);
    y.col(t) = (m.W * z + m.e + (m.R.array().sqrt() * noise.array()).matrix()).array();
    for (Eigen::Index j = 0; j < y.rows(); ++j)
      if (uniform(rng) < 0.15 || t == 1) y(j, t) = std::nan("");
  }
  return y;
}

GaussianTrial::GaussianTrial(const LinearGaussianModel& m, Eigen::ArrayXXd data)
    : model(m.R), y(std::move(data)) {
  readout.C = m.W;
  readout.d = m.e;
  readout.precision =
      Eigen::MatrixXd::Identity(m.W.cols() + 1, m.W.cols() + 1).replicate(1, m.W.rows());
}

Sites random_sites(int D, int T, std::mt19937_64& rng, double shift_sd) {
  Sites sites = Sites::zero(D, T);
  for (int t = 0; t < T; ++t) sites.precision.middleCols(t * D, D) = random_spd(D, rng, 0.1, 3.0);
  sites.shift = random_normal(D, T, rng, shift_sd);
  return sites;
}

Estimator& exact_expectations() {
  static DeterministicEstimator estimator;
  return estimator;
}

const Optimizer& natural_gradient() {
  static const std::unique_ptr<Optimizer> optimizer = make_optimizer(ModelSettings{}, 1, 1, 0);
  return *optimizer;
}

const Dataset& default_simulation() {
  static const Dataset data = simulate(SimulationSettings{});
  return data;
}

std::vector<TrialCounts> default_training_counts() {
  return make_trial_counts(default_simulation(), default_simulation().split->train_trials);
}

double default_cosmoothing(const GlobalState& globals) {
  const LocalStepSettings local{.tolerance = 1e-8, .max_iterations = 200};
  return cosmooth(InferenceModel::of(globals, ModelSettings{}), default_simulation(), local)
      .bits_per_spike;
}

}  // namespace spikevi::testing
