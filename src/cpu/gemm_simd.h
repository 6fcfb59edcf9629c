// Helpers shared by the GEMM's ISA translation units (gemm_avx2.cpp, gemm_avx512.cpp,
// gemm_float_avx512.cpp) and its scalar reference (gemm.cpp): internal linkage only (see
// isa_kernel.h), baseline x86-64 instructions only (SSE prefetch), so every unit may include it.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/gemm_isa.h"

namespace ember {
namespace {

// Four bytes as one int32 (a broadcast operand), without an aliasing or alignment assumption.
inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The mask of the first n of 16 lanes (n clamped to 0..16): partial groups of 16 weight rows.
inline __mmask16 lanes_below_16(int64_t n) {
  if (n <= 0) return 0;
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// 1/d, or 0 for a block that quantizes to zeros: d = 0, or d so small (amax below ~127·2^-126)
// that 1/d overflows to inf. The scalar reference and every SIMD quantizer use this rule.
inline float inverse_scale(float d) {
  if (d == 0.0f) return 0.0f;
  const float inv = 1.0f / d;
  return inv <= 3.40282347e+38f ? inv : 0.0f;
}

// Prefetches into L2 the share of row tile t (of n_tiles) of the next call's panel slice, so the
// slice streams in while this call computes instead of stalling the next one.
inline void prefetch_next_slice(const GemmTile& tile, int64_t t, int64_t n_tiles) {
  if (tile.next_panel == nullptr) return;
  const int64_t lines = tile.next_bytes / 64;
  const int64_t per_tile = (lines + n_tiles - 1) / n_tiles;
  const int64_t end = (t + 1) * per_tile < lines ? (t + 1) * per_tile : lines;
  for (int64_t g = 0; g < tile.next_groups; ++g) {
    const uint8_t* base = tile.next_panel + g * tile.group_stride;
    for (int64_t l = t * per_tile; l < end; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(base + 64 * l), _MM_HINT_T1);
  }
}

}  // namespace
}  // namespace ember
