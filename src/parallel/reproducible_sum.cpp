// Binned fixed-point summation, after the binned reproducible sums of Demmel & Nguyen
// ("Parallel reproducible summation", IEEE Trans. Computers 2015) and Neal's
// superaccumulators (arXiv:1505.05571).
//
// Representation. Bin b holds the weights 2^(32b) .. 2^(32b+31); doubles occupy bins -34..31.
// A component is a record {I, L0, L1, L2}: L_j is a signed 64-bit count of units 2^(32(I-j)),
// and I is the highest bin of the window (kEmpty: nothing deposited; kNonFinite: a NaN or an
// infinity was). A finite nonzero x = +-m 2^e (m < 2^53 an integer) has base-2^32 digits in
// fixed bins; its top bin t(x) is that of its leading bit. A deposit raises I to t(x) if
// needed, dropping the limbs that leave the window, then adds the signed digits of x that
// fall in bins I-2 .. I; digits below the window are dropped (truncation toward zero).
//
// Order independence. By induction over deposits and merges, a record with index I holds
// I = max t(x) over its deposits and L_j = the exact integer sum of their digits in bin I-j:
// raising the window only drops bins that lie below the new window (and so below every later
// window), and a digit dropped by a deposit lies below I-2 <= I_final-2. So the final record
// is a function of the multiset of deposits alone, and so is any deterministic rounding of it.
// Each digit is < 2^32, so no limb overflows for up to 2^31 deposits.
#include "spikevi/parallel/reproducible_sum.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace spikevi {
namespace {

__extension__ typedef __int128 Int128;  // GCC and Clang; __extension__ quiets -Wpedantic
__extension__ typedef unsigned __int128 Uint128;

constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kNonFinite = std::numeric_limits<std::int64_t>::max();
constexpr int kBinBits = 32;
constexpr std::uint64_t kDigitMask = 0xFFFFFFFFu;
constexpr std::uint64_t kFractionMask = (std::uint64_t{1} << 52) - 1;
constexpr int kExponentBias = 1075;  // x = m 2^(biased - 1075) for a normal x, m the significand

void set_empty(std::int64_t* record) {
  record[0] = kEmpty;
  record[1] = record[2] = record[3] = 0;
}

void set_non_finite(std::int64_t* record) {
  record[0] = kNonFinite;
  record[1] = record[2] = record[3] = 0;
}

// Moves the limbs of a record down by `bins` >= 0 bins (the lowest ones drop out).
void shift_limbs_down(std::int64_t* limbs, std::int64_t bins) {
  if (bins == 0) return;
  if (bins == 1) {
    limbs[2] = limbs[1];
    limbs[1] = limbs[0];
  } else if (bins == 2) {
    limbs[2] = limbs[0];
    limbs[1] = 0;
  } else {
    limbs[1] = limbs[2] = 0;
  }
  limbs[0] = 0;
}

// Sets the window of a finite record to `top` > its index.
void raise_window(std::int64_t* record, std::int64_t top) {
  const std::int64_t bins = record[0] == kEmpty ? 3 : std::min<std::int64_t>(top - record[0], 3);
  shift_limbs_down(record + 1, bins);
  record[0] = top;
}

void deposit(std::int64_t* record, double x) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  if (biased == 0x7FF) {
    set_non_finite(record);
    return;
  }
  const std::uint64_t significand = (bits & kFractionMask) | (biased != 0 ? kFractionMask + 1 : 0);
  if (significand == 0) return;  // +-0
  // x = +-significand 2^low_bit; subnormals share the exponent of the smallest normal.
  const std::int64_t low_bit = std::max(biased, 1) - kExponentBias;
  const std::int64_t top_bit = low_bit + 63 - std::countl_zero(significand);
  const std::int64_t top_bin = top_bit >> 5;  // floor division by 32
  if (top_bin > record[0]) {
    raise_window(record, top_bin);
  } else if (record[0] == kNonFinite) {
    return;
  }
  // x in units of the window's lowest bin, truncated: fewer than 96 bits since top_bin <= I.
  // Right shifts are capped at 63, which already clears a 53-bit significand.
  const std::int64_t shift = low_bit - kBinBits * (record[0] - 2);
  const int left = static_cast<int>(std::max<std::int64_t>(shift, 0));
  const int right = static_cast<int>(std::min<std::int64_t>(std::max<std::int64_t>(-shift, 0), 63));
  const Uint128 units = static_cast<Uint128>(significand >> right) << left;
  const std::int64_t negative = -static_cast<std::int64_t>(bits >> 63);  // 0 or -1
  const auto signed_digit = [negative](std::uint64_t digit) {
    return (static_cast<std::int64_t>(digit) ^ negative) - negative;
  };
  record[1] += signed_digit(static_cast<std::uint64_t>(units >> 64));
  record[2] += signed_digit(static_cast<std::uint64_t>(units >> 32) & kDigitMask);
  record[3] += signed_digit(static_cast<std::uint64_t>(units) & kDigitMask);
}

