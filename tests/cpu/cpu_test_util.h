// Helpers shared by the CPU kernel tests: seeded random rows, quantized copies, backend options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "quant/quant_traits.h"

namespace ember::cpu_test {

// n normally distributed floats (mean 0, standard deviation `scale`), reproducible from `seed`.
inline std::vector<float> random_values(size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// `values` quantized to `type` (a whole number of its blocks).
inline std::vector<std::byte> quantized(DType type, const std::vector<float>& values) {
  std::vector<std::byte> out(*dtype_bytes_for(type, values.size()));
  quantize(type, values.data(), out.data(), static_cast<int64_t>(values.size()));
  return out;
}

// Σ a[j]·b[j] over k in float64, and Σ |a[j]·b[j]|: the scale a float32 result's error is judged
// against.
struct Dot64 {
  double value = 0;
  double magnitude = 0;
};
inline Dot64 dot64(const float* a, const float* b, int64_t k) {
  Dot64 d;
  for (int64_t j = 0; j < k; ++j) {
    const double p = static_cast<double>(a[j]) * b[j];
    d.value += p;
    d.magnitude += p < 0 ? -p : p;
  }
  return d;
}

inline CpuBackendOptions backend_options(int n_threads, std::optional<Isa> isa = std::nullopt, bool repack = true) {
  CpuBackendOptions options;
  options.n_threads = n_threads;
  options.isa = isa;
  options.repack_weights = repack;
  return options;
}

inline StepLimits step_limits(int64_t max_rows, int64_t max_k) {
  StepLimits limits;
  limits.max_rows = max_rows;
  limits.max_k = max_k;
  return limits;
}

}  // namespace ember::cpu_test
