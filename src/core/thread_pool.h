// ThreadPool: persistent workers running statically partitioned parallel_for jobs for the CPU kernels.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace ember {

// One pool per engine (DESIGN.md §4 "Threading"). The calling thread is worker 0 and the pool owns
// n_threads - 1 background workers, created once. While a step runs the workers spin between jobs
// (a dispatch costs a few microseconds); after a bounded spin they sleep on a futex until the next
// job, so an idle engine uses no CPU.
//
// Not thread-safe by design: one thread at a time may call parallel_for, and never from inside a
// task. Both misuses are caught by an atomic flag and abort via EMBER_CHECK.
class ThreadPool {
 public:
  static constexpr int kMaxThreads = 1024;

  // n_threads counts the caller too: ThreadPool(1) starts no threads and runs everything inline.
  // Throws ember::Error: kInvalidArgument unless 1 <= n_threads <= kMaxThreads, kOutOfMemory if the
  // OS refuses to start a thread.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ThreadPool(ThreadPool&&) = delete;
  ThreadPool& operator=(ThreadPool&&) = delete;

  int n_threads() const noexcept { return n_threads_; }

  // Calls fn(task, worker) exactly once for every task in [0, n_tasks) and returns when all are done.
  // Static partitioning over nw = min(n_threads, n_tasks) workers: worker w runs the contiguous range
  // [w*n_tasks/nw, (w+1)*n_tasks/nw) in increasing order, so worker in [0, n_threads) can index
  // per-thread scratch. Does not allocate; fn is referenced, not copied, and must outlive the call.
  // If fn throws, the rest of that worker's range is skipped, the other ranges still run, and the
  // first exception is rethrown here once every worker has finished; the pool stays usable.
  template <typename Fn>
  requires std::is_invocable_v<Fn&, int64_t, int>
  void parallel_for(int64_t n_tasks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    if constexpr (std::is_function_v<F>) {
      // A plain function: its address is not a void*, so go through a reference-capturing lambda.
      parallel_for(n_tasks, [&fn](int64_t task, int worker) { fn(task, worker); });
    } else {
      run(n_tasks, RangeFn::of(fn));
    }
  }

 private:
  // Non-owning reference to a callable, erased to one trampoline per *range* rather than per task,
  // so fn is inlined into the task loop and a job costs one indirect call per worker.
  class RangeFn {
   public:
    // A factory rather than a constructor template, which would hijack copies of non-const RangeFns.
    template <typename F>
    static RangeFn of(F& fn) noexcept {
      RangeFn ref;
      // F may be const-qualified; run_range<F> casts back to that same F, so constness is kept.
      ref.obj_ = const_cast<void*>(static_cast<const void*>(std::addressof(fn)));
      ref.call_ = &run_range<F>;
      return ref;
    }

    void operator()(int64_t begin, int64_t end, int worker) const { call_(obj_, begin, end, worker); }

   private:
    template <typename F>
    static void run_range(void* obj, int64_t begin, int64_t end, int worker) {
      F& fn = *static_cast<F*>(obj);
      for (int64_t task = begin; task < end; ++task) fn(task, worker);
    }

    void* obj_ = nullptr;
    void (*call_)(void*, int64_t, int64_t, int) = nullptr;
  };

  // Cache line size for the alignas below: keeps the caller-written job line, the worker-written
  // completion counter and the sleeper count from false-sharing. (Not
  // std::hardware_destructive_interference_size: GCC warns about its use in headers.)
  static constexpr size_t kCacheLine = 64;

  void run(int64_t n_tasks, RangeFn fn);
  void worker_main(int worker);
  uint32_t wait_for_job(uint32_t seen) noexcept;
  void run_share(int worker) noexcept;
  void record_error(std::exception_ptr error) noexcept;
  void stop_workers() noexcept;

  // One cache line, written by the caller before it bumps generation, read by workers after they
  // see the bump. Plain fields: the release/acquire pair on generation orders them, and the caller
  // does not touch them again until every worker has acknowledged the job through pending_.
  struct alignas(kCacheLine) Job {
    std::atomic<uint32_t> generation{0};  // bumped once per job (and once to stop); workers watch it
    bool stop = false;                    // set with the last bump, by the destructor
    int n_workers = 0;                    // workers with a non-empty range: min(n_threads, n_tasks)
    int64_t n_tasks = 0;
    RangeFn fn;
  };
  static_assert(sizeof(Job) == kCacheLine);
  Job job_;

  // Read-only after construction, on their own line (job_ fills whole lines, pending_ starts a new
  // one), so the caller's writes to in_call_ never invalidate what spinning workers read.
  int n_threads_ = 1;
  uint32_t spin_limit_ = 0;  // worker polls before sleeping; fewer when oversubscribed
  bool spin_yield_ = false;  // oversubscribed: every poll yields instead of pausing
  std::vector<std::thread> threads_;

  // Background workers that have not yet finished the current job. All of them acknowledge every
  // job, even those with an empty range: afterwards none reads job_ until the next bump, which is
  // what lets the caller rewrite job_ without a race. The caller spins on it.
  alignas(kCacheLine) std::atomic<int> pending_{0};
  // Workers inside (or about to enter) generation.wait(); lets a job skip the futex wake syscall
  // when every worker is still spinning.
  alignas(kCacheLine) std::atomic<int> sleepers_{0};

  // Caller-side state; workers touch has_error_ and error_ only when a task throws.
  alignas(kCacheLine) std::atomic<bool> in_call_{false};  // misuse detector (concurrent/re-entrant)
  std::atomic<bool> has_error_{false};                    // first thrower claims error_
  std::exception_ptr error_;
};

}  // namespace ember
