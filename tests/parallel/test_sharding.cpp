// How trials are shared out among ranks and how their posterior moments are gathered again
// (include/spikevi/parallel/sharding.hpp, DESIGN.md §4). The numerics run on one process, so
// several ranks are simulated serially: SimulatedRanks runs the code under test once per rank,
// and each rank's allreduce_sum hands back the sum of what every rank contributed to that call.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "spikevi/parallel/communicator.hpp"
#include "spikevi/parallel/sharding.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

// ---- rank_share

TEST(RankShare, CoversEveryTrialOnceInContiguousBalancedBlocks) {
  for (std::size_t count = 0; count <= 64; ++count)
    for (int ranks = 1; ranks <= 17; ++ranks) {
      std::size_t next = 0;  // the first position no rank has taken yet
      for (int rank = 0; rank < ranks; ++rank) {
        const Share share = rank_share(count, rank, ranks);
        SCOPED_TRACE(::testing::Message() << count << " trials, rank " << rank << " of " << ranks);
        EXPECT_EQ(share.begin, next);  // contiguous, in rank order: no gap, no overlap
        ASSERT_LE(share.begin, share.end);
        EXPECT_GE(share.size(), count / ranks);  // balanced: floor or ceiling of count / ranks
        EXPECT_LE(share.size(), (count + ranks - 1) / ranks);
        next = share.end;
      }
      EXPECT_EQ(next, count) << count << " trials on " << ranks << " ranks";  // covering
    }
}

TEST(RankShare, FollowsTheDocumentedBoundsOnAHandComputedCase) {
  // [10 r / 4, 10 (r + 1) / 4): 0-2, 2-5, 5-7, 7-10
  const std::size_t begins[] = {0, 2, 5, 7}, ends[] = {2, 5, 7, 10};
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(rank_share(10, rank, 4).begin, begins[rank]);
    EXPECT_EQ(rank_share(10, rank, 4).end, ends[rank]);
  }
}

TEST(RankShare, LeavesSomeRanksEmptyWhenThereAreMoreRanksThanTrials) {
  // 3 trials on 5 ranks: [3 r / 5, 3 (r + 1) / 5) = {}, {0}, {}, {1}, {2}
  const std::size_t sizes[] = {0, 1, 0, 1, 1};
  for (int rank = 0; rank < 5; ++rank) EXPECT_EQ(rank_share(3, rank, 5).size(), sizes[rank]);
}

TEST(RankShare, GivesOneRankEverything) {
  const Share share = rank_share(123, 0, 1);
  EXPECT_EQ(share.begin, 0u);
  EXPECT_EQ(share.end, 123u);
}

TEST(RankShare, StaysExactForCountsBeyond32Bits) {
  const std::size_t count = (std::size_t{1} << 33) + 5;
  std::size_t next = 0;
  for (int rank = 0; rank < 7; ++rank) {
    const Share share = rank_share(count, rank, 7);
    EXPECT_EQ(share.begin, next);
    EXPECT_GE(share.size(), count / 7);
    EXPECT_LE(share.size(), count / 7 + 1);
    next = share.end;
  }
  EXPECT_EQ(next, count);
}

// ---- allgather_moments

// One process standing in for `ranks` ranks. run() calls `body(comm, rank)` once per simulated
// rank, twice over: the first pass records what each rank contributes to each allreduce_sum
// (and hands its own buffer back, a result that is thrown away), the second hands every rank
// the element-wise sum, in rank order, of all ranks' contributions to that call, as
// MPI_Allreduce would. The code under test must be deterministic, as the ranks of one fit are.
class SimulatedRanks {
 public:
  explicit SimulatedRanks(int ranks) : ranks_(ranks) {}

  template <class Result>
  std::vector<Result> run(const std::function<Result(Communicator&, int)>& body) {
    calls_.clear();
    for (int rank = 0; rank < ranks_; ++rank) {
      Rank comm(*this, rank, /*replay=*/false);
      body(comm, rank);
    }
    std::vector<Result> results;
    for (int rank = 0; rank < ranks_; ++rank) {
      Rank comm(*this, rank, /*replay=*/true);
      results.push_back(body(comm, rank));
      EXPECT_EQ(comm.calls(), calls_.size()) << "rank " << rank << " skipped a collective";
    }
    return results;
  }

  // contributions[call][rank]: what each rank passed to each allreduce_sum of the last run
  const std::vector<std::vector<std::vector<double>>>& contributions() const { return calls_; }

 private:
  class Rank final : public Communicator {
   public:
    Rank(SimulatedRanks& world, int rank, bool replay)
        : world_(world), rank_(rank), replay_(replay) {}
    int rank() const override { return rank_; }
    int size() const override { return world_.ranks_; }
    std::size_t calls() const { return calls_; }

