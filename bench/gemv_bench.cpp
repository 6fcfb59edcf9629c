// Decode throughput (one activation row, or a few: draft verification, small batches) at real layer shapes, in GB/s of
// weight bytes read, for each weight type on the best kernel table (or EMBER_ISA): the GEMV on the file's blocks and,
// where the type has a packed form, the GEMM's one-row kernel on the repacked panels (the two
// decode paths on avx512: CpuBackendOptions::decode_on_packed), timed alternately so the machine's
// drift hits both alike; each GB/s counts its own bytes (file blocks, or the larger panels), and
// `x GEMV` is the packed path's speed relative to the GEMV. Weights are cycled through copies
// totalling >= 1 GiB so they come from memory, as in a real decode step, not from cache.
// `gemv_bench [threads] [type,type,...|all] [rows]` (default: every type with a dot product, one
// row); compare with roofline_bench's read bandwidth. With rows > 1 the packed column is the GEMM
// CpuBackend takes from gemm_min_rows on: where it wins, gemm_min_rows should be lower.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "cpu/gemm.h"
#include "cpu/matmul.h"
#include "cpu/roofline.h"

namespace {

using namespace ember;
using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : cpu_features().usable_cpus;
  const std::string only = argc > 2 && std::string(argv[2]) != "all" ? "," + std::string(argv[2]) + "," : "";
  const int64_t m = argc > 3 ? std::atoll(argv[3]) : 1;
  if (threads < 1 || threads > ThreadPool::kMaxThreads || m < 1 || m > 64) {
    std::fprintf(stderr, "usage: gemv_bench [threads >= 1] [type,type,...|all] [rows 1-64]\n");
    return 2;
  }
  const Roofline roofline = measure_roofline(threads);
  ThreadPool pool(threads);
  const CpuKernels& kernels = cpu_kernels(select_isa());
  const Isa isa = kernels.isa;
  std::printf("gemv, %lld activation row(s), %d threads, kernel table %s, read bandwidth %.1f GB/s\n",
              static_cast<long long>(m), threads, std::string(isa_name(isa)).c_str(), roofline.read_gbs_all);
  std::printf("%-8s %-12s %10s %10s %10s   %12s %10s %10s\n", "type", "shape", "GB/s", "of BW", "us/call",
              "packed GB/s", "us/call", "x GEMV");
  std::vector<DType> types;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.vec_dot == nullptr || t.dtype == DType::kF32) continue;
    if (only.empty() || only.find("," + std::string(dtype_name(t.dtype)) + ",") != std::string::npos)
      types.push_back(t.dtype);
  }
  const std::pair<int64_t, int64_t> shapes[] = {{2048, 8192}, {8192, 2048}};  // (n_out, k)
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (DType type : types) {
    // Integer types on avx512 can decode on the packed panels (CpuBackend's decode_on_packed); from
    // two rows on, every type the GEMM serves.
    const bool packed_decode =
        gemm_serves(isa, type) && (m > 1 || (isa == Isa::kAvx512 && type != DType::kF16 && type != DType::kBF16));
    for (const auto& [n_out, k] : shapes) {
      const uint64_t bytes = *dtype_bytes_for(type, static_cast<uint64_t>(n_out * k));
      std::vector<float> w_float(static_cast<size_t>(n_out * k));
      for (float& v : w_float) v = normal(rng);
      const int copies = static_cast<int>(std::max<uint64_t>(2, (1ull << 30) / bytes));
      AlignedBuffer weights(bytes * static_cast<size_t>(copies));
      quantize(type, w_float.data(), weights.data(), n_out * k);
      for (int c = 1; c < copies; ++c)
        std::copy_n(weights.data(), bytes, weights.data() + bytes * static_cast<size_t>(c));
      std::vector<PackedWeights> packed;
      for (int c = 0; packed_decode && c < copies; ++c) {
        packed.push_back(
            PackedWeights::pack({weights.data() + bytes * static_cast<size_t>(c), type, n_out, k}, isa, pool));
      }
      std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n_out));
      for (float& v : x) v = normal(rng) * 50;
      MatmulScratch scratch;
      GemmScratch gemm_scratch;
      std::vector<double> times, packed_times;
      for (int rep = 0; rep < 7; ++rep) {
        auto start = Clock::now();
        for (int c = 0; c < copies; ++c) {
          matmul(kernels, pool, {weights.data() + bytes * static_cast<size_t>(c), type, n_out, k}, x.data(), m,
                 y.data(), scratch);
        }
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count() / copies);
        if (packed.empty()) continue;
        start = Clock::now();
        for (const PackedWeights& w : packed) gemm(isa, pool, w, x.data(), m, y.data(), gemm_scratch);
        packed_times.push_back(std::chrono::duration<double>(Clock::now() - start).count() / copies);
      }
      const auto median = [](std::vector<double>& v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const double t = median(times);
      const double gbs = static_cast<double>(bytes) / t / 1e9;
      std::printf("%-8s %5lldx%-6lld %10.2f %9.0f%% %10.1f", std::string(dtype_name(type)).c_str(),
                  static_cast<long long>(n_out), static_cast<long long>(k), gbs,
                  roofline.read_gbs_all > 0 ? 100 * gbs / roofline.read_gbs_all : 0.0, t * 1e6);
      if (!packed.empty()) {
        const double tp = median(packed_times);
        std::printf("   %12.2f %10.1f %9.2fx", static_cast<double>(packed[0].bytes()) / tp / 1e9, tp * 1e6, t / tp);
      }
      std::printf("\n");
    }
  }
  return 0;
}
