// Reference quantizers: re-quantizing llama.cpp's F32 model reproduces its blocks bit for bit
// (deterministic formats), every quantizer round-trips random data within its error bound, and the
// importance-weighted paths reproduce ggml's weighted blocks and lower the importance-weighted error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>

#include "ember/error.h"
#include "gguf/gguf_reader.h"
#include "quant/quant_traits.h"
#include "support/sha256.h"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

// Quantizes every 2-D tensor of tiny-llama-f32.gguf and compares the raw bytes with the tensors
// llama-quantize wrote (no importance matrix: ggml's reference round-to-nearest path).
TEST(Quantize, ReproducesLlamaCppBlocksBitForBit) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const GgufFile source = GgufFile::open((data / "quant/tiny-llama-f32.gguf").string());
  const std::pair<const char*, DType> types[] = {
      {"F16", DType::kF16},       {"BF16", DType::kBF16},    {"Q8_0", DType::kQ8_0},   {"Q4_0", DType::kQ4_0},
      {"Q4_1", DType::kQ4_1},     {"Q5_0", DType::kQ5_0},    {"Q5_1", DType::kQ5_1},   {"Q4_K_S", DType::kQ4_K},
      {"Q2_K", DType::kQ2_K},     {"Q3_K_S", DType::kQ3_K},  {"Q5_K_S", DType::kQ5_K}, {"Q6_K", DType::kQ6_K},
      {"IQ4_NL", DType::kIQ4_NL}, {"IQ4_XS", DType::kIQ4_XS}};
  for (const auto& [name, dtype] : types) {
    SCOPED_TRACE(name);
    std::ifstream in(data / fmt::format("quant/tiny-llama-pure-{}.gguf.expected.json", name));
    const auto expected = nlohmann::json::parse(in);
    std::map<std::string, std::string> raw_sha;
    for (const auto& t : expected["tensors"]) raw_sha[t["name"].get<std::string>()] = t["raw_sha256"];
    int compared = 0;
    for (const GgufTensorInfo& t : source.tensors()) {
      if (t.n_dims != 2) continue;  // norms stay F32
      ASSERT_EQ(t.dtype, DType::kF32);
      std::vector<std::byte> blocks(*dtype_bytes_for(dtype, t.n_elements));
      quantize(dtype, source.tensor_view(t).data_as<float>(), blocks.data(), static_cast<int64_t>(t.n_elements));
      EXPECT_EQ(test::sha256_hex(blocks), raw_sha.at(std::string(t.name))) << t.name;
      ++compared;
    }
    EXPECT_EQ(compared, 2 + 2 * 7);  // token_embd, output + 7 matrices in each of 2 layers
  }
}

// Normal data with a heavy tail (1% of values x8), like the witness model's weights.
std::vector<float> heavy_tailed(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng) * (u(rng) < 0.01f ? 8.0f : 1.0f);
  return x;
}

