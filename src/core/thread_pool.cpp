// ThreadPool: worker lifecycle and the generation-counter wake-up / pending-counter finish protocol.
#include "core/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <utility>

#include "core/check.h"
#include "core/cpu_features.h"

namespace ember {
namespace {

// Worker polls after a job before it sleeps on the futex: roughly 0.3-1 ms (a pause is ~20-70 ns on
// current x86, plus the yields below). Long enough to bridge the serial code between the
// parallel_for calls of one forward pass, short enough that an idle engine goes quiet at once.
constexpr uint32_t kSpinIterations = 1 << 14;
// With more threads than CPUs a spinning worker holds the CPU that a worker still owing its share
// of the job needs, so oversubscribed pools yield on every poll and give up sooner.
constexpr uint32_t kSpinIterationsOversubscribed = 256;
// Every kYieldInterval-th poll yields instead of pausing, so a thread we wait for that shares our
// CPU (the pool is oversubscribed, or another process takes a core) runs within a few microseconds
// instead of after our time slice. A yield costs ~0.5 us when nobody else is runnable.
constexpr uint32_t kYieldInterval = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();  // tells the core this is a spin loop: saves power, frees the sibling
#else
  std::this_thread::yield();
#endif
}

// One poll step of a spin loop: pause, or yield on every kYieldInterval-th step (every step when
// always_yield).
inline void backoff(uint32_t spin, bool always_yield) noexcept {
  if (always_yield || spin % kYieldInterval == kYieldInterval - 1) {
    std::this_thread::yield();
  } else {
    cpu_relax();
  }
}

// Clears the misuse flag on every exit from run(), including by exception. Release pairs with the
// acquire exchange of the next call, which may come from another thread.
class CallGuard {
 public:
  explicit CallGuard(std::atomic<bool>& flag) noexcept : flag_(flag) {}
  ~CallGuard() { flag_.store(false, std::memory_order_release); }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  std::atomic<bool>& flag_;
};

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads < 1 || n_threads > kMaxThreads) {
    fail(ErrorCode::kInvalidArgument, "thread pool size {} is out of range [1, {}]", n_threads, kMaxThreads);
  }
  n_threads_ = n_threads;
  // The CPUs this process may run on (affinity mask, e.g. taskset or a cpuset), not all online ones.
  const int n_cpus = cpu_features().usable_cpus;
  const bool oversubscribed = n_threads > n_cpus;
  spin_limit_ = oversubscribed ? kSpinIterationsOversubscribed : kSpinIterations;
  spin_yield_ = oversubscribed;
  try {
    threads_.reserve(static_cast<size_t>(n_threads - 1));
    // Workers inherit a mask blocking the termination signals, so that Ctrl-C is handled by the
    // application's own threads (AtomicFile's cleanup handler, for one), never by a worker.
    sigset_t termination, previous;
    sigemptyset(&termination);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&termination, sig);
    ::pthread_sigmask(SIG_BLOCK, &termination, &previous);
    try {
      for (int worker = 1; worker < n_threads; ++worker) threads_.emplace_back(&ThreadPool::worker_main, this, worker);
    } catch (...) {
      ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  } catch (const std::exception& e) {
    // The destructor will not run: stop the workers already started, or their std::thread
    // destructors would terminate the process.
    stop_workers();
    fail(ErrorCode::kOutOfMemory, "cannot start {} worker threads: {}", n_threads - 1, e.what());
  }
}

ThreadPool::~ThreadPool() {
  EMBER_CHECK_MSG(!in_call_.load(std::memory_order_relaxed), "ThreadPool destroyed during parallel_for");
  stop_workers();
}

