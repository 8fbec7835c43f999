#pragma once
// Small helpers shared by the test executables.
#include <Eigen/Dense>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/local_step.hpp"
#include "spikevi/inference/optimizer.hpp"
#include "spikevi/inference/trial.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/model/global_state.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/readout.hpp"

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

// A linear-Gaussian state-space model with a Gaussian modality (the exactness tests of
// DESIGN.md §2): z_t = A z_{t-1} + b + N(0, Q), z_1 ~ N(mu0, Sigma0), y_t ~ N(W z_t + e, diag R).
struct LinearGaussianModel {
  Eigen::MatrixXd A, Q, Sigma0, W;
  Eigen::VectorXd b, mu0, e, R;
};

// A random stable model of D latents and `channels` channels.
LinearGaussianModel random_linear_gaussian_model(int D, int channels, std::mt19937_64& rng);

// y: channels x T with about 15 % of entries NaN and bin 1 entirely missing.
Eigen::ArrayXXd simulate_linear_gaussian(const LinearGaussianModel& m, int T, std::mt19937_64& rng);

// The Gaussian modality of one trial: readout (W, e), model (R) and data y.
struct GaussianTrial {
  Readout readout;
  GaussianObservation model;
  Eigen::ArrayXXd y;
  GaussianTrial(const LinearGaussianModel& m, Eigen::ArrayXXd data);
};

// Random sites (L_t SPD with eigenvalues in [0.1, 3.1], l_t ~ N(0, shift_sd^2)): any start of a
// local step.
Sites random_sites(int D, int T, std::mt19937_64& rng, double shift_sd = 3.0);

// Each modality's own deterministic expectations (one shared estimator: tests run serially).
Estimator& exact_expectations();
// The natural-gradient optimiser (stateless).
const Optimizer& natural_gradient();

// Largest absolute element-wise difference.
double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

// The default simulation (SimulationSettings{}: 60 neurons, D = 4, 40 trials of 100 bins, 32 of
// them for training), made once; its training trials; and the co-smoothing (bits per held-out
// spike, local steps to 1e-8) of a Poisson fit's globals on its test trials.
const Dataset& default_simulation();
std::vector<TrialCounts> default_training_counts();
double default_cosmoothing(const GlobalState& globals);

}  // namespace spikevi::testing
