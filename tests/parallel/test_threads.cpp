// Threads inside a rank (parallel/threads.hpp): every index runs once whatever the thread
// count, the lowest failing index's exception is the one rethrown, and the thread count comes
// from --threads or OMP_NUM_THREADS.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/parallel/threads.hpp"

namespace spikevi {
namespace {

TEST(ForEachIndex, RunsEveryIndexOnceOnAnyThreadCount) {
  for (int threads : {1, 2, 4, 7}) {
    std::vector<int> visits(101, 0);
    std::vector<int> thread_of(101, -1);
    for_each_index(visits.size(), threads, [&](std::size_t i, int thread) {
      ++visits[i];
      thread_of[i] = thread;
    });
    for (std::size_t i = 0; i < visits.size(); ++i) {
      EXPECT_EQ(visits[i], 1) << "index " << i << ", " << threads << " threads";
      EXPECT_GE(thread_of[i], 0);
      EXPECT_LT(thread_of[i], threads);
    }
  }
}

TEST(ForEachIndex, RethrowsTheLowestFailingIndexAfterAllFinish) {
  for (int threads : {1, 3}) {
    std::vector<int> visits(40, 0);
    try {
      for_each_index(visits.size(), threads, [&](std::size_t i, int) {
        ++visits[i];
        if (i == 31 || i == 17) throw std::runtime_error("index " + std::to_string(i));
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& error) {
      EXPECT_STREQ(error.what(), "index 17");
    }
    if (threads > 1) {  // the threads ran on past the failure: every index was tried
      for (int v : visits) EXPECT_EQ(v, 1);
    }
  }
}

TEST(ResolveThreadCount, TakesTheRequestThenTheEnvironmentThenOne) {
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(resolve_thread_count(3), 3);
  EXPECT_EQ(resolve_thread_count(0), 1);
  ::setenv("OMP_NUM_THREADS", "5", 1);
  EXPECT_EQ(resolve_thread_count(0), 5);
  EXPECT_EQ(resolve_thread_count(2), 2);
  ::setenv("OMP_NUM_THREADS", "4,2", 1);  // nested levels: the first is this one
  EXPECT_EQ(resolve_thread_count(0), 4);
  for (const char* bad : {"0", "-2", "two", "3x"}) {
    ::setenv("OMP_NUM_THREADS", bad, 1);
    EXPECT_THROW(resolve_thread_count(0), ConfigError) << bad;
  }
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_THROW(resolve_thread_count(-1), ConfigError);
}

}  // namespace
}  // namespace spikevi
