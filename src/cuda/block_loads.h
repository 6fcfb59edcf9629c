// Device loads of GGUF weight blocks through the read-only path: the legacy types' and Q6_K's
// blocks are only 2-byte aligned, so wider values are assembled from 2-byte loads.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace ember::cuda {

__device__ __forceinline__ uint32_t ld_u8(const uint8_t* p) { return __ldg(p); }
__device__ __forceinline__ uint32_t ld_u16(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}
// 4 bytes (little-endian) at a 2-byte-aligned address.
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) { return ld_u16(p) | (ld_u16(p + 2) << 16); }
__device__ __forceinline__ float ld_f16(const uint8_t* p) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(ld_u16(p))));
}

// Bits 0-3 of h moved to bit 0 of bytes 0-3: the four shifted copies (by 0, 7, 14, 21) do not
// overlap, so the product is their OR, and bit i of copy i lands on bit 8i.
__device__ __forceinline__ uint32_t spread_bits4(uint32_t h) { return (h * 0x00204081u) & 0x01010101u; }

}  // namespace ember::cuda