void ThreadPool::stop_workers() noexcept {
  // Every worker is between jobs (the last call waited for all of them), so none reads job_ now.
  job_.stop = true;
  job_.generation.fetch_add(1, std::memory_order_seq_cst);  // release: publishes stop
  job_.generation.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void ThreadPool::run(int64_t n_tasks, RangeFn fn) {
  EMBER_CHECK_MSG(n_tasks >= 0, "parallel_for with a negative task count");
  if (n_tasks == 0) return;
  // Acquire: sees everything the previous call (maybe from another thread) did before releasing.
  const bool busy = in_call_.exchange(true, std::memory_order_acquire);
  EMBER_CHECK_MSG(!busy, "ThreadPool::parallel_for called concurrently or from inside a task");
  CallGuard guard(in_call_);

  const int n_workers = static_cast<int>(std::min<int64_t>(n_threads_, n_tasks));
  if (n_workers == 1) {
    fn(0, n_tasks, 0);  // one task or one thread: no hand-off, exceptions propagate as they are
    return;
  }

  // Publish the job. The previous call saw pending_ == 0, so no worker reads job_ concurrently.
  job_.n_workers = n_workers;
  job_.n_tasks = n_tasks;
  job_.fn = fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // Release: a worker that sees the new generation also sees the job fields and pending_ above.
  // Seq_cst: with the seq_cst sleepers_ accesses this is a Dekker handshake. Either a worker's
  // sleepers_ increment comes first in the total order, and then we see it and notify; or our
  // increment comes first, and then the worker's re-check of generation after its increment sees it
  // and it never blocks. So skipping notify_all when sleepers_ reads 0 cannot lose a wake-up.
  job_.generation.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) job_.generation.notify_all();

  run_share(0);

  // Acquire: pairs with every worker's release decrement (they form one release sequence), so the
  // tasks' writes and error_ are visible once we read 0. The caller never sleeps: the job is running
  // and the stragglers are busy. Unsigned spin: a long job may poll 2^31 times; wrapping is harmless.
  for (uint32_t spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) backoff(spin, spin_yield_);

  if (has_error_.load(std::memory_order_relaxed)) {
    std::exception_ptr error = std::exchange(error_, nullptr);
    // Relaxed: the next job's workers read has_error_ only after the release bump of generation.
    has_error_.store(false, std::memory_order_relaxed);
    std::rethrow_exception(std::move(error));
  }
}

void ThreadPool::worker_main(int worker) {
  uint32_t seen = 0;  // no job can have been published before the constructor returned
  for (;;) {
    seen = wait_for_job(seen);
    if (job_.stop) return;
    run_share(worker);
    // Release: this worker's task writes (and error_) happen-before the caller's acquire of 0. After
    // this the worker must not touch job_: the caller may already be writing the next job.
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

uint32_t ThreadPool::wait_for_job(uint32_t seen) noexcept {
  // Acquire on every load that can return: pairs with the caller's release bump (job fields).
  for (uint32_t spin = 0; spin < spin_limit_; ++spin) {
    const uint32_t generation = job_.generation.load(std::memory_order_acquire);
    if (generation != seen) return generation;
    backoff(spin, spin_yield_);
  }
  // Seq_cst increment and re-check: the worker half of the handshake described in run().
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  uint32_t generation = job_.generation.load(std::memory_order_seq_cst);
  while (generation == seen) {
    // Blocks only while the value still equals seen (the futex compares atomically in the kernel).
    job_.generation.wait(seen, std::memory_order_acquire);
    generation = job_.generation.load(std::memory_order_acquire);
  }
  // Relaxed: a stale non-zero count only costs the caller one unnecessary notify_all.
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return generation;
}

void ThreadPool::run_share(int worker) noexcept {
  const int n_workers = job_.n_workers;
  if (worker >= n_workers) return;
  // [w*n/nw, (w+1)*n/nw) computed as w*q + w*r/nw (n = q*nw + r) so w*n cannot overflow int64.
  const int64_t q = job_.n_tasks / n_workers;
  const int64_t r = job_.n_tasks % n_workers;
  const int64_t begin = worker * q + worker * r / n_workers;
  const int64_t end = (worker + 1) * q + (worker + 1) * r / n_workers;
  try {
    job_.fn(begin, end, worker);
  } catch (...) {
    record_error(std::current_exception());
  }
}

void ThreadPool::record_error(std::exception_ptr error) noexcept {
  // Relaxed: the exchange alone picks one writer per job; the caller reads error_ only after its
  // acquire of pending_ (or, for its own share, in program order).
  if (!has_error_.exchange(true, std::memory_order_relaxed)) error_ = std::move(error);
}

}  // namespace ember
