#include "spikevi/inference/adam.hpp"

#include <cmath>

#include "spikevi/error.hpp"

namespace spikevi {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "natural") return OptimizerKind::kNatural;
  if (name == "adam") return OptimizerKind::kAdam;
  throw ConfigError("--optimizer must be natural or adam (got '" + name + "')");
}

std::string optimizer_name(OptimizerKind optimizer) {
  return optimizer == OptimizerKind::kAdam ? "adam" : "natural";
}

Eigen::ArrayXXd AdamState::step(const Eigen::ArrayXXd& gradient, const AdamSettings& settings,
                                double rate) {
  if (first.rows() != gradient.rows() || first.cols() != gradient.cols()) {
    first = Eigen::ArrayXXd::Zero(gradient.rows(), gradient.cols());
    second = first;
    steps = 0;
  }
  ++steps;
  first = settings.beta1 * first + (1.0 - settings.beta1) * gradient;
  second = settings.beta2 * second + (1.0 - settings.beta2) * gradient.square();
  const double first_correction = 1.0 - std::pow(settings.beta1, steps);
  const double second_correction = 1.0 - std::pow(settings.beta2, steps);
  return rate * (first / first_correction) /
         ((second / second_correction).sqrt() + settings.epsilon);
}

}  // namespace spikevi
