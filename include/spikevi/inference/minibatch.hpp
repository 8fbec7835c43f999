#pragma once
// Stochastic VI over minibatches of trials (DESIGN.md §3-4): which trials iteration i uses,
// the step size rho_i and the scale K/|B| that makes the minibatch statistics unbiased.
#include <cstdint>
#include <vector>

namespace spikevi {

struct MinibatchSettings {
  int size = 0;        // trials per iteration; 0 (or >= the number of trials) = full batch
  double tau = 1.0;    // rho_i = (i + tau)^-kappa, i = 0, 1, ...; tau >= 1
  double kappa = 0.7;  // in (0.5, 1]
  std::uint64_t seed = 1;

  bool full_batch(int population) const { return size <= 0 || size >= population; }
  // rho of the global step that uses the statistics of (0-based) iteration i; 1 in full batch.
  double step_size(int iteration, int population) const;
  // Throws ConfigError naming the option (--minibatch, --step-tau, --step-kappa) if invalid.
  void validate(int population) const;
};

// The positions (0 .. population-1, ascending) of minibatch `iteration`: `size` of them drawn
// uniformly without replacement (Floyd's algorithm) from the counter-based stream keyed by
// (seed, kMinibatch, iteration), so every rank draws the same set whatever the rank count.
std::vector<int> draw_minibatch(std::uint64_t seed, std::uint64_t iteration, int population,
                                int size);

// K/|B|: the factor that makes the sum of a minibatch's statistics an unbiased estimate of the
// full-data sum (each trial is in B with probability |B|/K).
inline double statistics_scale(int population, int batch) {
  return static_cast<double>(population) / static_cast<double>(batch);
}

}  // namespace spikevi