TEST(Quantize, RoundTripErrorIsBoundedForEveryQuantizer) {
  // Relative RMSE bounds: 1.25x what these quantizers measured on this data (largest size; q2_K
  // 0.334, q3_K 0.190, q4_0 0.134, q4_1 0.095, q4_K 0.090, q5_0 0.067, q5_1 0.046, q5_K 0.045,
  // q6_K 0.026, q8_K 0.019, q8_0 0.0085, iq4_nl 0.104, iq4_xs 0.107).
  const std::map<DType, double> bound = {{DType::kF32, 0.0},        {DType::kF16, 3e-4},      {DType::kBF16, 2.2e-3},
                                         {DType::kQ8_0, 1.1e-2},    {DType::kQ8_1, 1.1e-2},   {DType::kQ8_K, 2.4e-2},
                                         {DType::kQ5_0, 8.5e-2},    {DType::kQ5_1, 6e-2},     {DType::kQ4_0, 1.7e-1},
                                         {DType::kQ4_1, 1.2e-1},    {DType::kQ2_K, 4.2e-1},   {DType::kQ3_K, 2.4e-1},
                                         {DType::kQ4_K, 1.12e-1},   {DType::kQ5_K, 5.7e-2},   {DType::kQ6_K, 3.2e-2},
                                         {DType::kIQ4_NL, 1.31e-1}, {DType::kIQ4_XS, 1.34e-1}};
  int tested = 0;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    ASSERT_TRUE(bound.count(t.dtype)) << "new quantizer: add its bound here";
    const int64_t block = dtype_traits(t.dtype).block_size;
    for (int64_t n_blocks : {int64_t{1}, int64_t{3}, int64_t{4099}}) {
      const int64_t n = n_blocks * block;
      const std::vector<float> x = heavy_tailed(static_cast<size_t>(n), static_cast<unsigned>(n));
      std::vector<std::byte> blocks(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(n)));
      std::vector<float> y(static_cast<size_t>(n));
      quantize(t.dtype, x.data(), blocks.data(), n);
      dequantize(t.dtype, blocks.data(), y.data(), n);
      double err = 0, ref = 0;
      for (int64_t i = 0; i < n; ++i) {
        err += (x[i] - y[i]) * (x[i] - y[i]);
        ref += x[i] * x[i];
      }
      EXPECT_LE(std::sqrt(err / ref), bound.at(t.dtype)) << n << " elements";
    }
    // All-zero blocks quantize to exact zeros (the scale is 0, no division by it).
    std::vector<float> zeros(static_cast<size_t>(block), 0.0f), out(static_cast<size_t>(block), 1.0f);
    std::vector<std::byte> blocks(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(block)));
    quantize(t.dtype, zeros.data(), blocks.data(), block);
    dequantize(t.dtype, blocks.data(), out.data(), block);
    for (float v : out) EXPECT_EQ(v, 0.0f);
    ++tested;
  }
  EXPECT_GE(tested, 10);
}

// Blocks at the edges of the scale searches: constant (positive or negative), a single non-zero
// value, values below kGroupMaxEps, denormals, huge values and non-finite values, without and with
// importance. Finite blocks reconstruct within the type's error; nothing is undefined behaviour
// (the sanitizer build runs this with float-cast-overflow checks) and results are deterministic.
TEST(Quantize, EdgeCaseBlocksAreHandled) {
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    const int64_t n = dtype_traits(t.dtype).block_size;
    const std::vector<std::vector<float>> finite = {
        std::vector<float>(static_cast<size_t>(n), 0.75f), std::vector<float>(static_cast<size_t>(n), -0.75f),
        [&] {
          std::vector<float> v(static_cast<size_t>(n), 0.0f);
          v[static_cast<size_t>(n) / 3] = -2.0f;
          return v;
        }(),
        std::vector<float>(static_cast<size_t>(n), 1e-39f),  // denormal: 1/scale overflows
        std::vector<float>(static_cast<size_t>(n), 1e-20f)};
    std::vector<std::byte> blocks(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(n)));
    std::vector<float> y(static_cast<size_t>(n));
    // Each case also with importance (all 1, and one column 1000x): the weighted paths too.
    const std::vector<float> equal(static_cast<size_t>(4 * n), 1.0f);
    std::vector<float> skewed = equal;
    skewed[0] = 1000.0f;
    for (const float* importance : {static_cast<const float*>(nullptr), equal.data(), std::as_const(skewed).data()}) {
      for (const auto& x : finite) {
        quantize_rows(t.dtype, x.data(), blocks.data(), 1, n, importance);
        dequantize(t.dtype, blocks.data(), y.data(), n);
        float amax = 0;
        for (float v : x) amax = std::max(amax, std::fabs(v));
        // Blocks below the f16 range of the scales (1e-20, denormals) may flush to zero, never blow up.
        const double tolerance = amax < 1e-6f ? amax : 0.35 * amax;
        for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], tolerance) << "element " << i << " of " << x[0];
      }
      // Non-finite and extreme inputs: defined results, the same on every call.
      const int64_t n4 = 4 * n;  // at least 4 elements, also for the 1-element "blocks" of f16/bf16/f32
      for (const float bad : {NAN, INFINITY, -INFINITY, 3e38f}) {
        std::vector<float> x(static_cast<size_t>(n4), 0.5f);
        x.at(1) = bad;
        x.at(2) = -3e38f;
        std::vector<std::byte> first(*dtype_bytes_for(t.dtype, static_cast<uint64_t>(n4))), second(first.size());
        quantize_rows(t.dtype, x.data(), first.data(), 1, n4, importance);
        quantize_rows(t.dtype, x.data(), second.data(), 1, n4, importance);
        EXPECT_EQ(first, second) << bad;
      }
    }
  }
}

