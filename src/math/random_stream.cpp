// Counter-based random draws (DESIGN.md §4). Philox4x64-10 maps (counter, key) to a block of
// four 64-bit words with key = (seed, purpose) and counter = (iteration, trial, inner, block).
// The words of a stream are numbered w = 4 * block + lane:
//   uniform(i)      word i
//   normal(i)       words 2i and 2i + 1 (one lane pair of block i / 2), Box-Muller, cosine half
//   next_*()        consume words in order from an internal index: one per uniform or u64,
//                   two per normal, so sequential draws never share a word.
// uniform(i) and normal(j) index the same words differently; a stream used by index should
// use one kind of draw only.
#include "spikevi/math/random_stream.hpp"

#include <Random123/philox.h>

#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <numbers>
#include <string>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

using Philox = r123::Philox4x64;

// (k + 1/2) 2^-52 for the top 52 bits k: equispaced, symmetric, never 0 or 1. (With 53 bits
// the largest value, 1 - 2^-54, is not a double and rounds to 1.)
constexpr double open_unit(std::uint64_t word) {
  return (static_cast<double>(word >> 12) + 0.5) * 0x1p-52;
}
static_assert(open_unit(0) > 0.0 && open_unit(~std::uint64_t{0}) < 1.0);

Philox::ctr_type philox_block(RandomKey key, RandomCounter counter, std::uint64_t index) {
  const Philox::ctr_type ctr = {{counter.iteration, counter.trial, counter.inner, index}};
  const Philox::key_type k = {{key.seed, static_cast<std::uint64_t>(key.purpose)}};
  return Philox()(ctr, k);
}

// Box-Muller on two uniforms in (0, 1); u1 > 0 keeps the logarithm finite.
double box_muller(double u1, double u2) {
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Poisson by sequential search of the CDF from 0: exact up to rounding, O(mean) per draw.
template <typename Uniform>
std::uint64_t poisson_by_inversion(double mean, Uniform&& uniform) {
  const double u = uniform();
  double term = std::exp(-mean);  // P(X = k)
  double cdf = term;
  std::uint64_t k = 0;
  while (u > cdf) {
    ++k;
    term *= mean / static_cast<double>(k);
    const double next = cdf + term;
    if (next == cdf) break;  // deep in the tail: the rest of the mass is below rounding
    cdf = next;
  }
  return k;
}

// Poisson by transformed rejection with squeeze (PTRS; Hormann 1993, "The transformed
// rejection method for generating Poisson random variables"), for mean >= 10.
template <typename Uniform>
std::uint64_t poisson_by_ptrs(double mean, Uniform&& uniform) {
  const double log_mean = std::log(mean);
  const double b = 0.931 + 2.53 * std::sqrt(mean);
  const double a = -0.059 + 0.02483 * b;
  const double log_inv_alpha = std::log(1.1239 + 1.1328 / (b - 3.4));
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = uniform() - 0.5;
    const double v = uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= v_r) return static_cast<std::uint64_t>(k);  // squeeze
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    const double log_hat = std::log(v) + log_inv_alpha - std::log(a / (us * us) + b);
    if (log_hat <= -mean + k * log_mean - boost::math::lgamma(k + 1.0)) {
      return static_cast<std::uint64_t>(k);
    }
  }
}

// Gamma(shape, 1) for shape >= 1 (Marsaglia & Tsang 2000).
template <typename Normal, typename Uniform>
double gamma_marsaglia_tsang(double shape, Normal&& normal, Uniform&& uniform) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

}  // namespace

RandomStream::RandomStream(RandomKey key, RandomCounter counter) : key_(key), counter_(counter) {}

std::uint64_t RandomStream::block(std::uint64_t index, int lane) {
  return philox_block(key_, counter_, index)[lane];
}

double RandomStream::uniform(std::uint64_t draw) {
  return open_unit(block(draw / 4, static_cast<int>(draw % 4)));
}

double RandomStream::normal(std::uint64_t draw) {
  const Philox::ctr_type words = philox_block(key_, counter_, draw / 2);
  const int lane = 2 * static_cast<int>(draw % 2);
  return box_muller(open_unit(words[lane]), open_unit(words[lane + 1]));
}

double RandomStream::next_uniform() { return open_unit(next_u64()); }

std::uint64_t RandomStream::next_u64() {
  const std::uint64_t word = next_++;
  return block(word / 4, static_cast<int>(word % 4));
}

double RandomStream::next_normal() {
  if (next_ % 2 == 0) {  // an aligned lane pair: the same words as normal(next_ / 2)
    const double value = normal(next_ / 2);
    next_ += 2;
    return value;
  }
  const double u1 = next_uniform();
  return box_muller(u1, next_uniform());
}

std::uint64_t RandomStream::next_poisson(double mean) {
  if (!std::isfinite(mean)) {
    throw NumericalError("Poisson draw: the mean " + std::to_string(mean) + " is not finite");
  }
  if (mean <= 0.0) return 0;
  auto uniform = [this] { return next_uniform(); };
  return mean < 30.0 ? poisson_by_inversion(mean, uniform) : poisson_by_ptrs(mean, uniform);
}

// Shape < 1 uses Gamma(shape) = Gamma(shape + 1) U^(1 / shape) (Marsaglia & Tsang 2000, §6).
double RandomStream::next_gamma(double shape) {
  if (!(shape > 0.0) || !std::isfinite(shape)) {
    throw NumericalError("Gamma draw: the shape " + std::to_string(shape) +
                         " is not positive and finite");
  }
  auto normal = [this] { return next_normal(); };
  auto uniform = [this] { return next_uniform(); };
  if (shape >= 1.0) return gamma_marsaglia_tsang(shape, normal, uniform);
  const double boosted = gamma_marsaglia_tsang(shape + 1.0, normal, uniform);
  return boosted * std::pow(next_uniform(), 1.0 / shape);
}

}  // namespace spikevi
