// Warp-level tensor-core multiply-accumulate (sm_80 and later): PTX mma.sync m16n8k16 on f16
// operands with f32 accumulators, the packing of its operand registers, and the shared-memory
// accesses that feed it. The emulator carries
// the instruction out as the PTX ISA defines it (emulator/device.h, which spells out the layouts).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "cuda/mma.h: mma.sync m16n8k16 on f16 needs sm_80 or later"
#endif

namespace ember::cuda {

// Two halves as one operand register; `lo` is the element of lower index (a row's column 2t, or a
// column's row 2t).
__device__ __forceinline__ uint32_t pair_bits(__half lo, __half hi) {
  return static_cast<uint32_t>(__half_as_ushort(lo)) | static_cast<uint32_t>(__half_as_ushort(hi)) << 16;
}

// Two floats as one operand register, rounded to nearest even.
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  return pair_bits(__float2half_rn(lo), __float2half_rn(hi));
}

// The 32 bits of halves p[0] (low) and p[1] (high), p 4-byte aligned: one operand register.
__device__ __forceinline__ uint32_t half2_bits(const __half* p) {
#if defined(EMBER_CUDA_EMULATED)
  uint32_t bits;  // host C++: no type punning through the pointer
  std::memcpy(&bits, p, sizeof(bits));
  return bits;
#else
  return *reinterpret_cast<const uint32_t*>(p);
#endif
}

// p[0], p[1] = (half) lo, (half) hi, p 4-byte aligned.
__device__ __forceinline__ void store_half2(__half* p, float lo, float hi) {
#if defined(EMBER_CUDA_EMULATED)
  p[0] = __float2half_rn(lo);
  p[1] = __float2half_rn(hi);
#else
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(lo, hi);
#endif
}

// 16 bytes from src to dst, both 16-byte aligned (one vector load and store on the GPU).
__device__ __forceinline__ void copy16(void* dst, const void* src) {
#if defined(EMBER_CUDA_EMULATED)
  std::memcpy(dst, src, 16);
#else
  *static_cast<uint4*>(dst) = *static_cast<const uint4*>(src);
#endif
}

// d[16×8] += a[16×16] · b[16×8] over the whole (converged) warp. With g = lane / 4, t = lane % 4:
// a = A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]; b = B[2t..][g], B[2t+8..][g];
// d = D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1].
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember::cuda_emulator::mma_m16n8k16_f32_f16(d, a, b);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

}  // namespace ember::cuda