TEST(Quantize, EmptyInputIsANoOp) {
  for (const QuantTraits& t : quant_traits_table()) {
    std::vector<float> none;
    std::vector<std::byte> no_blocks;
    if (t.from_float != nullptr) quantize(t.dtype, none.data(), no_blocks.data(), 0);
    dequantize(t.dtype, no_blocks.data(), none.data(), 0);
  }
}

TEST(Quantize, UnsupportedTypesAndPartialBlocksAreErrors) {
  std::vector<float> x(256, 1.0f);
  std::vector<std::byte> out(1024);
  EXPECT_THROW(quantize(DType::kIQ2_XXS, x.data(), out.data(), 256), Error);  // no kernels for this type
  EXPECT_THROW(quantize(DType::kQ4_0, x.data(), out.data(), 31), Error);
}

// ---------------------------------------------------------------------------------------------
// Importance weights (quantize_rows with an imatrix row)

// A portable generator (splitmix64; normals as a sum of 12 uniforms), so that the inputs of the
// ggml digests below are the same with every standard library (tests/tools/ggml_weighted_digests.cpp
// regenerates the digests from real ggml).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }  // [0, 1)
  float normal() {
    float sum = 0;
    for (int i = 0; i < 12; ++i) sum += uniform();
    return sum - 6.0f;
  }

 private:
  uint64_t state_;
};

// Weight-like rows: N(0, 0.02), with 1% of the values x8 when heavy_tailed.
std::vector<float> weight_rows(int64_t n, bool heavy_tailed, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = 0.02f * rng.normal() * (heavy_tailed && rng.uniform() < 0.01f ? 8.0f : 1.0f);
  return x;
}

// The types whose quantizer has an importance-weighted path; the others ignore importance.
bool has_weighted_path(DType dtype) {
  switch (dtype) {
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS: return true;
    default: return false;
  }
}

// Quantizes rows x rows of row_len with `importance` (or none) and dequantizes the result.
std::vector<float> round_trip_rows(DType dtype, const std::vector<float>& x, int64_t row_len, const float* importance) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<std::byte> blocks(*dtype_bytes_for(dtype, static_cast<uint64_t>(n)));
  std::vector<float> y(x.size());
  quantize_rows(dtype, x.data(), blocks.data(), n / row_len, row_len, importance);
  dequantize(dtype, blocks.data(), y.data(), n);
  return y;
}

// Σ importance[column] · (x - y)² over all rows.
double weighted_squared_error(const std::vector<float>& x, const std::vector<float>& y,
                              const std::vector<float>& importance) {
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double diff = static_cast<double>(x[i]) - y[i];
    err += importance[i % importance.size()] * diff * diff;
  }
  return err;
}

TEST(QuantizeImportance, EveryWeightedTypeIsInTheTable) {
  int weighted = 0;
  for (const QuantTraits& t : quant_traits_table()) weighted += t.from_float != nullptr && has_weighted_path(t.dtype);
  EXPECT_EQ(weighted, 11);  // Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS
}

