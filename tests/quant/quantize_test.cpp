// Reference quantizers: re-quantizing llama.cpp's F32 model reproduces its blocks bit for bit
// (deterministic formats), and every quantizer round-trips random data within its error bound.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

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
// value, values below kGroupMaxEps, denormals, huge values and non-finite values. Finite blocks
// reconstruct within the type's error; nothing is undefined behaviour (the sanitizer build runs
// this with float-cast-overflow checks) and results are deterministic.
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
    for (const auto& x : finite) {
      quantize(t.dtype, x.data(), blocks.data(), n);
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
      quantize(t.dtype, x.data(), first.data(), n4);
      quantize(t.dtype, x.data(), second.data(), n4);
      EXPECT_EQ(first, second) << bad;
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

}  // namespace
}  // namespace ember
