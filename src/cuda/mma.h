// Warp-level tensor-core multiply-accumulate (sm_80 and later): PTX mma.sync m16n8k16 on f16
// operands with f32 accumulators and m16n8k32 / m16n8k16 on s8 operands with s32 accumulators, the
// packing of their operand registers, and the shared-memory accesses that feed them. The emulator
// carries the instruction out as the PTX ISA defines it (emulator/device.h, which spells out the
// layouts).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "cuda/mma.h: mma.sync m16n8k16 (f16) and m16n8k32 / m16n8k16 (s8) need sm_80 or later"
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

// The 32 bits at p, 4-byte aligned (shared memory read as operand registers).
__device__ __forceinline__ uint32_t u32_at(const void* p) {
#if defined(EMBER_CUDA_EMULATED)
  uint32_t bits;  // host C++: no type punning through the pointer
  std::memcpy(&bits, p, sizeof(bits));
  return bits;
#else
  return *static_cast<const uint32_t*>(p);
#endif
}

// The 32 bits of halves p[0] (low) and p[1] (high), p 4-byte aligned: one operand register.
__device__ __forceinline__ uint32_t half2_bits(const __half* p) { return u32_at(p); }

// p[0], p[1] = (half) lo, (half) hi, p 4-byte aligned.
__device__ __forceinline__ void store_half2(__half* p, float lo, float hi) {
#if defined(EMBER_CUDA_EMULATED)
  p[0] = __float2half_rn(lo);
  p[1] = __float2half_rn(hi);
#else
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(lo, hi);
#endif
}

// Words w0..w3 (w0 at the lowest address) to dst, 16-byte aligned: one vector store on the GPU.
__device__ __forceinline__ void store_u32x4(void* dst, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3) {
#if defined(EMBER_CUDA_EMULATED)
  const uint32_t words[4] = {w0, w1, w2, w3};
  std::memcpy(dst, words, 16);
#else
  *static_cast<uint4*>(dst) = make_uint4(w0, w1, w2, w3);
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

// Four signed bytes as one operand register; b0 is the element of lowest index.
__device__ __forceinline__ uint32_t pack_s8x4(int b0, int b1, int b2, int b3) {
  return (static_cast<uint32_t>(b0) & 0xFFu) | (static_cast<uint32_t>(b1) & 0xFFu) << 8 |
         (static_cast<uint32_t>(b2) & 0xFFu) << 16 | (static_cast<uint32_t>(b3) & 0xFFu) << 24;
}

// d[16×8] += a[16×32] · b[32×8] on s8 operands with s32 accumulators, over the whole (converged)
// warp (mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32). With g = lane / 4, t = lane % 4, each
// register four bytes of consecutive k (the lowest in the low byte):
// a = A[g][4t..], A[g+8][4t..], A[g][4t+16..], A[g+8][4t+16..]; b = B[4t..][g], B[4t+16..][g];
// d = D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1].
__device__ __forceinline__ void mma_16x8x32_s8(int32_t (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember::cuda_emulator::mma_m16n8k32_s32_s8(d, a, b);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// The m16n8k16 s8 shape (mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32): the k32 shape's first
// half, a = A[g][4t..], A[g+8][4t..]; b = B[4t..][g]; d as the k32 shape's. Two of them on a k32
// fragment's registers {a[0], a[1]}, b[0] and {a[2], a[3]}, b[1] give the sums of k 0-15 and
// 16-31 apart.
__device__ __forceinline__ void mma_16x8x16_s8(int32_t (&d)[4], const uint32_t (&a)[2], uint32_t b) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember::cuda_emulator::mma_m16n8k16_s32_s8(d, a, b);
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(b));
#endif
}

}  // namespace ember::cuda
