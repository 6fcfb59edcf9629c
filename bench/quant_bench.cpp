// Reference quantizer quality and speed: RMSE per type on 1M N(0,1) values and on heavy-tailed
// values (1% scaled x8), and quantize / dequantize throughput (MB/s of float input/output). A second
// table compares the quantizers without and with importance weights (an imatrix row with 4% of the
// columns weighted 100x) by the importance-weighted RMSE, and gives the weighted quantize speed.
// A third table takes llama.cpp's own quantized files as the witness: on the tiny-llama model in
// ../shared/data/quant, the RMSE of llama.cpp's dequantized tensors against the F32 original next
// to the RMSE of ours (the same F32 tensors quantized and dequantized by ember).
// The reference kernels are scalar; SIMD kernels (CPU backend issue) will be measured here too.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "gguf/gguf_reader.h"
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

// sqrt(Σ w_col · (x - y)² / Σ w_col) over rows of importance.size() columns.
double weighted_rmse(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& importance) {
  double err = 0, total = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = importance[i % importance.size()];
    err += w * (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    total += w;
  }
  return std::sqrt(err / total);
}

void print_importance_table(const std::vector<float>& x) {
  constexpr int64_t kRowLen = 4096;
  const auto n_rows = static_cast<int64_t>(x.size()) / kRowLen;
  std::vector<float> importance(kRowLen);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& w : importance) w = u(rng) < 0.04f ? 100.0f : 1.0f;
  std::printf("\nimportance-weighted RMSE, heavy-tailed data, rows of %lld, 4%% of the columns weighted 100x\n",
              static_cast<long long>(kRowLen));
  std::printf("%-8s %14s %14s %8s %14s\n", "type", "unweighted", "weighted", "ratio", "w-quant MB/s");
  for (const ember::QuantTraits& t : ember::quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    std::vector<std::byte> blocks(*ember::dtype_bytes_for(t.dtype, x.size()));
    std::vector<float> y(x.size());
    double rmse_of[2];
    for (int weighted = 0; weighted < 2; ++weighted) {
      ember::quantize_rows(t.dtype, x.data(), blocks.data(), n_rows, kRowLen, weighted ? importance.data() : nullptr);
      ember::dequantize(t.dtype, blocks.data(), y.data(), static_cast<int64_t>(x.size()));
      rmse_of[weighted] = weighted_rmse(x, y, importance);
    }
    const double q = median_seconds(
        3, [&] { ember::quantize_rows(t.dtype, x.data(), blocks.data(), n_rows, kRowLen, importance.data()); });
    const std::string ratio = rmse_of[0] > 0 ? std::to_string(rmse_of[1] / rmse_of[0]).substr(0, 5) : "-";
    std::printf("%-8s %14.6f %14.6f %8s %14.1f\n", std::string(ember::dtype_name(t.dtype)).c_str(), rmse_of[0],
                rmse_of[1], ratio.c_str(), static_cast<double>(x.size()) * 4 / 1e6 / q);
  }
}

}  // namespace

// RMSE against the F32 original of llama.cpp's values and of ours, over every 2-D tensor whose
// values the witness files store (token_embd, output and layer 0; see the data README).
void print_witness_table() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "quant";
  if (!fs::exists(dir / "tiny-llama-f32.gguf")) {
    std::printf("\n(no ../shared/data/quant: witness table skipped)\n");
    return;
  }
  const ember::GgufFile original = ember::GgufFile::open((dir / "tiny-llama-f32.gguf").string());
  const std::pair<const char*, ember::DType> types[] = {
      {"Q8_0", ember::DType::kQ8_0},     {"Q6_K", ember::DType::kQ6_K},   {"Q5_1", ember::DType::kQ5_1},
      {"Q5_K_S", ember::DType::kQ5_K},   {"Q5_0", ember::DType::kQ5_0},   {"Q4_1", ember::DType::kQ4_1},
      {"Q4_K_S", ember::DType::kQ4_K},   {"Q4_0", ember::DType::kQ4_0},   {"IQ4_NL", ember::DType::kIQ4_NL},
      {"IQ4_XS", ember::DType::kIQ4_XS}, {"Q3_K_S", ember::DType::kQ3_K}, {"Q2_K", ember::DType::kQ2_K}};
  std::printf("\nwitness: llama.cpp's tiny-llama-pure-<TYPE>.gguf vs ember on the same F32 tensors\n");
  std::printf("%-8s %10s %16s %16s\n", "type", "values", "rmse llama.cpp", "rmse ember");
  for (const auto& [name, dtype] : types) {
    const std::string stem = std::string("tiny-llama-pure-") + name + ".gguf";
    std::ifstream json_in(dir / (stem + ".expected.json"));
    const auto expected = nlohmann::json::parse(json_in);
    double err_llama = 0, err_ours = 0;
    uint64_t n_values = 0;
    for (const auto& t : expected["tensors"]) {
      if (t["bin"].is_null() || t["shape"].size() != 2) continue;
      std::ifstream bin(dir / t["bin"].get<std::string>(), std::ios::binary);
      const uint64_t n = t["n_elements"];
      std::vector<float> llama(n), ours(n);
      bin.seekg(t["offset"].get<std::streamoff>());
      bin.read(reinterpret_cast<char*>(llama.data()), static_cast<std::streamsize>(n * sizeof(float)));
      const ember::GgufTensorInfo& info = *original.find_tensor(t["name"].get<std::string>());
      const float* x = original.tensor_view(info).data_as<float>();
      std::vector<std::byte> blocks(*ember::dtype_bytes_for(dtype, n));
      ember::quantize(dtype, x, blocks.data(), static_cast<int64_t>(n));
      ember::dequantize(dtype, blocks.data(), ours.data(), static_cast<int64_t>(n));
      for (uint64_t i = 0; i < n; ++i) {
        err_llama += (static_cast<double>(x[i]) - llama[i]) * (static_cast<double>(x[i]) - llama[i]);
        err_ours += (static_cast<double>(x[i]) - ours[i]) * (static_cast<double>(x[i]) - ours[i]);
      }
      n_values += n;
    }
    const double count = static_cast<double>(n_values);
    std::printf("%-8s %10llu %16.8f %16.8f\n", std::string(ember::dtype_name(dtype)).c_str(),
                static_cast<unsigned long long>(n_values), std::sqrt(err_llama / count), std::sqrt(err_ours / count));
  }
}

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
  print_importance_table(heavy);
  print_witness_table();
  return 0;
}
