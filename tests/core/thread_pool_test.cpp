// Tests for ember::ThreadPool: exactly-once coverage, static partition, wake-ups, exceptions, misuse.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ember/error.h"

namespace ember {
namespace {

// The range the pool promises worker w: [w*n/nw, (w+1)*n/nw) over nw = min(n_threads, n_tasks).
int64_t range_begin(int64_t n_tasks, int n_threads, int worker) {
  const int64_t nw = std::min<int64_t>(n_threads, n_tasks);
  return worker * n_tasks / nw;
}

// Runs one parallel_for and checks every task ran exactly once, on the worker owning its range.
void check_coverage(ThreadPool& pool, int64_t n_tasks) {
  const int n_threads = pool.n_threads();
  auto counts = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(n_tasks) + 1);
  std::vector<int> owner(static_cast<size_t>(n_tasks), -1);
  std::atomic<bool> worker_out_of_range{false};
  pool.parallel_for(n_tasks, [&](int64_t task, int worker) {
    counts[task].fetch_add(1, std::memory_order_relaxed);
    if (worker < 0 || worker >= n_threads) worker_out_of_range = true;
    owner[task] = worker;  // each task written by one thread; read after parallel_for returns
  });
  ASSERT_FALSE(worker_out_of_range) << "n_threads=" << n_threads << " n_tasks=" << n_tasks;
  for (int64_t task = 0; task < n_tasks; ++task) {
    ASSERT_EQ(counts[task].load(), 1) << "task " << task << " n_threads=" << n_threads << " n_tasks=" << n_tasks;
  }
  for (int64_t task = 0; task < n_tasks; ++task) {
    const int worker = owner[task];
    ASSERT_GE(task, range_begin(n_tasks, n_threads, worker)) << "n_threads=" << n_threads << " n_tasks=" << n_tasks;
    ASSERT_LT(task, range_begin(n_tasks, n_threads, worker + 1)) << "n_threads=" << n_threads << " n_tasks=" << n_tasks;
  }
}

TEST(ThreadPoolTest, RejectsInvalidSizes) {
  for (int n : {0, -1, -1000, ThreadPool::kMaxThreads + 1}) {
    try {
      ThreadPool pool(n);
      ADD_FAILURE() << "no exception for n_threads=" << n;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(std::to_string(n)), std::string::npos) << e.what();
    }
  }
}

TEST(ThreadPoolTest, ReportsSize) {
  for (int n : {1, 2, 5}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.n_threads(), n);
  }
}

