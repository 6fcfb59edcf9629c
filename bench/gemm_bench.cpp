// GEMM throughput (prefill: 512 activation rows) at real layer shapes on repacked weights, in
// GOP/s counting 2 ops per multiply-add, for each weight type on the best kernel table (or
// EMBER_ISA). `gemm_bench [threads] [rows]`: measures the roofline first and prints each figure as
// a fraction of the peak its kernel runs on (int8 VNNI; FP32 FMA for F16; BF16 dot for BF16);
// integer types of 32-element sub-blocks and F16 also on AMX tiles where the CPU has them (their own
// column: no measured peak).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/roofline.h"

int main(int argc, char** argv) {
  using namespace ember;
  using Clock = std::chrono::steady_clock;
  const int threads = argc > 1 ? std::atoi(argv[1]) : cpu_features().usable_cpus;
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 512;
  if (threads < 1 || threads > ThreadPool::kMaxThreads || m < 1) {
    std::fprintf(stderr, "usage: gemm_bench [threads >= 1] [rows >= 1]\n");
    return 2;
  }
  const Roofline roofline = measure_roofline(threads);
  ThreadPool pool(threads);
  const Isa isa = select_isa();
  std::printf(
      "gemm, %lld activation rows, %d threads, kernel table %s; peaks: int8 %.0f GOP/s, FMA %.0f GFLOP/s, "
      "BF16 %.0f GFLOP/s\n",
      static_cast<long long>(m), threads, std::string(isa_name(isa)).c_str(), roofline.vnni_gops, roofline.fma_gflops,
      roofline.bf16_gflops);
  std::printf("%-8s %-12s %10s %9s %10s %12s %10s %10s\n", "type", "shape", "GOP/s", "of peak", "ms/call", "packed MiB",
              "AMX GOP/s", "AMX ms");
  const DType types[] = {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ5_0,
                         DType::kQ6_K, DType::kF16,  DType::kBF16};
  const std::pair<int64_t, int64_t> shapes[] = {{2048, 8192}, {8192, 2048}};  // (n_out, k)
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (DType type : types) {
    if (!gemm_serves(isa, type)) {  // the scalar reference would take hours; matmuls use the GEMV
      std::printf("%-8s (no %s GEMM kernel)\n", std::string(dtype_name(type)).c_str(),
                  std::string(isa_name(isa)).c_str());
      continue;
    }
    for (const auto& [n_out, k] : shapes) {
      std::vector<float> w_float(static_cast<size_t>(n_out * k));
      for (float& v : w_float) v = normal(rng);
      std::vector<std::byte> blocks(*dtype_bytes_for(type, static_cast<uint64_t>(n_out * k)));
      quantize(type, w_float.data(), blocks.data(), n_out * k);
      const PackedWeights w = PackedWeights::pack({blocks.data(), type, n_out, k}, isa, pool);
      std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n_out));
      for (float& v : x) v = normal(rng) * 50;
      GemmScratch scratch;
      // Median seconds per call after a warm-up call (which sizes the scratch).
      const auto time_gemm = [&](const GemmOptions& options) {
        gemm(isa, pool, w, x.data(), m, y.data(), scratch, options);
        std::vector<double> times;
        for (int rep = 0; rep < 5; ++rep) {
          const auto start = Clock::now();
          gemm(isa, pool, w, x.data(), m, y.data(), scratch, options);
          times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
        }
        std::sort(times.begin(), times.end());
        return times[times.size() / 2];
      };
      const double ops = 2.0 * static_cast<double>(m * n_out * k);
      const double t = time_gemm(GemmOptions{false});
      const double gops = ops / t / 1e9;
      char amx_gops[16] = "n/a", amx_ms[16] = "n/a";
      if (gemm_takes_amx(isa, w, m, GemmOptions{true})) {
        const double t_amx = time_gemm(GemmOptions{true});
        std::snprintf(amx_gops, sizeof amx_gops, "%.1f", ops / t_amx / 1e9);
        std::snprintf(amx_ms, sizeof amx_ms, "%.2f", t_amx * 1e3);
      }
      const double peak = type == DType::kF16    ? roofline.fma_gflops
                          : type == DType::kBF16 ? roofline.bf16_gflops
                                                 : roofline.vnni_gops;
      char of_peak[16] = "n/a";
      if (peak > 0) std::snprintf(of_peak, sizeof of_peak, "%.0f%%", 100 * gops / peak);
      std::printf("%-8s %5lldx%-6lld %10.1f %9s %10.2f %12.1f %10s %10s\n", std::string(dtype_name(type)).c_str(),
                  static_cast<long long>(n_out), static_cast<long long>(k), gops, of_peak, t * 1e3,
                  static_cast<double>(w.bytes()) / (1 << 20), amx_gops, amx_ms);
    }
  }
  return 0;
}
