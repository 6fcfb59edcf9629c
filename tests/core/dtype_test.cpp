// DType ids, traits and lookups; block sizes cross-checked against the block layouts they encode.
#include <gtest/gtest.h>

#include <set>

#include "ember/dtype.h"
#include "ember/error.h"

namespace ember {
namespace {

TEST(DType, TableIsConsistent) {
  std::set<uint32_t> ids;
  std::set<std::string_view> names;
  for (const DTypeTraits* t = dtype_traits_begin(); t != dtype_traits_end(); ++t) {
    EXPECT_TRUE(ids.insert(static_cast<uint32_t>(t->dtype)).second) << t->name;
    EXPECT_TRUE(names.insert(t->name).second) << t->name;
    EXPECT_EQ(&dtype_traits(t->dtype), t);
    EXPECT_GE(t->block_size, 1u);
    EXPECT_GE(t->block_bytes, 1u);
    EXPECT_EQ(t->quantized, t->block_size > 1) << t->name;
  }
  EXPECT_EQ(ids.size(), 32u);
}

// Bytes per block derived from each format's field layout (ggml's block structs), independent of
// the table's literal numbers.
TEST(DType, BlockBytesMatchLayouts) {
  constexpr uint32_t kHalf = 2, kQK = 32, kQKK = 256, kScalesK = 12;
  const std::pair<DType, uint32_t> expected[] = {
      {DType::kQ4_0, kHalf + kQK / 2},
      {DType::kQ4_1, 2 * kHalf + kQK / 2},
      {DType::kQ5_0, kHalf + 4 + kQK / 2},
      {DType::kQ5_1, 2 * kHalf + 4 + kQK / 2},
      {DType::kQ8_0, kHalf + kQK},
      {DType::kQ8_1, 2 * kHalf + kQK},
      {DType::kQ2_K, kQKK / 16 + kQKK / 4 + 2 * kHalf},
      {DType::kQ3_K, kQKK / 8 + kQKK / 4 + 12 + kHalf},
      {DType::kQ4_K, 2 * kHalf + kScalesK + kQKK / 2},
      {DType::kQ5_K, 2 * kHalf + kScalesK + kQKK / 8 + kQKK / 2},
      {DType::kQ6_K, kQKK / 2 + kQKK / 4 + kQKK / 16 + kHalf},
      {DType::kQ8_K, 4 + kQKK + kQKK / 16 * 2},
      {DType::kIQ2_XXS, kHalf + kQKK / 8 * 2},
      {DType::kIQ2_XS, kHalf + kQKK / 8 * 2 + kQKK / 32},
      {DType::kIQ3_XXS, kHalf + 3 * kQKK / 8},
      {DType::kIQ1_S, kHalf + kQKK / 8 + kQKK / 32 * 2},
      {DType::kIQ4_NL, kHalf + kQK / 2},
      {DType::kIQ3_S, kHalf + kQKK / 4 + kQKK / 32 + kQKK / 8 + kQKK / 64},
      {DType::kIQ2_S, kHalf + kQKK / 4 + kQKK / 32 + kQKK / 32},
      {DType::kIQ4_XS, kHalf + 2 + kQKK / 64 + kQKK / 2},
      {DType::kIQ1_M, kQKK / 8 + kQKK / 16 + kQKK / 32},
      {DType::kTQ1_0, (kQKK - 4 * kQKK / 64) / 5 + kQKK / 64 + kHalf},
      {DType::kTQ2_0, kQKK / 4 + kHalf},
      {DType::kMXFP4, 1 + kQK / 2},
      {DType::kF32, 4},
      {DType::kF16, 2},
      {DType::kBF16, 2},
      {DType::kF64, 8},
      {DType::kI8, 1},
      {DType::kI16, 2},
      {DType::kI32, 4},
      {DType::kI64, 8},
  };
  for (const auto& [dtype, bytes] : expected) EXPECT_EQ(dtype_traits(dtype).block_bytes, bytes) << dtype_name(dtype);
}

TEST(DType, AlignmentDividesBlocksAndMatchesWidestField) {
  for (const DTypeTraits* t = dtype_traits_begin(); t != dtype_traits_end(); ++t) {
    const uint32_t a = dtype_alignment(t->dtype);
    EXPECT_TRUE(a == 1 || a == 2 || a == 4 || a == 8) << t->name;
    EXPECT_EQ(t->block_bytes % a, 0u) << t->name;  // consecutive blocks stay aligned
  }
  EXPECT_EQ(dtype_alignment(DType::kF32), 4u);
  EXPECT_EQ(dtype_alignment(DType::kF64), 8u);
  EXPECT_EQ(dtype_alignment(DType::kQ8_K), 4u);  // f32 scale
  EXPECT_EQ(dtype_alignment(DType::kQ4_K), 2u);  // f16 scales
  EXPECT_EQ(dtype_alignment(DType::kI8), 1u);
}

TEST(DType, FromIdAcceptsKnownAndRejectsUnknown) {
  int known = 0;
  for (uint32_t id = 0; id < 300; ++id) {
    if (dtype_id_is_known(id)) {
      ++known;
      EXPECT_EQ(static_cast<uint32_t>(dtype_from_id(id)), id);
    } else {
      try {
        dtype_from_id(id);
        ADD_FAILURE() << "id " << id << " accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
        EXPECT_NE(std::string(e.what()).find(std::to_string(id)), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_EQ(known, 32);
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 0xFFFFFFFFu}) EXPECT_FALSE(dtype_id_is_known(removed));
}

TEST(DType, NamesAreGgmlsAndLookupIsCaseInsensitive) {
  EXPECT_EQ(dtype_name(DType::kQ4_K), "q4_K");
  EXPECT_EQ(dtype_name(DType::kBF16), "bf16");
  EXPECT_EQ(dtype_name(DType::kIQ4_XS), "iq4_xs");
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::kQ4_K);
  EXPECT_EQ(dtype_from_name("q8_0"), DType::kQ8_0);
  EXPECT_EQ(dtype_from_name("F16"), DType::kF16);
  EXPECT_EQ(dtype_from_name("q4_k_m"), std::nullopt);
  EXPECT_EQ(dtype_from_name(""), std::nullopt);
}

TEST(DType, BytesForChecksBlocksAndOverflow) {
  EXPECT_EQ(dtype_bytes_for(DType::kQ4_0, 64), 36u);
  EXPECT_EQ(dtype_bytes_for(DType::kQ4_K, 512), 288u);
  EXPECT_EQ(dtype_bytes_for(DType::kF32, 7), 28u);
  EXPECT_EQ(dtype_bytes_for(DType::kQ4_0, 33), std::nullopt);
  EXPECT_EQ(dtype_bytes_for(DType::kF64, uint64_t{1} << 62), std::nullopt);
  EXPECT_EQ(dtype_bytes_for(DType::kF32, 0), 0u);
}

}  // namespace
}  // namespace ember
