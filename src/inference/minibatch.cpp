#include "spikevi/inference/minibatch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

// A uniform integer in [0, bound) without modulo bias (rejection of the top partial range).
std::uint64_t uniform_below(RandomStream& stream, std::uint64_t bound) {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t limit = max - max % bound;
  std::uint64_t word = stream.next_u64();
  while (word >= limit) word = stream.next_u64();
  return word % bound;
}

}  // namespace

double MinibatchSettings::step_size(int iteration, int population) const {
  if (full_batch(population)) return 1.0;
  return std::pow(static_cast<double>(iteration) + tau, -kappa);
}

void MinibatchSettings::validate(int population) const {
  if (size < 0)
    throw ConfigError("--minibatch must be >= 0 (0 = full batch; got " + std::to_string(size) +
                      ")");
  if (size > population)
    throw ConfigError("--minibatch " + std::to_string(size) + " is larger than the " +
                      std::to_string(population) + " training trials");
  if (!(tau >= 1.0) || !std::isfinite(tau))
    throw ConfigError("--step-tau must be finite and >= 1 (got " + std::to_string(tau) + ")");
  if (!(kappa > 0.5 && kappa <= 1.0))
    throw ConfigError("--step-kappa must lie in (0.5, 1] (got " + std::to_string(kappa) + ")");
}

std::vector<int> draw_minibatch(std::uint64_t seed, std::uint64_t iteration, int population,
                                int size) {
  if (size < 0 || size > population)
    throw ConfigError("minibatch of " + std::to_string(size) + " from " +
                      std::to_string(population) + " trials");
  RandomStream stream(RandomKey{seed, RandomPurpose::kMinibatch}, RandomCounter{iteration, 0, 0});
  // Floyd: for j = K-B .. K-1 pick t uniform in [0, j]; take t, or j if t is already taken.
  std::set<int> chosen;
  for (int j = population - size; j < population; ++j) {
    const int t = static_cast<int>(uniform_below(stream, static_cast<std::uint64_t>(j) + 1));
    chosen.insert(chosen.count(t) ? j : t);
  }
  return {chosen.begin(), chosen.end()};
}

}  // namespace spikevi