// With a few columns weighted 100x, the weighted quantizer's importance-weighted squared error is
// clearly below the unweighted quantizer's, for every data kind and seed (32 rows of 1024 each, so
// the comparison is over 32K values and cannot flip by chance; measured ratios 0.30 ... 0.77).
TEST(QuantizeImportance, SkewedImportanceLowersTheWeightedError) {
  constexpr int64_t kRowLen = 1024, kRows = 32;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr || !has_weighted_path(t.dtype)) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    for (const bool heavy : {false, true}) {
      for (const uint64_t seed : {1u, 2u, 3u}) {
        const std::vector<float> x = weight_rows(kRows * kRowLen, heavy, seed);
        Rng rng(100 + seed);
        std::vector<float> importance(kRowLen);
        for (float& w : importance) w = rng.uniform() < 0.04f ? 100.0f : 1.0f;
        const double unweighted = weighted_squared_error(x, round_trip_rows(t.dtype, x, kRowLen, nullptr), importance);
        const double weighted =
            weighted_squared_error(x, round_trip_rows(t.dtype, x, kRowLen, importance.data()), importance);
        EXPECT_LT(weighted, 0.9 * unweighted) << (heavy ? "heavy-tailed" : "normal") << " seed " << seed;
      }
    }
  }
}

// All-equal importance carries no information: the weighted path then reaches the unweighted
// path's plain RMSE (within 3%; measured 0.88 ... 0.995 of it, the weighted searches being more
// thorough).
TEST(QuantizeImportance, EqualImportanceKeepsUnweightedQuality) {
  constexpr int64_t kRowLen = 1024, kRows = 32;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr || !has_weighted_path(t.dtype)) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    for (const bool heavy : {false, true}) {
      const std::vector<float> x = weight_rows(kRows * kRowLen, heavy, 7);
      const std::vector<float> ones(kRowLen, 1.0f);
      const double unweighted = weighted_squared_error(x, round_trip_rows(t.dtype, x, kRowLen, nullptr), ones);
      const double weighted = weighted_squared_error(x, round_trip_rows(t.dtype, x, kRowLen, ones.data()), ones);
      EXPECT_LT(std::sqrt(weighted / unweighted), 1.03) << (heavy ? "heavy-tailed" : "normal");
    }
  }
}

// The inputs of the ggml check: 6 heavy-tailed rows of 768 (the first all zero, the second with a
// run of 300 zeros), importance skewed over four decades with 10% zero columns and a zero block.
struct GgmlCheckInput {
  static constexpr int64_t kRowLen = 768, kRows = 6;
  std::vector<float> x = weight_rows(kRows * kRowLen, true, 2024);
  std::vector<float> importance = std::vector<float>(kRowLen);
  GgmlCheckInput() {
    for (int64_t j = 0; j < kRowLen; ++j) x[static_cast<size_t>(j)] = 0.0f;
    for (int64_t j = 100; j < 400; ++j) x[static_cast<size_t>(kRowLen + j)] = 0.0f;
    Rng rng(99);
    for (size_t j = 0; j < importance.size(); ++j) {
      const float u = rng.uniform();
      importance[j] = j < 32 || rng.uniform() < 0.1f ? 0.0f : 100.0f * u * u * u * u;
    }
  }
};

