// The DType traits table (block size and bytes per block, identical to ggml's).
#include "ember/dtype.h"

#include <array>
#include <cctype>

#include "core/check.h"
#include "core/strings.h"

namespace ember {
namespace {

// Block layouts as ggml defines them; the Quantization issue adds static_asserts on the structs.
constexpr DTypeTraits kTraits[] = {
    {DType::kF32, "f32", 1, 4, false},
    {DType::kF16, "f16", 1, 2, false},
    {DType::kQ4_0, "q4_0", 32, 18, true},    // f16 d + 16 B nibbles
    {DType::kQ4_1, "q4_1", 32, 20, true},    // f16 d, m + 16 B
    {DType::kQ5_0, "q5_0", 32, 22, true},    // f16 d + 4 B high bits + 16 B
    {DType::kQ5_1, "q5_1", 32, 24, true},    // f16 d, m + 4 B + 16 B
    {DType::kQ8_0, "q8_0", 32, 34, true},    // f16 d + 32 int8
    {DType::kQ8_1, "q8_1", 32, 36, true},    // f16 d, s + 32 int8
    {DType::kQ2_K, "q2_K", 256, 84, true},   // 16 B scales + 64 B quants + f16 d, dmin
    {DType::kQ3_K, "q3_K", 256, 110, true},  // 32 B hmask + 64 B + 12 B scales + f16 d
    {DType::kQ4_K, "q4_K", 256, 144, true},  // f16 d, dmin + 12 B scales + 128 B
    {DType::kQ5_K, "q5_K", 256, 176, true},  // f16 d, dmin + 12 B + 32 B high bits + 128 B
    {DType::kQ6_K, "q6_K", 256, 210, true},  // 128 B low + 64 B high + 16 B scales + f16 d
    {DType::kQ8_K, "q8_K", 256, 292, true},  // f32 d + 256 int8 + 16 int16 block sums
    {DType::kIQ2_XXS, "iq2_xxs", 256, 66, true},
    {DType::kIQ2_XS, "iq2_xs", 256, 74, true},
    {DType::kIQ3_XXS, "iq3_xxs", 256, 98, true},
    {DType::kIQ1_S, "iq1_s", 256, 50, true},
    {DType::kIQ4_NL, "iq4_nl", 32, 18, true},
    {DType::kIQ3_S, "iq3_s", 256, 110, true},
    {DType::kIQ2_S, "iq2_s", 256, 82, true},
    {DType::kIQ4_XS, "iq4_xs", 256, 136, true},
    {DType::kI8, "i8", 1, 1, false},
    {DType::kI16, "i16", 1, 2, false},
    {DType::kI32, "i32", 1, 4, false},
    {DType::kI64, "i64", 1, 8, false},
    {DType::kF64, "f64", 1, 8, false},
    {DType::kIQ1_M, "iq1_m", 256, 56, true},
    {DType::kBF16, "bf16", 1, 2, false},
    {DType::kTQ1_0, "tq1_0", 256, 54, true},
    {DType::kTQ2_0, "tq2_0", 256, 66, true},
    {DType::kMXFP4, "mxfp4", 32, 17, true},  // e8m0 scale + 16 B fp4 nibbles
};

constexpr uint32_t kMaxId = 39;

// id -> index into kTraits, or -1 for ids ggml never assigned or removed.
constexpr std::array<int8_t, kMaxId + 1> make_index() {
  std::array<int8_t, kMaxId + 1> index{};
  for (auto& v : index) v = -1;
  for (size_t i = 0; i < std::size(kTraits); ++i)
    index[static_cast<uint32_t>(kTraits[i].dtype)] = static_cast<int8_t>(i);
  return index;
}
constexpr auto kIndex = make_index();

}  // namespace

bool dtype_id_is_known(uint32_t id) noexcept { return id <= kMaxId && kIndex[id] >= 0; }

const DTypeTraits& dtype_traits(DType dtype) noexcept {
  const uint32_t id = static_cast<uint32_t>(dtype);
  EMBER_CHECK_MSG(dtype_id_is_known(id), "DType holds an id that is not in the traits table");
  return kTraits[kIndex[id]];
}

DType dtype_from_id(uint32_t id) {
  if (!dtype_id_is_known(id)) fail(ErrorCode::kUnsupported, "unknown tensor type id {}", id);
  return static_cast<DType>(id);
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& t : kTraits) {
    if (iequals(t.name, name)) return t.dtype;
  }
  return std::nullopt;
}

std::optional<uint64_t> dtype_bytes_for(DType dtype, uint64_t n_elements) noexcept {
  const DTypeTraits& t = dtype_traits(dtype);
  if (n_elements % t.block_size != 0) return std::nullopt;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n_elements / t.block_size, uint64_t{t.block_bytes}, &bytes)) return std::nullopt;
  return bytes;
}

uint32_t dtype_alignment(DType dtype) noexcept {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
    case DType::kQ8_K: return 4;
    case DType::kF64:
    case DType::kI64: return 8;
    case DType::kI8:
    case DType::kMXFP4: return 1;
    default: return 2;
  }
}

const DTypeTraits* dtype_traits_begin() noexcept { return std::begin(kTraits); }
const DTypeTraits* dtype_traits_end() noexcept { return std::end(kTraits); }

}  // namespace ember
