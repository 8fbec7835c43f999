#pragma once
// Exact, order-independent sums of vectors of doubles (DESIGN.md §4, HPC_NOTES.md
// "Reproducible sums"). Each component keeps a window of three 32-bit bins of fixed-point
// limbs, placed by the largest deposit so far; deposits are split into their base-2^32 digits
// and added as integers. The final limbs, hence value(), depend only on the multiset of
// deposits: the same on any number of ranks, in any order or grouping of add() and merge().
//
// Accuracy: relative to the largest |deposit| of a component, each deposit loses less than
// 2^-64 (the digits below the window, truncated toward zero); value() then rounds the exact
// window sum correctly to nearest (ties to even). So for n deposits,
//   |value - exact sum| <= 0.5 ulp(value) + n 2^-64 max|deposit|.
// Limits: at most 2^31 deposits per component over all ranks (limbs are int64). A NaN or an
// infinity deposited anywhere makes that component NaN. A total beyond the double range
// rounds to +-infinity. An empty or exactly cancelled component is +0.0.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "spikevi/parallel/communicator.hpp"

namespace spikevi {

class ReproducibleSum {
 public:
  // A component's record: [window index I (highest bin), limbs of bins I, I-1, I-2].
  static constexpr std::size_t kWordsPerComponent = 4;

  explicit ReproducibleSum(std::size_t components = 0);

  std::size_t size() const { return words_.size() / kWordsPerComponent; }
  // All components back to zero (empty).
  void clear();
  // Exact deposit of `value` into `component` (< size()); +-0 deposits nothing.
  void add(std::size_t component, double value);
  // values[i] -> component first_component + i.
  void add(std::span<const double> values, std::size_t first_component = 0);
  // Adds `other` component-wise; throws std::invalid_argument when the sizes differ.
  void merge(const ReproducibleSum& other);
  // Merges the accumulators of all ranks (one collective); every rank gets the total.
  void allreduce(Communicator& comm);

  // The sum of a component, rounded to nearest double.
  double value(std::size_t component) const;
  std::vector<double> values() const;

  // The merge of `records` records of kWordsPerComponent words: inout[r] <- in[r] + inout[r].
  // Associative and commutative, bit for bit (the reduction operator of allreduce()).
  static void merge_records(const std::int64_t* in, std::int64_t* inout, std::size_t records);

 private:
  std::vector<std::int64_t> words_;
};

}  // namespace spikevi
