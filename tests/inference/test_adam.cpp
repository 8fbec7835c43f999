// Adam (Kingma & Ba 2015, Algorithm 1) as spikevi takes its steps, and the Adam optimiser's
// state: what a checkpoint saves and the global step's retries roll back.
#include <gtest/gtest.h>

#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/inference/adam.hpp"
#include "spikevi/inference/optimizer.hpp"

namespace spikevi {
namespace {

TEST(AdamState, FirstStepIsTheLearningRateTimesTheGradientsSign) {
  // After one step m^ = g and v^ = g^2, so the step is rate g / (|g| + eps).
  AdamState state;
  const AdamSettings settings{.learning_rate = 0.1, .epsilon = 1e-8};
  Eigen::ArrayXXd gradient(2, 2);
  gradient << 3.0, -0.5, 1e-3, -40.0;
  const Eigen::ArrayXXd step = state.step(gradient, settings, 0.1);
  EXPECT_EQ(state.steps, 1);
  for (Eigen::Index i = 0; i < gradient.size(); ++i)
    EXPECT_NEAR(step(i), 0.1 * gradient(i) / (std::abs(gradient(i)) + 1e-8), 1e-15);
}

TEST(AdamState, FollowsAlgorithmOneOverSeveralSteps) {
  AdamState state;
  const AdamSettings settings{.learning_rate = 0.05, .beta1 = 0.9, .beta2 = 0.999,
                              .epsilon = 1e-8};
  double m = 0.0, v = 0.0;
  const double gradients[] = {1.0, -2.0, 0.5, 4.0, -0.25};
  for (int t = 1; t <= 5; ++t) {
    const double g = gradients[t - 1];
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    const double expected =
        0.05 * (m / (1.0 - std::pow(0.9, t))) / (std::sqrt(v / (1.0 - std::pow(0.999, t))) + 1e-8);
    const Eigen::ArrayXXd step = state.step(Eigen::ArrayXXd::Constant(1, 1, g), settings, 0.05);
    EXPECT_NEAR(step(0, 0), expected, 1e-15 * std::abs(expected)) << "step " << t;
  }
  EXPECT_EQ(state.steps, 5);
}

TEST(AdamState, StartsAfreshWhenTheParametersChangeShape) {
  AdamState state;
  state.step(Eigen::ArrayXXd::Ones(2, 3), AdamSettings{}, 0.05);
  state.step(Eigen::ArrayXXd::Ones(2, 3), AdamSettings{}, 0.05);
  ASSERT_EQ(state.steps, 2);
  const Eigen::ArrayXXd step = state.step(Eigen::ArrayXXd::Ones(3, 2), AdamSettings{}, 0.05);
  EXPECT_EQ(state.steps, 1);
  EXPECT_EQ(state.first.rows(), 3);
  EXPECT_NEAR(step(0, 0), 0.05, 1e-9);
}

TEST(AdamOptimizer, OwnsMomentsThatRestoreAndCloneExactly) {
  ModelSettings settings;
  settings.optimizer = OptimizerKind::kAdam;
  const auto optimizer = make_optimizer(settings, 2, 5, 1);
  EXPECT_EQ(optimizer->kind(), OptimizerKind::kAdam);
  const OptimizerState state = optimizer->state();
  ASSERT_EQ(state.size(), 4u);  // readout rows and row parameters, first and second moments
  EXPECT_EQ(state.at("readout_adam/first").rows(), 3);
  EXPECT_EQ(state.at("readout_adam/first").cols(), 5);
  EXPECT_EQ(state.at("shape_adam/second").rows(), 5);
  EXPECT_EQ(state.at("shape_adam/second").cols(), 1);
  EXPECT_EQ(state.at("readout_adam/second").abs().maxCoeff(), 0.0);

  OptimizerState saved = state;
  saved.at("readout_adam/first")(1, 2) = 0.25;
  optimizer->restore(saved, 7);
  const auto copy = optimizer->clone();
  EXPECT_EQ(copy->state().at("readout_adam/first")(1, 2), 0.25);
  EXPECT_EQ(optimizer->state().at("readout_adam/first")(1, 2), 0.25);

  // Without row parameters there are no moments for them; natural gradients keep none.
  EXPECT_EQ(make_optimizer(settings, 2, 5, 0)->state().size(), 2u);
  EXPECT_TRUE(make_optimizer(ModelSettings{}, 2, 5, 1)->state().empty());
  EXPECT_EQ(make_optimizer(ModelSettings{}, 2, 5, 1)->kind(), OptimizerKind::kNatural);
}

TEST(Optimizer, NamesParseAndPrint) {
  EXPECT_EQ(parse_optimizer("natural"), OptimizerKind::kNatural);
  EXPECT_EQ(parse_optimizer("adam"), OptimizerKind::kAdam);
  EXPECT_EQ(optimizer_name(OptimizerKind::kAdam), "adam");
  EXPECT_THROW(parse_optimizer("sgd"), ConfigError);
}

}  // namespace
}  // namespace spikevi
