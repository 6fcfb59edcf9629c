// Reference quantizer quality and speed: RMSE per type on 1M N(0,1) values and on heavy-tailed
// values (1% scaled x8), and quantize / dequantize throughput (MB/s of float input/output).
// The reference kernels are scalar; SIMD kernels (CPU backend issue) will be measured here too.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "quant/quant_traits.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> make_data(size_t n, bool heavy_tail, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng) * (heavy_tail && u(rng) < 0.01f ? 8.0f : 1.0f);
  return x;
}

double rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) err += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
  return std::sqrt(err / static_cast<double>(x.size()));
}

// Median of `runs` timings of fn, in seconds.
template <typename Fn>
double median_seconds(int runs, Fn fn) {
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto start = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  constexpr size_t kN = 1 << 20;  // 1M values (a multiple of every block size)
  const std::vector<float> normal = make_data(kN, false, 1), heavy = make_data(kN, true, 2);
  std::printf("%-8s %12s %12s %14s %14s %8s\n", "type", "rmse N(0,1)", "rmse heavy", "quant MB/s", "dequant MB/s",
              "bits/w");
  for (const ember::QuantTraits& t : ember::quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    const auto bytes = *ember::dtype_bytes_for(t.dtype, kN);
    std::vector<std::byte> blocks(bytes);
    std::vector<float> y(kN);
    double errors[2];
    const std::vector<float>* inputs[2] = {&normal, &heavy};
    for (int k = 0; k < 2; ++k) {
      ember::quantize(t.dtype, inputs[k]->data(), blocks.data(), kN);
      ember::dequantize(t.dtype, blocks.data(), y.data(), kN);
      errors[k] = rmse(*inputs[k], y);
    }
    const double mb = static_cast<double>(kN) * 4 / 1e6;
    const double q = median_seconds(5, [&] { ember::quantize(t.dtype, normal.data(), blocks.data(), kN); });
    const double d = median_seconds(5, [&] { ember::dequantize(t.dtype, blocks.data(), y.data(), kN); });
    std::printf("%-8s %12.6f %12.6f %14.1f %14.1f %8.3f\n", std::string(ember::dtype_name(t.dtype)).c_str(), errors[0],
                errors[1], mb / q, mb / d, static_cast<double>(bytes) * 8 / kN);
  }
  return 0;
}
