// Regenerates the expected digests of QuantizeImportance.ReproducesGgmlWeightedBlocksBitForBit
// (tests/quant/quantize_test.cpp) from real ggml: the same inputs (same generator) quantized by
// ggml's own quantize_<type>(src, dst, nrow, n_per_row, imatrix); prints "TYPE sha256" per type
// after `sha256sum`. Not built by the project (it links a prebuilt ggml); to run it:
//   mkdir -p /tmp/ggmlref/out && cd /tmp/ggmlref && npm install @node-llama-cpp/linux-x64@3.21.1
//   L=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
//   g++ -O2 -std=c++17 <ember>/tests/tools/ggml_weighted_digests.cpp -L$L -lggml-base -Wl,-rpath,$L -o digests
//   ./digests && (cd /tmp/ggmlref/out && sha256sum *)
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
extern "C" {
size_t quantize_q4_0(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q4_1(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q5_0(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q5_1(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q2_K(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q3_K(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q4_K(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q5_K(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_q6_K(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_iq4_nl(const float*, void*, int64_t, int64_t, const float*);
size_t quantize_iq4_xs(const float*, void*, int64_t, int64_t, const float*);
}
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
  float normal() {
    float sum = 0;
    for (int i = 0; i < 12; ++i) sum += uniform();
    return sum - 6.0f;
  }

 private:
  uint64_t state_;
};
std::vector<float> weight_rows(int64_t n, bool heavy_tailed, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = 0.02f * rng.normal() * (heavy_tailed && rng.uniform() < 0.01f ? 8.0f : 1.0f);
  return x;
}
int main() {
  constexpr int64_t kRowLen = 768, kRows = 6;
  std::vector<float> x = weight_rows(kRows * kRowLen, true, 2024);
  for (int64_t j = 0; j < kRowLen; ++j) x[static_cast<size_t>(j)] = 0.0f;
  for (int64_t j = 100; j < 400; ++j) x[static_cast<size_t>(kRowLen + j)] = 0.0f;
  Rng rng(99);
  std::vector<float> importance(kRowLen);
  for (size_t j = 0; j < importance.size(); ++j) {
    const float u = rng.uniform();
    importance[j] = j < 32 || rng.uniform() < 0.1f ? 0.0f : 100.0f * u * u * u * u;
  }
  struct {
    const char* name;
    size_t (*fn)(const float*, void*, int64_t, int64_t, const float*);
  } types[] = {{"Q4_0", quantize_q4_0},     {"Q4_1", quantize_q4_1},    {"Q5_0", quantize_q5_0},
               {"Q5_1", quantize_q5_1},     {"Q2_K", quantize_q2_K},    {"Q3_K", quantize_q3_K},
               {"Q4_K", quantize_q4_K},     {"Q5_K", quantize_q5_K},    {"Q6_K", quantize_q6_K},
               {"IQ4_NL", quantize_iq4_nl}, {"IQ4_XS", quantize_iq4_xs}};
  for (auto& t : types) {
    std::vector<unsigned char> out(kRows * kRowLen * 2);
    const size_t bytes = t.fn(x.data(), out.data(), kRows, kRowLen, importance.data());
    FILE* f = std::fopen((std::string("/tmp/ggmlref/out/") + t.name).c_str(), "wb");
    std::fwrite(out.data(), 1, bytes, f);
    std::fclose(f);
  }
}
