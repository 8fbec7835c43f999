#pragma once
// How trials are shared out among ranks (DESIGN.md §4): each rank takes one contiguous,
// balanced block of the list of trials it works on.
#include <cstddef>
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/math/gaussian_moments.hpp"

namespace spikevi {

struct Share {
  std::size_t begin = 0;  // first list position of this rank
  std::size_t end = 0;    // one past the last
  std::size_t size() const { return end - begin; }
};

// Rank `rank` of `ranks` gets positions [count*rank/ranks, count*(rank+1)/ranks).
Share rank_share(std::size_t count, int rank, int ranks);

// Every rank's posterior moments, on every rank, in list order. `lengths` are the bins of all
// listed trials; `local` are this rank's, for positions share.begin .. share.end. Built as one
// allreduce of a zero-padded buffer (K T D(2D+1) doubles), which suits results of moderate size;
// a parallel-HDF5 write of each rank's block is the scalable replacement.
std::vector<GaussianMoments> allgather_moments(const std::vector<GaussianMoments>& local,
                                               Share share, const std::vector<int>& lengths,
                                               int dim, Communicator& comm);

}  // namespace spikevi
