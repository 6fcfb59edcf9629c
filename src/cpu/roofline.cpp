// The roofline probe: this machine's limits that kernels are judged against — read bandwidth (1
// thread and all threads, a 1 GiB buffer), peak FP32 FMA, int8 VNNI dot and BF16 dot (all threads),
// medians of 5 runs each.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/roofline.h"
#include "cpu/roofline_kernels.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace ember;

volatile float g_sink_f = 0;
volatile uint32_t g_sink_i = 0;  // unsigned: the sums wrap (no overflow UB)

// Median of 5 wall times of fn().
double median_seconds(const std::function<void()>& fn) {
  std::vector<double> t;
  for (int r = 0; r < 5; ++r) {
    const auto start = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

namespace ember {

Roofline measure_roofline(int n_threads) {
  Roofline result;
  result.threads = n_threads;
  const CpuFeatures& cpu = cpu_features();
  const bool avx512 = cpu.supports_avx512_tier(), avx2 = cpu.supports_avx2_tier();
  if (!avx2) return result;
  ThreadPool pool(n_threads);

  // Read bandwidth over 1 GiB (far beyond any cache), first touched by the threads that read it.
  constexpr size_t kFloats = size_t{1} << 28;
  AlignedBuffer buffer(kFloats * sizeof(float));
  float* data = reinterpret_cast<float*>(buffer.data());
  const size_t chunk = kFloats / static_cast<size_t>(n_threads) / 64 * 64;
  pool.parallel_for(n_threads, [&](int64_t t, int) {
    for (size_t i = 0; i < chunk; ++i) data[static_cast<size_t>(t) * chunk + i] = 1.0f;
  });
  const auto read = [&](const float* p, size_t n) {
    return avx512 ? roofline::read_sum_avx512(p, n) : roofline::read_sum_avx2(p, n);
  };
  const double bytes_1 = static_cast<double>(chunk * sizeof(float)) * n_threads;
  const double t1 = median_seconds([&] { g_sink_f = g_sink_f + read(data, chunk * static_cast<size_t>(n_threads)); });
  result.read_gbs_1 = bytes_1 / t1 / 1e9;
  const double tn = median_seconds([&] {
    pool.parallel_for(
        n_threads, [&](int64_t t, int) { g_sink_f = g_sink_f + read(data + static_cast<size_t>(t) * chunk, chunk); });
  });
  result.read_gbs_all = bytes_1 / tn / 1e9;

  // Compute peaks on all threads: enough iterations for ~0.1 s each.
  constexpr int64_t kIters = 2'000'000;
  const auto peak = [&](double ops_per_iter, const std::function<void()>& body) {
    const double t = median_seconds([&] { pool.parallel_for(n_threads, [&](int64_t, int) { body(); }); });
    return ops_per_iter * static_cast<double>(kIters) * n_threads / t / 1e9;
  };
  if (avx512) {
    result.fma_gflops = peak(2.0 * 16 * 16, [&] { g_sink_f = g_sink_f + roofline::fma_avx512(kIters); });
    if (cpu.avx512_vnni) {
      result.vnni_gops =
          peak(2.0 * 64 * 16, [&] { g_sink_i = g_sink_i + static_cast<uint32_t>(roofline::vnni_avx512(kIters)); });
    }
    if (cpu.avx512_bf16) {
      result.bf16_gflops = peak(2.0 * 32 * 16, [&] { g_sink_f = g_sink_f + roofline::bf16_avx512(kIters); });
    }
  } else {
    result.fma_gflops = peak(2.0 * 8 * 16, [&] { g_sink_f = g_sink_f + roofline::fma_avx2(kIters); });
  }
  return result;
}

}  // namespace ember
