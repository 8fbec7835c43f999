#pragma once
// Adam (Kingma & Ba 2015, Algorithm 1), the Euclidean-gradient baseline that
// `--optimizer adam` puts in place of the natural-gradient steps, so that users can see what
// the natural gradients buy (DESIGN.md §2-3). Ascent: the step follows the gradient.
#include <Eigen/Dense>
#include <string>

namespace spikevi {

enum class OptimizerKind { kNatural, kAdam };

// "natural" or "adam" (ConfigError naming --optimizer otherwise).
OptimizerKind parse_optimizer(const std::string& name);
std::string optimizer_name(OptimizerKind optimizer);

struct AdamSettings {
  double learning_rate = 0.05;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

// The moment estimates of one parameter block (any shape, seen as a flat array).
struct AdamState {
  Eigen::ArrayXXd first, second;  // biased first and second moment estimates
  int steps = 0;
  // The step to add to the parameters for this gradient (same shape), scaled by `rate`
  // (settings.learning_rate times any damping); resets the moments on a change of shape.
  Eigen::ArrayXXd step(const Eigen::ArrayXXd& gradient, const AdamSettings& settings, double rate);
};

}  // namespace spikevi
