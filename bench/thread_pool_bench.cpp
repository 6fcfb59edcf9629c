// Microbenchmarks for ThreadPool::parallel_for: dispatch cost when warm, after sleeping, and with tiny tasks.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace {

constexpr int64_t kFloatsPerTask = 1024;

// 1, 2, 4 (oversubscribed on small machines) and every hardware thread, without duplicates.
void thread_counts(benchmark::internal::Benchmark* bench) {
  std::vector<int> counts = {1, 2, 4, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  for (int n : counts) bench->Arg(n);
  bench->ArgName("threads");
}

// One task per worker and an empty body: the pure wake-up / finish round trip with warm workers.
void BM_EmptyDispatch(benchmark::State& state) {
  const int n_threads = static_cast<int>(state.range(0));
  ember::ThreadPool pool(n_threads);
  for (auto _ : state) {
    pool.parallel_for(n_threads, [](int64_t task, int worker) {
      benchmark::DoNotOptimize(task);
      benchmark::DoNotOptimize(worker);
    });
  }
}
// Real time: the cost is wall time on the caller, not its CPU time.
BENCHMARK(BM_EmptyDispatch)->Apply(thread_counts)->UseRealTime();

// Each task sums 1k floats (~100 ns of work): closer to a small decode-time kernel.
void BM_SumFloats(benchmark::State& state) {
  const int n_threads = static_cast<int>(state.range(0));
  const int64_t n_tasks = n_threads;
  ember::ThreadPool pool(n_threads);
  std::vector<float> data(static_cast<size_t>(n_tasks * kFloatsPerTask));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7) * 0.25f;
  // One result per task, a cache line apart so the workers do not false-share.
  std::vector<float> sums(static_cast<size_t>(n_tasks) * 16);
  for (auto _ : state) {
    pool.parallel_for(n_tasks, [&](int64_t task, int) {
      const float* x = data.data() + task * kFloatsPerTask;
      float sum = 0.0f;
      for (int64_t i = 0; i < kFloatsPerTask; ++i) sum += x[i];
      sums[static_cast<size_t>(task) * 16] = sum;
    });
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n_tasks * kFloatsPerTask);
}
BENCHMARK(BM_SumFloats)->Apply(thread_counts)->UseRealTime();

// Dispatch to workers that have stopped spinning and sleep on the futex (first call of a step).
void BM_DispatchAfterSleep(benchmark::State& state) {
  const int n_threads = static_cast<int>(state.range(0));
  ember::ThreadPool pool(n_threads);
  for (auto _ : state) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // well past the workers' spin budget
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n_threads, [](int64_t task, int) { benchmark::DoNotOptimize(task); });
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}
// Fixed iterations: with manual time the library would otherwise run until 0.5 s of *measured* time,
// i.e. tens of thousands of 5 ms sleeps.
BENCHMARK(BM_DispatchAfterSleep)->Apply(thread_counts)->UseManualTime()->Iterations(100);

}  // namespace

BENCHMARK_MAIN();