    void allreduce_sum(std::span<double> values) override {
      const std::size_t call = calls_++;
      auto& calls = world_.calls_;
      if (!replay_) {
        if (calls.size() <= call) calls.resize(call + 1, std::vector<std::vector<double>>(size()));
        calls[call][rank_].assign(values.begin(), values.end());
        return;
      }
      ASSERT_LT(call, calls.size()) << "rank " << rank_ << " made an extra collective";
      for (int other = 0; other < size(); ++other)
        ASSERT_EQ(calls[call][other].size(), values.size())
            << "ranks " << rank_ << " and " << other << " reduce buffers of different lengths";
      for (std::size_t i = 0; i < values.size(); ++i) {
        double sum = 0.0;
        for (int other = 0; other < size(); ++other) sum += calls[call][other][i];
        values[i] = sum;
      }
    }
    void allreduce_max(std::span<double>) override { ADD_FAILURE() << "unexpected allreduce_max"; }
    void allreduce_records(std::span<std::int64_t>, std::size_t, MergeRecords) override {
      ADD_FAILURE() << "unexpected allreduce_records";
    }
    void broadcast(std::span<double>, int) override { ADD_FAILURE() << "unexpected broadcast"; }
    void barrier() override { ADD_FAILURE() << "unexpected barrier"; }

   private:
    SimulatedRanks& world_;
    int rank_;
    bool replay_;
    std::size_t calls_ = 0;
  };

  int ranks_;
  std::vector<std::vector<std::vector<double>>> calls_;
};

// Random moments (any finite values: allgather_moments only moves them) of trials of the
// given lengths.
std::vector<GaussianMoments> random_moments(const std::vector<int>& lengths, int dim,
                                            std::mt19937_64& rng) {
  std::vector<GaussianMoments> moments;
  for (const int bins : lengths) {
    GaussianMoments q;
    q.mean = testing::random_normal(dim, bins, rng);
    q.cov = testing::random_normal(dim, dim * bins, rng);
    q.lag_cov = testing::random_normal(dim, dim * bins, rng);
    q.log_det_precision = testing::random_normal(1, 1, rng)(0, 0);
    moments.push_back(std::move(q));
  }
  return moments;
}

std::vector<GaussianMoments> slice(const std::vector<GaussianMoments>& all, Share share) {
  return {all.begin() + static_cast<std::ptrdiff_t>(share.begin),
          all.begin() + static_cast<std::ptrdiff_t>(share.end)};
}

bool same_matrix(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && a == b;
}

// Every trial's moments, bit for bit, in list order.
void expect_identical(const std::vector<GaussianMoments>& gathered,
                      const std::vector<GaussianMoments>& original) {
  ASSERT_EQ(gathered.size(), original.size());
  for (std::size_t k = 0; k < original.size(); ++k) {
    SCOPED_TRACE(::testing::Message() << "trial " << k);
    EXPECT_TRUE(same_matrix(gathered[k].mean, original[k].mean));
    EXPECT_TRUE(same_matrix(gathered[k].cov, original[k].cov));
    EXPECT_TRUE(same_matrix(gathered[k].lag_cov, original[k].lag_cov));
    EXPECT_EQ(gathered[k].log_det_precision, original[k].log_det_precision);
  }
}

const std::vector<int> kLengths = {3, 1, 4, 2, 5};  // trials of unequal lengths

TEST(AllgatherMoments, OnOneRankReturnsEveryTrialsMomentsUnchanged) {
  std::mt19937_64 rng(1);
  for (const int dim : {1, 3}) {
    const std::vector<GaussianMoments> all = random_moments(kLengths, dim, rng);
    SerialCommunicator serial;
    const Share share = rank_share(all.size(), serial.rank(), serial.size());
    expect_identical(allgather_moments(all, share, kLengths, dim, serial), all);
  }
}

TEST(AllgatherMoments, GivesEveryRankEveryTrialsMomentsExactlyInListOrder) {
  // Each value sits in exactly one rank's block and the other ranks contribute zeros, so the
  // sum is exact: the gathered moments must equal the originals bit for bit. 7 ranks for 5
  // trials leaves two ranks with nothing to contribute.
  std::mt19937_64 rng(2);
  for (const int dim : {1, 3})
    for (const int ranks : {1, 2, 3, 4, 7}) {
      SCOPED_TRACE(::testing::Message() << "D = " << dim << ", " << ranks << " ranks");
      const std::vector<GaussianMoments> all = random_moments(kLengths, dim, rng);
      SimulatedRanks world(ranks);
      const auto gathered =
          world.run<std::vector<GaussianMoments>>([&](Communicator& comm, int rank) {
            const Share share = rank_share(all.size(), rank, ranks);
            return allgather_moments(slice(all, share), share, kLengths, dim, comm);
          });
      for (int rank = 0; rank < ranks; ++rank) {
        SCOPED_TRACE(::testing::Message() << "on rank " << rank);
        expect_identical(gathered[rank], all);
      }
    }
}

TEST(AllgatherMoments, MakesOneAllreduceOfTheSameLengthOnEveryRank) {
  std::mt19937_64 rng(3);
  const int dim = 2, ranks = 3;
  const std::vector<GaussianMoments> all = random_moments(kLengths, dim, rng);
  SimulatedRanks world(ranks);
  world.run<int>([&](Communicator& comm, int rank) {
    const Share share = rank_share(all.size(), rank, ranks);
    allgather_moments(slice(all, share), share, kLengths, dim, comm);
    return 0;
  });
  ASSERT_EQ(world.contributions().size(), 1u);
  const auto& buffers = world.contributions().front();
  for (int rank = 1; rank < ranks; ++rank) EXPECT_EQ(buffers[rank].size(), buffers[0].size());
}

}  // namespace
}  // namespace spikevi