// ggml's weighted quantizers (quantize_q4_0(src, dst, nrow, n_per_row, imatrix) etc. in the
// prebuilt libggml-base.so of the npm package @node-llama-cpp/linux-x64 3.21.1, a recent llama.cpp,
// called on GgmlCheckInput) wrote exactly these bytes.
// A one-off harness also compared every block on 8 more data/importance mixes (log-normal, 100x
// columns, zero columns, zero super-blocks; 600 rows each): all identical.
TEST(QuantizeImportance, ReproducesGgmlWeightedBlocksBitForBit) {
  const std::map<DType, std::string> ggml_sha256 = {
      {DType::kQ4_0, "db7004407005301612245b6aba0a89c4474a969146fc4f18632133ac85b8e2a1"},
      {DType::kQ4_1, "7531033aab3b58450a61e754deecfd48d52cf9c7842fc385a4bd82a66fc76333"},
      {DType::kQ5_0, "7c92a913090ee07c63d762b60821bcbe422ae7b6d669deb5ac5da055d061bac9"},
      {DType::kQ5_1, "8b7b4b80604024761fcce971dd60e14584f2a69a627bf8b015ba89d905e9f369"},
      {DType::kQ2_K, "d7d701e6307a5c29a09e476f4916f21050d07539886c61be74abfb8098401aa0"},
      {DType::kQ3_K, "e7d1faccf99be3891dee79924fe87e603e73ff17ea3ac2558ac33854cc252a19"},
      {DType::kQ4_K, "33e089c51217ad8e44cf8aa9b48c1cdfb1c000418664e28d1aa15d27f680fe17"},
      {DType::kQ5_K, "4741a19d83e8385bc7649b2ad43f61e2e7d5d8aa75cdf94a240978be7105f157"},
      {DType::kQ6_K, "1659243a65f853168116b080f1d81f80d92effb35798f814f6ed064e9575e444"},
      {DType::kIQ4_NL, "6b401d318b6a7eb62bf2e492fb45c1159d589770e278b82c77d1836cdb3c1bc2"},
      {DType::kIQ4_XS, "4262da64bd6494675d797d26ea931b0cf6bb87ce3f57b63c87655ee914c2e3a3"}};
  const GgmlCheckInput input;
  int compared = 0;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr || !has_weighted_path(t.dtype)) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    std::vector<std::byte> blocks(*dtype_bytes_for(t.dtype, input.x.size()));
    quantize_rows(t.dtype, input.x.data(), blocks.data(), input.kRows, input.kRowLen, input.importance.data());
    EXPECT_EQ(test::sha256_hex(blocks), ggml_sha256.at(t.dtype));
    // The same input without importance takes another path: the digest is not that of any input.
    quantize_rows(t.dtype, input.x.data(), blocks.data(), input.kRows, input.kRowLen, nullptr);
    EXPECT_NE(test::sha256_hex(blocks), ggml_sha256.at(t.dtype));
    ++compared;
  }
  EXPECT_EQ(compared, 11);
}

// Columns with zero importance, a block and a whole importance vector of zeros, and all-zero rows:
// every result is finite, zero rows stay exactly zero, and the columns that carry weight are still
// quantized well.
TEST(QuantizeImportance, ZeroImportanceAndZeroRowsGiveFiniteResults) {
  constexpr int64_t kRowLen = 512, kRows = 4;
  std::vector<float> x = weight_rows(kRows * kRowLen, true, 11);
  std::fill(x.begin() + 2 * kRowLen, x.begin() + 3 * kRowLen, 0.0f);  // row 2 is all zero
  const std::vector<float> sparse = [] {
    std::vector<float> v(kRowLen, 0.0f);  // the first 256 columns and every third one after: 0
    for (int64_t j = 256; j < kRowLen; ++j) v[static_cast<size_t>(j)] = j % 3 == 0 ? 0.0f : 1.0f + j % 5;
    return v;
  }();
  const std::vector<float> none(kRowLen, 0.0f);
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    for (const std::vector<float>* importance : {&sparse, &none}) {
      const std::vector<float> y = round_trip_rows(t.dtype, x, kRowLen, importance->data());
      double err = 0, ref = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << "element " << i;
        if (i / kRowLen == 2) {
          EXPECT_EQ(y[i], 0.0f) << "element " << i << " of the zero row";
        }
        const double w = (*importance)[i % kRowLen];
        err += w * (x[i] - y[i]) * (x[i] - y[i]);
        ref += w * x[i] * x[i];
      }
      if (importance == &sparse) {
        EXPECT_LT(std::sqrt(err / ref), 0.5);
      }
    }
  }
}

TEST(QuantizeRows, WithoutImportanceEqualsQuantize) {
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    const int64_t row_len = 512;  // whole blocks of every type
    const std::vector<float> x = weight_rows(3 * row_len, true, 5);
    std::vector<std::byte> whole(*dtype_bytes_for(t.dtype, x.size())), rows(whole.size());
    quantize(t.dtype, x.data(), whole.data(), static_cast<int64_t>(x.size()));
    quantize_rows(t.dtype, x.data(), rows.data(), 3, row_len);
    EXPECT_EQ(whole, rows);
  }
}

