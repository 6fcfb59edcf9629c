// Monotonic timers for stats and benchmarks.
#pragma once

#include <chrono>
#include <cstdint>

namespace ember {

// Measures elapsed wall time on the monotonic clock from construction or the last reset().
class Timer {
 public:
  using Clock = std::chrono::steady_clock;

  Timer() noexcept : start_(Clock::now()) {}
  void reset() noexcept { start_ = Clock::now(); }

  double elapsed_seconds() const noexcept { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double elapsed_ms() const noexcept { return elapsed_seconds() * 1e3; }
  int64_t elapsed_us() const noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  }
  int64_t elapsed_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  }

 private:
  Clock::time_point start_;
};

// Adds the time between construction and destruction to an accumulator (seconds).
class ScopedTimer {
 public:
  explicit ScopedTimer(double* accumulator_seconds) noexcept : accumulator_(accumulator_seconds) {}
  ~ScopedTimer() { *accumulator_ += timer_.elapsed_seconds(); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Timer timer_;
  double* accumulator_;
};

}  // namespace ember
