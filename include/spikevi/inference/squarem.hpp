#pragma once
// SQUAREM (R. Varadhan and C. Roland, "Simple and globally convergent methods for accelerating
// the convergence of any EM algorithm", Scand. J. Stat. 35(2), 2008), scheme S3, over the
// globals of full-batch VB-EM (fit --accelerate squarem; DESIGN.md §3). With F the plain
// iteration (local steps, then the global step), x0 the globals of a cycle's first iteration,
// x1 = F(x0), x2 = F(x1):
//   r = x1 - x0,  v = x2 - 2 x1 + x0,  alpha = -||r|| / ||v||  (clamped to [-step_max, -1]),
//   x' = x0 - 2 alpha r + alpha^2 v,
// and the iteration after x' is always a plain F step (the stabilising step). alpha = -1 gives
// x2 itself. Like the R package's squarem1, step_max starts at 1 and grows fourfold whenever
// alpha reaches it, and shrinks fourfold (not below 1) when such an extrapolation is rejected.
// The driver rejects an extrapolation whose objective does not rise above the last one's.
#include <Eigen/Dense>
#include <optional>
#include <string>

#include "spikevi/inference/optimizer.hpp"
#include "spikevi/model/global_state.hpp"

namespace spikevi {

enum class Acceleration { kNone, kSquarem };
Acceleration parse_acceleration(const std::string& name);  // "none" | "squarem"; ConfigError
std::string acceleration_name(Acceleration acceleration);

// The coordinates SQUAREM extrapolates, chosen so that a straight line through two states is
// mostly a state again and every block is of order one: the dynamics' MNIW natural parameters
// divided by nu (second moments of the transitions), mu0 and E[z1 z1'] = Sigma0 + mu0 mu0', the
// spike readout rows (C, d), the row parameters' unconstrained coordinates, and each Gaussian
// modality's regression statistics divided by the channel's observed bins.
Eigen::VectorXd squarem_coordinates(const GlobalState& globals);

// The globals at coordinates `x`, everything they do not hold (priors, nu, the readouts'
// precisions) taken from `like`; continuous readouts are solved from their statistics. Throws
// NumericalError where `x` is no valid state (V^-1, Psi or Sigma0 not SPD, a modality's second
// moments not SPD, a non-finite value).
GlobalState globals_at_squarem_coordinates(const Eigen::VectorXd& x, const GlobalState& like);

// S3's step length -||r|| / ||v||, clamped to [-step_max, -1] (-1 where v = 0).
double squarem_step_length(const Eigen::VectorXd& r, const Eigen::VectorXd& v, double step_max);

class Squarem {
 public:
  // An extrapolated state and the alpha it was taken with (< -1).
  struct Proposal {
    GlobalState globals;
    double alpha = -1.0;
  };

  explicit Squarem(int max_backtracks = 10) : max_backtracks_(max_backtracks) {}

  // Whether the next iteration extrapolates: two plain iterations since the last attempt.
  bool due() const { return plain_iterations_ >= 2; }
  // With `last` the globals of the last iteration (x1) and `plain` = F(x1) (x2): x', alpha
  // halved towards -1 while x' is not a valid state. Nothing when alpha comes to -1 (x' = x2:
  // the plain step), which ends the cycle as an accepted step would (call attempted(true, -1)).
  std::optional<Proposal> propose(const GlobalState& last, const GlobalState& plain) const;
  // After a plain iteration, with its globals (the first of a cycle is x0).
  void plain_iteration(const GlobalState& globals);
  // After an extrapolating iteration (alpha -1: the proposal was the plain step).
  void attempted(bool accepted, double alpha);

  // The state a restart needs (the cycle's x0, the counter and step_max), as named arrays
  // beside the optimiser's (FitState::optimizer_state), and back; `coordinates`: the size of
  // squarem_coordinates for the fit.
  static OptimizerState state_template(Eigen::Index coordinates);
  void add_state(OptimizerState& state, Eigen::Index coordinates) const;
  void restore(const OptimizerState& state);  // InputError when the entries are missing

 private:
  int max_backtracks_;
  int plain_iterations_ = 0;  // since the last extrapolation attempt
  double step_max_ = 1.0;
  Eigen::VectorXd first_;  // x0: coordinates of the cycle's first plain iteration
};

}  // namespace spikevi