// F32/F16/BF16 and Q8_0/Q8_1/Q8_K have no weighted path in ggml: importance changes nothing.
TEST(QuantizeRows, TypesWithoutAWeightedPathIgnoreImportance) {
  int ignored = 0;
  for (const QuantTraits& t : quant_traits_table()) {
    if (t.from_float == nullptr || has_weighted_path(t.dtype)) continue;
    SCOPED_TRACE(std::string(dtype_name(t.dtype)));
    const int64_t row_len = 256;
    const std::vector<float> x = weight_rows(2 * row_len, false, 6);
    std::vector<float> importance(row_len, 1.0f);
    importance[3] = 100.0f;
    std::vector<std::byte> plain(*dtype_bytes_for(t.dtype, x.size())), weighted(plain.size());
    quantize_rows(t.dtype, x.data(), plain.data(), 2, row_len);
    quantize_rows(t.dtype, x.data(), weighted.data(), 2, row_len, importance.data());
    EXPECT_EQ(plain, weighted);
    ++ignored;
  }
  EXPECT_EQ(ignored, 6);
}

// Each row is quantized on its own: rows of one call equal single-row calls (the weighted paths'
// statistics are per row).
TEST(QuantizeRows, RowsAreQuantizedIndependently) {
  const int64_t row_len = 768;
  const std::vector<float> x = weight_rows(3 * row_len, true, 8);
  std::vector<float> importance(row_len);
  Rng rng(8);
  for (float& w : importance) w = rng.uniform() * 10.0f;
  for (const DType dtype : {DType::kQ4_0, DType::kQ5_1, DType::kQ3_K, DType::kIQ4_XS}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const uint64_t row_bytes = *dtype_bytes_for(dtype, row_len);
    std::vector<std::byte> together(3 * row_bytes), alone(row_bytes);
    quantize_rows(dtype, x.data(), together.data(), 3, row_len, importance.data());
    for (int64_t r = 0; r < 3; ++r) {
      quantize_rows(dtype, x.data() + r * row_len, alone.data(), 1, row_len, importance.data());
      EXPECT_EQ(std::memcmp(alone.data(), together.data() + r * row_bytes, row_bytes), 0) << "row " << r;
    }
  }
}

ErrorCode quantize_rows_error(DType dtype, int64_t n_rows, int64_t row_len, const float* importance) {
  std::vector<float> x(1024, 0.5f);
  std::vector<std::byte> out(4096);
  try {
    quantize_rows(dtype, x.data(), out.data(), n_rows, row_len, importance);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::kIo;
}

TEST(QuantizeRows, InvalidArgumentsAreErrors) {
  std::vector<float> importance(256, 1.0f);
  EXPECT_EQ(quantize_rows_error(DType::kIQ2_XXS, 1, 256, nullptr), ErrorCode::kUnsupported);  // no quantizer
  EXPECT_EQ(quantize_rows_error(DType::kIQ2_XXS, 1, 256, importance.data()), ErrorCode::kUnsupported);
  EXPECT_EQ(quantize_rows_error(DType::kQ4_K, 1, 128, importance.data()), ErrorCode::kInvalidArgument);
  EXPECT_EQ(quantize_rows_error(DType::kQ4_0, 1, 100, nullptr), ErrorCode::kInvalidArgument);
  EXPECT_EQ(quantize_rows_error(DType::kQ4_0, -1, 256, nullptr), ErrorCode::kInvalidArgument);
  EXPECT_EQ(quantize_rows_error(DType::kQ4_0, 1, -32, nullptr), ErrorCode::kInvalidArgument);
  for (const float bad : {-1.0f, -0.0001f, NAN, INFINITY}) {
    for (const DType dtype : {DType::kQ4_K, DType::kQ8_0}) {  // checked also where importance is ignored
      std::vector<float> invalid = importance;
      invalid[200] = bad;
      EXPECT_EQ(quantize_rows_error(dtype, 2, 256, invalid.data()), ErrorCode::kInvalidArgument) << bad;
    }
  }
  // -0.0 and 0 are valid weights.
  importance[7] = -0.0f;
  std::vector<float> x(256, 0.5f);
  std::vector<std::byte> out(256);
  EXPECT_NO_THROW(quantize_rows(DType::kQ4_K, x.data(), out.data(), 1, 256, importance.data()));
  EXPECT_NO_THROW(quantize_rows(DType::kQ4_K, x.data(), out.data(), 0, 256, importance.data()));
}

}  // namespace
}  // namespace ember
