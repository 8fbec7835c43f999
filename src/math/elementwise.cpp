// Vectorised element-wise functions (see elementwise.hpp). Arrays are processed in fixed-size
// chunks so Eigen's packet exp and log run over stack buffers without heap allocation; the
// selects between branches are plain loops the compiler vectorises with masks.
#include "spikevi/math/elementwise.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

namespace spikevi {
namespace {

constexpr int kChunk = 64;
constexpr double kTableLast = kLog1pTableSize - 1;
static_assert((kLog1pTableSize & (kLog1pTableSize - 1)) == 0, "a power of two (masked index)");
using Chunk = Eigen::Array<double, kChunk, 1>;

// Applies chunk_function (Chunk -> Chunk) to the n doubles at x, the tail padded with zeros.
template <typename F>
void by_chunks(double* x, Eigen::Index n, F&& chunk_function) {
  Eigen::Index i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    Eigen::Map<Chunk> part(x + i);
    part = chunk_function(Chunk(part));
  }
  if (i == n) return;
  Eigen::Map<Eigen::ArrayXd> tail(x + i, n - i);
  Chunk padded = Chunk::Zero();
  padded.head(n - i) = tail;
  tail = chunk_function(padded).head(n - i);
}

// Cephes' tanh (S. Moshier): 1 - 2 / (e^{2|x|} + 1) above |x| = 0.625, where there is no
// cancellation, and the rational approximation x + x^3 P(x^2) / Q(x^2) below (relative error
// 2.5e-16 on [0, 0.625]). Both branches are evaluated for the whole chunk, vectorised.
Chunk tanh_chunk(const Chunk& x) {
  // x * 0 is 0 for finite x, NaN otherwise (a vectorised test, unlike allFinite()'s loop).
  if (!((x * 0.0).sum() == 0.0)) return x.unaryExpr([](double v) { return std::tanh(v); });
  const Chunk magnitude = x.abs();
  const Chunk large = 1.0 - 2.0 / ((2.0 * magnitude.min(20.0)).exp() + 1.0);
  const Chunk s = x.square();
  const Chunk p =
      (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3;
  const Chunk q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s +
                  4.84406305325125486048e3;
  const Chunk small = x + x * s * (p / q);
  Chunk out;
  for (int i = 0; i < kChunk; ++i)
    out[i] = magnitude[i] > 0.625 ? std::copysign(large[i], x[i]) : small[i];
  return out;
}

Chunk softplus_chunk(const Chunk& x) {
  const Chunk e = x.min(30.0).exp();
  const Chunk v = 1.0 + e;
  const Chunk log_v = v.log();
  Chunk out;
  for (int i = 0; i < kChunk; ++i) {
    const double log1p = v[i] == 1.0 ? e[i] : log_v[i] * e[i] / (v[i] - 1.0);
    out[i] = x[i] > 30.0 ? x[i] : log1p;
  }
  return out;
}

}  // namespace

void log1p_counts(const Eigen::ArrayXXd& counts, Eigen::MatrixXd& u) {
  u.resize(counts.rows(), counts.cols());
  log1p_counts(counts.data(), counts.size(), u.data());
}

void log1p_counts(const double* x, Eigen::Index size, double* out) {
  if (size == 0) return;
  // The table of log1p(k) up to the largest count present, computed here by libm at run time
  // (a static table would be folded at compile time by GCC, correctly rounded, which differs
  // from libm's log1p in the last bit for k = 2, 13, 47, ...).
  const double largest = Eigen::Map<const Eigen::ArrayXd>(x, size).maxCoeff();
  const int entries = std::isnan(largest) ? kLog1pTableSize
                      : largest < 0.0     ? 1
                                          : static_cast<int>(std::min(largest, kTableLast)) + 1;
  std::array<double, kLog1pTableSize> table{};
  for (int k = 0; k < entries; ++k) table[static_cast<std::size_t>(k)] = std::log1p(double(k));
  // Chunks: the clamp, the conversions and the integer test vectorise; the table reads are
  // plain loads without branches (counts are zero or not at random). x may be out: each chunk
  // is copied before it is overwritten.
  for (Eigen::Index first = 0; first < size; first += kChunk) {
    const Eigen::Index length = std::min<Eigen::Index>(kChunk, size - first);
    Chunk chunk = Chunk::Zero();
    chunk.head(length) = Eigen::Map<const Eigen::ArrayXd>(x + first, length);
    const Eigen::Array<int, kChunk, 1> k = chunk.max(0.0).min(kTableLast).cast<int>();
    for (Eigen::Index i = 0; i < length; ++i)  // (the mask only guards a NaN's conversion)
      out[first + i] = table[static_cast<std::size_t>(k[i]) & (kLog1pTableSize - 1)];
    if ((k.cast<double>() == chunk).all()) continue;
    for (Eigen::Index i = 0; i < length; ++i)
      if (k[i] != chunk[i]) out[first + i] = std::log1p(chunk[i]);
  }
}

void tanh_in_place(Eigen::MatrixXd& x) { by_chunks(x.data(), x.size(), tanh_chunk); }

void softplus_in_place(Eigen::MatrixXd& x) { by_chunks(x.data(), x.size(), softplus_chunk); }

}  // namespace spikevi
