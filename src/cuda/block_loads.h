// Device loads of GGUF weight blocks through the read-only path (the legacy types' and Q6_K's
// blocks are only 2-byte aligned, so wider values are assembled from 2-byte loads), and the bit
// tricks that turn their bytes into values.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "ember/dtype.h"
#include "quant/block_iq4.h"

namespace ember::cuda {

// The block types whose decoders (the GEMV's units, the int8 GEMM's) read whole 4-byte words
// (blocks of 84, 136, 144 and 176 bytes): their matrices must start 4-byte aligned (a cudaMalloc
// base is; so is any whole number of their rows).
inline bool reads_words(DType dtype) noexcept {
  return dtype == DType::kQ2_K || dtype == DType::kQ4_K || dtype == DType::kQ5_K || dtype == DType::kIQ4_XS;
}

__device__ __forceinline__ uint32_t ld_u8(const uint8_t* p) { return __ldg(p); }
__device__ __forceinline__ uint32_t ld_u16(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}
// 4 bytes (little-endian) at a 2-byte-aligned address.
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) { return ld_u16(p) | (ld_u16(p + 2) << 16); }
// 4 bytes at a 4-byte-aligned address (the blocks of reads_words' types, from an aligned matrix).
__device__ __forceinline__ uint32_t ld_u32(const uint8_t* p) { return __ldg(reinterpret_cast<const unsigned*>(p)); }
__device__ __forceinline__ float ld_f16(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(ld_u16(p))));
}

__device__ __forceinline__ float bf16_bits_to_float(uint32_t bits) { return __uint_as_float(bits << 16); }

// Byte n of v (an unsigned value 0..255) minus kBias as an exact float, without the slow int ->
// float conversion: the bits 0x4B0000vv are the float 2^23 + v.
template <int kBias>
__device__ __forceinline__ float byte_value(uint32_t v, int n) {
  return __int_as_float(static_cast<int>(__byte_perm(v, 0x4B000000u, 0x7440u | n))) - (8388608.0f + kBias);
}

// The IQ4 formats' 16 levels (quant/block_iq4.h) as four words of int8 bytes, for __byte_perm.
constexpr uint32_t iq4_level_word(int w) {
  uint32_t word = 0;
  for (int n = 0; n < 4; ++n) word |= static_cast<uint32_t>(static_cast<uint8_t>(kIQ4Values[4 * w + n])) << (8 * n);
  return word;
}
inline constexpr uint32_t kIQ4Levels0 = iq4_level_word(0), kIQ4Levels1 = iq4_level_word(1),
                          kIQ4Levels2 = iq4_level_word(2), kIQ4Levels3 = iq4_level_word(3);

// The levels of the four codes (0..15) in v's bytes, as int8 bytes.
__device__ __forceinline__ uint32_t iq4_levels4(uint32_t v) {
  // __byte_perm picks byte (selector nibble n) & 7 of {y:x}: levels 0-7 from words 0-1, 8-15 from 2-3.
  const uint32_t select = (v & 0x7u) | ((v >> 4) & 0x70u) | ((v >> 8) & 0x700u) | ((v >> 12) & 0x7000u);
  const uint32_t low = __byte_perm(kIQ4Levels0, kIQ4Levels1, select);
  const uint32_t high = __byte_perm(kIQ4Levels2, kIQ4Levels3, select);
  const uint32_t upper = ((v >> 3) & 0x01010101u) * 0xFFu;  // bytes whose code is 8..15
  return (high & upper) | (low & ~upper);
}

// The level of one code (0..15).
__device__ __forceinline__ int iq4_level(uint32_t code) { return static_cast<int8_t>(iq4_levels4(code) & 0xFF); }

// Bits 0-3 of h moved to bit 0 of bytes 0-3: the four shifted copies (by 0, 7, 14, 21) do not
// overlap, so the product is their OR, and bit i of copy i lands on bit 8i.
__device__ __forceinline__ uint32_t spread_bits4(uint32_t h) { return (h * 0x00204081u) & 0x01010101u; }

}  // namespace ember::cuda
