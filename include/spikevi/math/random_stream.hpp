#pragma once
// Counter-based random numbers (Random123 Philox4x64, DESIGN.md §4): every draw is a pure
// function of (seed, purpose, iteration, trial, inner step, draw index), so results do not
// depend on the number of ranks or on how many draws came before, and survive a restart.
#include <cstdint>

namespace spikevi {

enum class RandomPurpose : std::uint64_t {
  kMinibatch = 1,
  kMonteCarlo = 2,
  kSimulation = 3,
  kInitialisation = 4,
  kPosteriorSample = 5,
  kCalibration = 6,
  kSplit = 7,
  kCubature = 8,
};

struct RandomKey {
  std::uint64_t seed = 0;
  RandomPurpose purpose = RandomPurpose::kMonteCarlo;
};

struct RandomCounter {
  std::uint64_t iteration = 0;
  std::uint64_t trial = 0;
  std::uint64_t inner = 0;  // inner step, or any further index the caller needs
};

// A stream of draws at one (key, counter); draw i of the stream is reproducible alone.
class RandomStream {
 public:
  RandomStream(RandomKey key, RandomCounter counter);
  // Uniform on the open interval (0, 1).
  double uniform(std::uint64_t draw);
  // Standard normal (Box-Muller on two uniforms of the block at `draw`).
  double normal(std::uint64_t draw);
  // Sequential access: next uniform / normal / 64-bit word, advancing an internal index.
  double next_uniform();
  double next_normal();
  std::uint64_t next_u64();
  // Poisson(mean) by inversion (mean < 30) or the PTRS transformed rejection (Hormann 1993).
  std::uint64_t next_poisson(double mean);
  // Gamma(shape, 1) by Marsaglia-Tsang.
  double next_gamma(double shape);

 private:
  std::uint64_t block(std::uint64_t index, int lane);
  RandomKey key_;
  RandomCounter counter_;
  std::uint64_t next_ = 0;
};

}  // namespace spikevi
