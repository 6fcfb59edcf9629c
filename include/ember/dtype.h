// DType: every GGUF/ggml tensor type, with ids identical to GGUF's, and its block traits.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ember/export.h"

namespace ember {

// Values are the on-disk GGUF ids (ggml_type). Gaps are ids ggml removed (4, 5, 31-33, 36-38);
// reading them is an error, never undefined behaviour.
enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct DTypeTraits {
  DType dtype;
  std::string_view name;  // ggml's name, e.g. "q4_K", "bf16"
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
  bool quantized;         // block-quantized (needs a dequantize step)
};

// Traits of a valid DType. Every enumerator above has an entry.
EMBER_API const DTypeTraits& dtype_traits(DType dtype) noexcept;

inline std::string_view dtype_name(DType dtype) noexcept { return dtype_traits(dtype).name; }

// True when `id` names a type in the enum above.
EMBER_API bool dtype_id_is_known(uint32_t id) noexcept;

// The DType for a GGUF id; throws ember::Error(kUnsupported) naming the id when unknown.
EMBER_API DType dtype_from_id(uint32_t id);

// Case-insensitive lookup by name ("Q4_K", "q8_0", "f16"); nullopt when unknown.
EMBER_API std::optional<DType> dtype_from_name(std::string_view name) noexcept;

// Bytes of `n_elements` elements laid out contiguously; nullopt when n_elements is not a multiple
// of the block size or the byte count would overflow uint64.
EMBER_API std::optional<uint64_t> dtype_bytes_for(DType dtype, uint64_t n_elements) noexcept;

// Byte alignment that data of this type needs for typed loads: the widest scalar in its block
// (f32/i32 and q8_K's f32 scale: 4; f64/i64: 8; i8 and mxfp4: 1; everything else with f16 fields: 2).
EMBER_API uint32_t dtype_alignment(DType dtype) noexcept;

// All known types, in id order (for tests and tables).
EMBER_API const DTypeTraits* dtype_traits_begin() noexcept;
EMBER_API const DTypeTraits* dtype_traits_end() noexcept;

}  // namespace ember
