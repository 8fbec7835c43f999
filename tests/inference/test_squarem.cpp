// SQUAREM's parts (squarem.hpp): the coordinates map the globals there and back, S3's step
// length sends a linear fixed-point iteration to its fixed point in one cycle, an extrapolation
// that would leave Sigma0 indefinite is pulled back towards the plain step, step_max grows and
// shrinks as in the R package, and the state survives a checkpoint.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/inference/squarem.hpp"

namespace spikevi {
namespace {

// A state of D = 2, N = 5 with a non-trivial dynamics posterior and readout.
GlobalState some_globals() {
  GlobalState g = make_prior_state(2, 5, PriorSettings{});
  g.dynamics.M << 0.9, 0.1, 0.05, -0.2, 0.8, -0.1;
  g.dynamics.V << 0.5, 0.1, 0.0, 0.1, 0.4, 0.05, 0.0, 0.05, 0.3;
  g.dynamics.Psi << 2.0, 0.3, 0.3, 1.5;
  g.dynamics.nu = 105.0;
  g.mu0 << 0.3, -0.4;
  g.Sigma0 << 1.0, 0.2, 0.2, 0.7;
  g.spikes.C = Eigen::MatrixXd::Constant(5, 2, 0.3);
  g.spikes.d = Eigen::VectorXd::LinSpaced(5, -1.0, 1.0);
  return g;
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).norm() / b.norm();
}

TEST(SquaremCoordinates, MapTheGlobalsThereAndBack) {
  const GlobalState g = some_globals();
  const GlobalState back = globals_at_squarem_coordinates(squarem_coordinates(g), g);
  EXPECT_LT(relative(back.dynamics.M, g.dynamics.M), 1e-13);
  EXPECT_LT(relative(back.dynamics.V, g.dynamics.V), 1e-13);
  EXPECT_LT(relative(back.dynamics.Psi, g.dynamics.Psi), 1e-13);
  EXPECT_EQ(back.dynamics.nu, g.dynamics.nu);
  EXPECT_EQ(back.mu0, g.mu0);
  EXPECT_LT(relative(back.Sigma0, g.Sigma0), 1e-14);
  EXPECT_EQ(back.spikes.C, g.spikes.C);
  EXPECT_EQ(back.spikes.d, g.spikes.d);
}

TEST(SquaremCoordinates, RefuseAStateWithoutAPositiveDefiniteSigma0) {
  const GlobalState g = some_globals();
  Eigen::VectorXd x = squarem_coordinates(g);
  // E[z1 z1'] follows the 19 dynamics coordinates (3x3, 2x3, 2x2) and mu0's 2: make it 0.
  x.segment(19 + 2, 4).setZero();
  EXPECT_THROW(globals_at_squarem_coordinates(x, g), NumericalError);
}

// x -> lambda x + c: r = (lambda - 1) e, v = (lambda - 1)^2 e with e = x0 - x*, so S3's
// alpha = -1 / (1 - lambda) and x' = x0 - 2 alpha r + alpha^2 v = x* exactly.
TEST(SquaremStepLength, SendsALinearIterationToItsFixedPointInOneCycle) {
  const double lambda = 0.85;
  const Eigen::VectorXd fixed = Eigen::VectorXd::LinSpaced(6, -2.0, 3.0);
  const Eigen::VectorXd x0 = Eigen::VectorXd::Constant(6, 1.0);
  const Eigen::VectorXd x1 = lambda * x0 + (1 - lambda) * fixed;
  const Eigen::VectorXd x2 = lambda * x1 + (1 - lambda) * fixed;
  const Eigen::VectorXd r = x1 - x0, v = x2 - 2 * x1 + x0;
  const double alpha = squarem_step_length(r, v, 100.0);
  EXPECT_NEAR(alpha, -1.0 / (1.0 - lambda), 1e-10);
  EXPECT_LT((x0 - 2 * alpha * r + alpha * alpha * v - fixed).norm(), 1e-12);
  EXPECT_EQ(squarem_step_length(r, v, 4.0), -4.0);         // clamped to step_max
  EXPECT_EQ(squarem_step_length(r, 10.0 * r, 4.0), -1.0);  // never shorter than plain
  EXPECT_EQ(squarem_step_length(r, Eigen::VectorXd::Zero(6), 4.0), -1.0);
}

// Three iterations whose readout moves slowly (alpha at step_max = 4) while E[z1 z1'] = s I
// falls 1, 0.5, `s2`.
struct Cycle {
  GlobalState x0, x1, x2;
  explicit Cycle(double s2) : x0(some_globals()), x1(x0), x2(x0) {
    x0.mu0.setZero();
    x0.spikes.C.setZero();
    x1 = x0;
    x2 = x0;
    x1.Sigma0 = 0.5 * Eigen::MatrixXd::Identity(2, 2);
    x2.Sigma0 = s2 * Eigen::MatrixXd::Identity(2, 2);
    x0.Sigma0 = Eigen::MatrixXd::Identity(2, 2);
    x1.spikes.C.setConstant(1.0);
    x2.spikes.C.setConstant(1.9);
  }
};

// A Squarem that has grown step_max to 4 and is due with the cycle's x0.
Squarem due_squarem(const Cycle& cycle) {
  Squarem squarem;
  squarem.attempted(true, -1.0);  // alpha reached step_max = 1: step_max 4
  squarem.plain_iteration(cycle.x0);
  squarem.plain_iteration(cycle.x1);
  return squarem;
}

TEST(Squarem, ExtrapolatesAtStepMaxWhenTheStateStaysValid) {
  const Cycle cycle(0.3);
  const Squarem squarem = due_squarem(cycle);
  ASSERT_TRUE(squarem.due());
  const std::optional<Squarem::Proposal> proposal = squarem.propose(cycle.x1, cycle.x2);
  ASSERT_TRUE(proposal.has_value());
  EXPECT_EQ(proposal->alpha, -4.0);
  // C: 0 + 8 * 1 + 16 * (1.9 - 2 + 0) = 6.4; s: 1 - 4 + 16 * 0.3 = 1.8.
  EXPECT_NEAR(proposal->globals.spikes.C(0, 0), 6.4, 1e-12);
  EXPECT_NEAR(proposal->globals.Sigma0(0, 0), 1.8, 1e-12);
}

TEST(Squarem, PullsAnIndefiniteSigma0BackTowardsThePlainStep) {
  const Cycle cycle(0.1);  // at alpha = -4: s = 1 - 4 + 16 * 0.1 < 0
  const std::optional<Squarem::Proposal> proposal = due_squarem(cycle).propose(cycle.x1, cycle.x2);
  ASSERT_TRUE(proposal.has_value());
  // alpha -4, -2.5, -1.75, -1.375, -1.1875 leave s < 0; -1.09375 gives s = 0.026.
  EXPECT_EQ(proposal->alpha, -1.09375);
  EXPECT_EQ(Eigen::LLT<Eigen::MatrixXd>(proposal->globals.Sigma0).info(), Eigen::Success);
}

TEST(Squarem, StepMaxStartsAtThePlainStepAndGrowsFourfoldWhenReached) {
  const Cycle cycle(0.3);
  Squarem squarem;
  squarem.plain_iteration(cycle.x0);
  EXPECT_FALSE(squarem.due());
  squarem.plain_iteration(cycle.x1);
  ASSERT_TRUE(squarem.due());
  EXPECT_FALSE(squarem.propose(cycle.x1, cycle.x2).has_value());  // step_max 1: alpha = -1
  squarem.attempted(true, -1.0);
  EXPECT_FALSE(squarem.due());
  squarem.plain_iteration(cycle.x0);
  squarem.plain_iteration(cycle.x1);
  EXPECT_EQ(squarem.propose(cycle.x1, cycle.x2)->alpha, -4.0);
  squarem.attempted(false, -4.0);  // rejected at step_max: back to 1
  squarem.plain_iteration(cycle.x0);
  squarem.plain_iteration(cycle.x1);
  EXPECT_FALSE(squarem.propose(cycle.x1, cycle.x2).has_value());
}

TEST(Squarem, ItsStateSurvivesACheckpoint) {
  const Cycle cycle(0.3);
  const Squarem squarem = due_squarem(cycle);
  const Eigen::Index size = squarem_coordinates(cycle.x0).size();
  OptimizerState saved = Squarem::state_template(size);
  squarem.add_state(saved, size);
  Squarem restored;
  restored.restore(saved);
  EXPECT_TRUE(restored.due());
  const auto a = squarem.propose(cycle.x1, cycle.x2);
  const auto b = restored.propose(cycle.x1, cycle.x2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->alpha, b->alpha);
  EXPECT_EQ(a->globals.spikes.C, b->globals.spikes.C);
  EXPECT_THROW(restored.restore(OptimizerState{}), InputError);
}

}  // namespace
}  // namespace spikevi
