// The kQuantTraits table and f16/bf16 conversions: layouts agree with DType, conversions are exact
// (f16 round trips for all 65,536 values; rounding checked against the CPU's F16C instructions).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "core/cpu_features.h"
#include "ember/error.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"
#include "quant/fp16.h"
#include "quant/quant_traits.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ember {
namespace {

TEST(QuantTraits, TableCoversTheIssueTypesOnce) {
  std::set<DType> seen;
  for (const QuantTraits& t : quant_traits_table()) {
    EXPECT_TRUE(seen.insert(t.dtype).second) << dtype_name(t.dtype);
    EXPECT_NE(t.to_float, nullptr) << dtype_name(t.dtype);
    EXPECT_EQ(find_quant_traits(t.dtype), &t);
  }
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                  DType::kQ8_0, DType::kQ8_1, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K,
                  DType::kQ8_K, DType::kIQ4_NL, DType::kIQ4_XS}) {
    EXPECT_TRUE(seen.count(d)) << dtype_name(d);
  }
  EXPECT_EQ(find_quant_traits(DType::kIQ2_XXS), nullptr);
}

TEST(QuantTraits, BlockStructsMatchDTypeTraits) {
  const std::pair<DType, size_t> sizes[] = {
      {DType::kQ4_0, sizeof(BlockQ4_0)},     {DType::kQ4_1, sizeof(BlockQ4_1)},    {DType::kQ5_0, sizeof(BlockQ5_0)},
      {DType::kQ5_1, sizeof(BlockQ5_1)},     {DType::kQ8_0, sizeof(BlockQ8_0)},    {DType::kQ8_1, sizeof(BlockQ8_1)},
      {DType::kQ2_K, sizeof(BlockQ2_K)},     {DType::kQ3_K, sizeof(BlockQ3_K)},    {DType::kQ4_K, sizeof(BlockQ4_K)},
      {DType::kQ5_K, sizeof(BlockQ5_K)},     {DType::kQ6_K, sizeof(BlockQ6_K)},    {DType::kQ8_K, sizeof(BlockQ8_K)},
      {DType::kIQ4_NL, sizeof(BlockIQ4_NL)}, {DType::kIQ4_XS, sizeof(BlockIQ4_XS)}};
  for (const auto& [dtype, size] : sizes) EXPECT_EQ(dtype_traits(dtype).block_bytes, size) << dtype_name(dtype);
}

TEST(QuantTraits, DequantizeChecksItsArguments) {
  std::vector<std::byte> blocks(64);
  std::vector<float> out(64);
  EXPECT_THROW(dequantize(DType::kIQ2_XXS, blocks.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize(DType::kQ4_0, blocks.data(), out.data(), 33), Error);
  EXPECT_NO_THROW(dequantize(DType::kQ4_0, blocks.data(), out.data(), 64));
}

TEST(Fp16, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
  }
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);               // rounds up to infinity
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // halfway to the smallest subnormal: even
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hardware_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
#endif

TEST(Fp16, RoundingMatchesF16CHardware) {
#if defined(__x86_64__)
  if (!cpu_features().f16c) GTEST_SKIP() << "this CPU has no F16C to compare with";
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    // Random bit patterns cover normals, subnormals, overflow and the rounding ties.
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), hardware_fp16(f)) << std::hexfloat << f;
  }
#else
  GTEST_SKIP() << "F16C comparison is x86-only";
#endif
}

TEST(Bf16, ConversionsRoundToNearestEven) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), b);
    }
  }
}

}  // namespace
}  // namespace ember