TEST(ThreadPoolTest, EveryTaskRunsOnceOnItsOwner) {
  for (int n_threads : {1, 2, 3, 4, 7, 8}) {
    ThreadPool pool(n_threads);
    for (int64_t n_tasks : {0, 1, 2, 3, 5, 6, 7, 8, 9, 16, 63, 64, 1000, 1001, 4099}) {
      check_coverage(pool, n_tasks);
      if (testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(ThreadPoolTest, EveryWorkerGetsANonEmptyContiguousRange) {
  for (int n_threads : {2, 3, 4, 8}) {
    ThreadPool pool(n_threads);
    for (int64_t n_tasks : {2, 3, 7, 9, 100, 1001}) {
      std::vector<int64_t> first(static_cast<size_t>(n_threads), -1);
      std::vector<int64_t> last(static_cast<size_t>(n_threads), -1);
      std::vector<int64_t> count(static_cast<size_t>(n_threads), 0);
      // Per-worker slots: each written only by its own worker.
      pool.parallel_for(n_tasks, [&](int64_t task, int worker) {
        if (first[worker] < 0) first[worker] = task;
        EXPECT_TRUE(last[worker] < 0 || last[worker] == task - 1) << "worker " << worker << " not in order";
        last[worker] = task;
        ++count[worker];
      });
      const int n_workers = static_cast<int>(std::min<int64_t>(n_threads, n_tasks));
      int64_t next = 0;
      for (int w = 0; w < n_threads; ++w) {
        if (w >= n_workers) {
          EXPECT_EQ(count[w], 0) << "idle worker " << w << " ran tasks";
          continue;
        }
        EXPECT_GT(count[w], 0) << "worker " << w << " n_threads=" << n_threads << " n_tasks=" << n_tasks;
        EXPECT_EQ(first[w], next) << "worker " << w << " n_threads=" << n_threads << " n_tasks=" << n_tasks;
        EXPECT_EQ(last[w] - first[w] + 1, count[w]);
        next = last[w] + 1;
      }
      EXPECT_EQ(next, n_tasks);
    }
  }
}

TEST(ThreadPoolTest, SingleTaskAndSingleThreadRunInlineOnCaller) {
  const std::thread::id caller = std::this_thread::get_id();
  ThreadPool pool(4);
  pool.parallel_for(1, [&](int64_t task, int worker) {
    EXPECT_EQ(task, 0);
    EXPECT_EQ(worker, 0);
    EXPECT_EQ(std::this_thread::get_id(), caller);
  });
  ThreadPool single(1);
  int ran = 0;
  single.parallel_for(10, [&](int64_t task, int worker) {
    EXPECT_EQ(task, ran);
    EXPECT_EQ(worker, 0);
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++ran;
  });
  EXPECT_EQ(ran, 10);
}

TEST(ThreadPoolTest, CallerIsWorkerZero) {
  const std::thread::id caller = std::this_thread::get_id();
  ThreadPool pool(3);
  std::atomic<int> zero_on_caller{0};
  std::atomic<int> other_on_caller{0};
  pool.parallel_for(30, [&](int64_t, int worker) {
    const bool on_caller = std::this_thread::get_id() == caller;
    if (worker == 0 && on_caller) ++zero_on_caller;
    if (worker != 0 && on_caller) ++other_on_caller;
  });
  EXPECT_EQ(zero_on_caller.load(), 10);
  EXPECT_EQ(other_on_caller.load(), 0);
}

void add_to_slot(int64_t task, int) {
  static std::atomic<int64_t> unused{0};
  unused.fetch_add(task, std::memory_order_relaxed);
}

TEST(ThreadPoolTest, AcceptsFunctionsConstAndMutableCallables) {
  ThreadPool pool(2);
  pool.parallel_for(4, add_to_slot);
  std::atomic<int64_t> sum{0};
  const auto const_fn = [&sum](int64_t task, int) { sum += task; };
  pool.parallel_for(4, const_fn);
  struct NonConstCall {
    std::atomic<int64_t>* sum;
    void operator()(int64_t task, int) { *sum += task; }  // deliberately not const
  };
  NonConstCall non_const{&sum};
  pool.parallel_for(4, non_const);
  EXPECT_EQ(sum.load(), 12);
}

// Runs n_calls back-to-back jobs whose outputs depend on the call index, so a lost wake-up (hang),
// a worker running a stale job or a missing happens-before would show up as a wrong value.
void run_back_to_back(ThreadPool& pool, int n_calls, int64_t n_tasks) {
  std::vector<int64_t> out(static_cast<size_t>(n_tasks), -1);
  for (int call = 0; call < n_calls; ++call) {
    pool.parallel_for(n_tasks, [&](int64_t task, int) { out[task] = call * n_tasks + task; });
    for (int64_t task = 0; task < n_tasks; ++task) {
      ASSERT_EQ(out[task], call * n_tasks + task) << "call " << call << " task " << task;
    }
  }
}

TEST(ThreadPoolTest, TenThousandBackToBackCalls) {
  ThreadPool pool(2);
  run_back_to_back(pool, 10000, 37);
}

TEST(ThreadPoolTest, BackToBackWithFewerTasksThanThreads) {
  ThreadPool pool(4);
  for (int64_t n_tasks : {2, 3, 5}) {
    run_back_to_back(pool, 1000, n_tasks);
    if (testing::Test::HasFatalFailure()) return;
  }
}

// More threads than this machine's cores: must neither livelock nor take seconds per call.
TEST(ThreadPoolTest, OversubscribedEightThreads) {
  ThreadPool pool(8);
  run_back_to_back(pool, 3000, 8 * 3 + 1);
}

TEST(ThreadPoolTest, OversubscribedSixteenThreads) {
  ThreadPool pool(16);
  run_back_to_back(pool, 2000, 16 * 2 + 5);
}

TEST(ThreadPoolTest, WorksAfterWorkersFellAsleep) {
  ThreadPool pool(4);
  for (int round = 0; round < 3; ++round) {
    run_back_to_back(pool, 3, 64);
    if (testing::Test::HasFatalFailure()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // far past the spin budget
  }
  check_coverage(pool, 1001);
}

// Scheduler state ('R' running, 'S' sleeping, ...) of every thread of this process but the caller.
std::vector<char> other_thread_states() {
  std::vector<char> states;
  const std::string self = std::to_string(::gettid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    if (entry.path().filename() == self) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');  // the thread name may contain spaces and parentheses
    if (paren != std::string::npos && paren + 2 < line.size()) states.push_back(line[paren + 2]);
  }
  return states;
}

// An idle engine must not burn CPU: after a bounded spin every worker sleeps on the futex.
TEST(ThreadPoolTest, IdleWorkersGoToSleep) {
  if (!std::filesystem::exists("/proc/self/task")) GTEST_SKIP() << "/proc/self/task not available";
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(64, [&](int64_t task, int) { sum += task; });
  ASSERT_EQ(sum, 64 * 63 / 2);
  // Spinning ends within milliseconds; allow seconds for a loaded machine or a sanitizer.
  bool all_asleep = false;
  for (int attempt = 0; attempt < 200 && !all_asleep; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const std::vector<char> states = other_thread_states();
    all_asleep = states.size() >= 3 && std::all_of(states.begin(), states.end(), [](char s) { return s != 'R'; });
  }
  EXPECT_TRUE(all_asleep) << "a worker is still running 5 s after the last job";
}

// parallel_for from one thread, then from another: the pool is not tied to the thread that built it.
TEST(ThreadPoolTest, CallsFromDifferentThreadsInTurn) {
  ThreadPool pool(3);
  for (int round = 0; round < 20; ++round) {
    std::thread caller([&] { check_coverage(pool, 17 + round); });
    caller.join();
  }
  check_coverage(pool, 5);
}

TEST(ThreadPoolTest, RethrowsExceptionFromWorkerAndStaysUsable) {
  ThreadPool pool(4);
  // Task 99 is in the last worker's range: the exception crosses threads.
  std::atomic<int> ran{0};
  try {
    pool.parallel_for(100, [&](int64_t task, int) {
      ++ran;
      if (task == 99) throw std::runtime_error("task 99 failed");
    });
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task 99 failed");
  }
  EXPECT_EQ(ran.load(), 100);  // the thrower's range ended with it; the other ranges all ran
  check_coverage(pool, 1000);
}

TEST(ThreadPoolTest, RethrowsExceptionFromCallerShare) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(9,
                                 [](int64_t task, int worker) {
                                   if (task == 0 && worker == 0) throw Error(ErrorCode::kFormat, "bad");
                                 }),
               Error);
  check_coverage(pool, 9);
}

TEST(ThreadPoolTest, RethrowsOneOfManyExceptions) {
  ThreadPool pool(4);
  for (int round = 0; round < 50; ++round) {
    EXPECT_THROW(pool.parallel_for(64, [](int64_t task, int) { throw static_cast<int>(task); }), int);
  }
  // And the inline path.
  EXPECT_THROW(pool.parallel_for(1, [](int64_t, int) { throw std::logic_error("inline"); }), std::logic_error);
  check_coverage(pool, 64);
}

TEST(ThreadPoolTest, DestroysIdleAndNeverUsedPools) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool never_used(4);
  }
  {
    ThreadPool pool(4);
    check_coverage(pool, 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // workers asleep on the futex
  }
  {
    ThreadPool pool(4);
    check_coverage(pool, 100);  // workers still spinning
  }
}

TEST(ThreadPoolDeathTest, ReentrantCallAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ThreadPool pool(2);
        pool.parallel_for(2, [&pool](int64_t, int) { pool.parallel_for(2, [](int64_t, int) {}); });
      },
      "concurrently or from inside a task");
}

TEST(ThreadPoolDeathTest, NegativeTaskCountAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ThreadPool pool(2);
  EXPECT_DEATH(pool.parallel_for(-1, [](int64_t, int) {}), "negative task count");
}

}  // namespace
}  // namespace ember
