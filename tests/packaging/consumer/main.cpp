// Calls into the installed library through its public headers only.
#include <cmath>
#include <cstdio>
#include <numbers>

#include "spikevi/math/quadrature.hpp"
#include "spikevi/version.hpp"

int main() {
  const spikevi::GaussHermiteRule rule(20);
  const double total = rule.weights().sum();  // the rule integrates e^{-t^2} to sqrt(pi)
  const double error = std::abs(total - std::sqrt(std::numbers::pi));
  std::printf("consumer: spikevi %s (git revision %s)\n", spikevi::version(),
              spikevi::git_revision());
  std::printf("consumer: %d-point Gauss-Hermite rule, weights sum to sqrt(pi) within %.1e\n",
              rule.points(), error);
  return error < 1e-12 ? 0 : 1;
}