// magnitude * 2^scale rounded to the nearest double, ties to even (also in the subnormal range).
double round_to_double(Uint128 magnitude, std::int64_t scale) {
  if (magnitude == 0) return 0.0;
  const auto high = static_cast<std::uint64_t>(magnitude >> 64);
  const int top_bit = high != 0 ? 127 - std::countl_zero(high)
                                : 63 - std::countl_zero(static_cast<std::uint64_t>(magnitude));
  // Keep 53 significant bits, or fewer where the result is subnormal (lowest bit 2^-1074).
  const std::int64_t dropped =
      std::max<std::int64_t>({top_bit - 52, -1074 - scale, 0});  // <= 78 for our scales
  if (dropped == 0) return std::ldexp(static_cast<double>(magnitude), static_cast<int>(scale));
  Uint128 kept = magnitude >> dropped;
  const Uint128 remainder = magnitude - (kept << dropped);
  const Uint128 half = Uint128{1} << (dropped - 1);
  if (remainder > half || (remainder == half && (kept & 1) != 0)) ++kept;
  // kept <= 2^53 is exact as a double; ldexp is exact or overflows to infinity.
  return std::ldexp(static_cast<double>(kept), static_cast<int>(scale + dropped));
}

double record_value(const std::int64_t* record) {
  if (record[0] == kEmpty) return 0.0;
  if (record[0] == kNonFinite) return std::numeric_limits<double>::quiet_NaN();
  // The exact window sum in units of bin I-2. It is a sum of at most 2^31 signed terms below
  // 2^96, so it fits an Int128; the unsigned arithmetic wraps harmlessly on the way.
  const auto as_unsigned = [](std::int64_t limb) {
    return static_cast<Uint128>(static_cast<Int128>(limb));
  };
  const auto total = static_cast<Int128>((as_unsigned(record[1]) << 64) +
                                         (as_unsigned(record[2]) << 32) + as_unsigned(record[3]));
  const Uint128 magnitude = total < 0 ? -static_cast<Uint128>(total) : static_cast<Uint128>(total);
  const double rounded = round_to_double(magnitude, kBinBits * (record[0] - 2));
  return total < 0 ? -rounded : rounded;
}

}  // namespace

ReproducibleSum::ReproducibleSum(std::size_t components) : words_(components * kWordsPerComponent) {
  clear();
}

void ReproducibleSum::clear() {
  for (std::size_t r = 0; r < words_.size(); r += kWordsPerComponent) set_empty(&words_[r]);
}

void ReproducibleSum::add(std::size_t component, double value) {
  assert(component < size());
  deposit(words_.data() + component * kWordsPerComponent, value);
}

void ReproducibleSum::add(std::span<const double> values, std::size_t first_component) {
  assert(first_component + values.size() <= size());
  std::int64_t* record = words_.data() + first_component * kWordsPerComponent;
  for (const double value : values) {
    deposit(record, value);
    record += kWordsPerComponent;
  }
}

void ReproducibleSum::merge(const ReproducibleSum& other) {
  if (other.size() != size())
    throw std::invalid_argument("ReproducibleSum::merge: sizes " + std::to_string(size()) +
                                " and " + std::to_string(other.size()) + " differ");
  merge_records(other.words_.data(), words_.data(), size());
}

void ReproducibleSum::allreduce(Communicator& comm) {
  comm.allreduce_records(words_, kWordsPerComponent, &ReproducibleSum::merge_records);
}

double ReproducibleSum::value(std::size_t component) const {
  assert(component < size());
  return record_value(words_.data() + component * kWordsPerComponent);
}

std::vector<double> ReproducibleSum::values() const {
  std::vector<double> out(size());
  for (std::size_t c = 0; c < out.size(); ++c) out[c] = value(c);
  return out;
}

void ReproducibleSum::merge_records(const std::int64_t* in, std::int64_t* inout,
                                    std::size_t records) {
  for (std::size_t r = 0; r < records; ++r, in += kWordsPerComponent, inout += kWordsPerComponent) {
    if (in[0] == kEmpty || inout[0] == kNonFinite) continue;
    if (in[0] == kNonFinite || inout[0] == kEmpty) {
      std::copy(in, in + kWordsPerComponent, inout);
      continue;
    }
    std::int64_t incoming[3] = {in[1], in[2], in[3]};
    if (in[0] > inout[0]) raise_window(inout, in[0]);
    shift_limbs_down(incoming, std::min<std::int64_t>(inout[0] - in[0], 3));
    for (int j = 0; j < 3; ++j) inout[1 + j] += incoming[j];
  }
}

}  // namespace spikevi
