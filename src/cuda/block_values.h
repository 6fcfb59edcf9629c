// Exact values of the GGUF weight types on the device: per block type, 8 consecutive values
// computed with the CPU dequantizer's float operations in its order (quant/dequantize_*.cpp), bit
// for bit, and the plain types' one at a time. dequantize_f16 (matmul_kernels.cu) rounds them to
// f16, get_rows (ops_kernels.cu) stores them; the GEMV and the int8 GEMM decode the nibble formats
// a word at a time through nibble_codes, and share the K formats' scale helpers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/block_loads.h"
#include "cuda/unroll.h"
#include "ember/dtype.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"

namespace ember::cuda {

// Q4_K/Q5_K scale and min of sub-block j (0..7) from the 12 packed bytes q, as scale_min_k4.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, uint32_t* scale, uint32_t* min) {
  if (j < 4) {
    *scale = ld_u8(q + j) & 63;
    *min = ld_u8(q + j + 4) & 63;
  } else {
    *scale = (ld_u8(q + j + 4) & 0x0F) | ((ld_u8(q + j - 4) >> 6) << 4);
    *min = (ld_u8(q + j + 4) >> 4) | ((ld_u8(q + j) >> 6) << 4);
  }
}

// Q4_K/Q5_K block b's sub-block j (0..7) as d·q - m: d = d·scale_j, m = dmin·min_j, rounded as
// dequantize_row_q4_k rounds them.
struct ScaleAndMin {
  float d, m;
};
__device__ __forceinline__ ScaleAndMin k4_scale_and_min(const uint8_t* b, int j) {
  static_assert(offsetof(BlockQ4_K, scales) == offsetof(BlockQ5_K, scales) && offsetof(BlockQ5_K, dmin) == 2);
  uint32_t sc, mn;
  scale_min_k4(j, b + offsetof(BlockQ4_K, scales), &sc, &mn);
  return {__fmul_rn(ld_f16(b), static_cast<float>(sc)), __fmul_rn(ld_f16(b + 2), static_cast<float>(mn))};
}

// IQ4_XS block b's sub-block ib (0..7) scale d·(ls - 32), ls the 6 bits of scales_l's nibble ib and
// scales_h's bits 2ib, 2ib + 1.
__device__ __forceinline__ float iq4_xs_scale(const uint8_t* b, int ib) {
  const uint32_t ls = ((ld_u8(b + offsetof(BlockIQ4_XS, scales_l) + ib / 2) >> (4 * (ib % 2))) & 0x0F) |
                      (((ld_u16(b + offsetof(BlockIQ4_XS, scales_h)) >> (2 * ib)) & 3) << 4);
  return __fmul_rn(ld_f16(b), static_cast<float>(static_cast<int>(ls) - 32));
}

// The 32-value formats with an f16 d first and 16 bytes of nibbles (value j < 16: the low nibble of
// qs[j]; value j + 16: its high nibble), as codes q: Q4_0, Q5_0 (kHigh: bit j of qh is value j's
// 5th bit) d·(q - kBias); Q4_1, Q5_1 (kMin) q·d + m; IQ4_NL (kCodebook) d·level(q).
template <class BlockT, bool kHighBit, bool kMinTerm, int kBiasValue, bool kCodebookLevels = false>
struct NibbleFormat {
  using Block = BlockT;
  static constexpr bool kHigh = kHighBit, kMin = kMinTerm, kCodebook = kCodebookLevels;
  static constexpr int kBias = kBiasValue;
};
using FormatQ4_0 = NibbleFormat<BlockQ4_0, false, false, 8>;
using FormatQ4_1 = NibbleFormat<BlockQ4_1, false, true, 0>;
using FormatQ5_0 = NibbleFormat<BlockQ5_0, true, false, 16>;
using FormatQ5_1 = NibbleFormat<BlockQ5_1, true, true, 0>;
using FormatIQ4_NL = NibbleFormat<BlockIQ4_NL, false, false, 0, true>;

// qs word c (0..3) of a NibbleFormat block as four codes each: `low` those of values 4c .. 4c + 3
// (the low nibbles), `high` those of values 16 + 4c .. (the high nibbles); kHigh adds the 5th bit
// of value j, bit j of qh.
template <class F>
__device__ __forceinline__ void nibble_codes(const uint8_t* b, int c, uint32_t& low, uint32_t& high) {
  const uint32_t q = ld_u32_a2(b + offsetof(typename F::Block, qs) + 4 * c);
  low = q & 0x0F0F0F0Fu;
  high = (q >> 4) & 0x0F0F0F0Fu;
  if constexpr (F::kHigh) {
    const uint32_t qh = ld_u32_a2(b + offsetof(typename F::Block, qh));
    low |= spread_bits4((qh >> (4 * c)) & 0xF) << 4;
    high |= spread_bits4((qh >> (16 + 4 * c)) & 0xF) << 4;
  }
}

// The quantized types as 8 consecutive values at element j0 (a multiple of 8) of a block, computed
// with the CPU reference's float operations in its order (__fmul_rn etc.: no FMA contraction), so
// they equal the CPU's dequantization bit for bit (dequantize_f16 rounds them, get_rows stores
// them).
template <class F>
struct DequantNibbles {
  using Block = typename F::Block;
  static constexpr int kBlockElems = 32, kBlockBytes = sizeof(Block);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const float d = ld_f16(b);
    const uint8_t* qs = b + offsetof(Block, qs) + j0 % 16;
    const int shift = j0 < 16 ? 0 : 4;
    uint32_t qh = 0;
    if constexpr (F::kHigh) qh = ld_u32_a2(b + offsetof(Block, qh));
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) {  // element j's 5th bit is bit j of qh, for both nibbles
      const uint32_t q = ((ld_u8(qs + n) >> shift) & 0x0F) | (F::kHigh ? ((qh >> (j0 + n)) & 1) << 4 : 0);
      if constexpr (F::kMin) {
        v[n] = __fadd_rn(__fmul_rn(static_cast<float>(q), d), ld_f16(b + offsetof(Block, m)));
      } else if constexpr (F::kCodebook) {
        v[n] = __fmul_rn(d, static_cast<float>(iq4_level(q)));
      } else {
        v[n] = __fmul_rn(static_cast<float>(static_cast<int>(q) - F::kBias), d);
      }
    }
  }
};

struct DequantQ8_0 {
  static constexpr int kBlockElems = kQK8_0, kBlockBytes = sizeof(BlockQ8_0);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const float d = ld_f16(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2) + j0;
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) v[n] = __fmul_rn(static_cast<float>(__ldg(qs + n)), d);
  }
};

// Element 64g + 32hi + l: nibble hi of qs[32g + l], sub-block 2g + hi; Q5_K (kHigh) adds bit
// 2g + hi of qh[l] as the 5th bit.
template <bool kHigh>
struct DequantQ4Q5_K {
  using Block = std::conditional_t<kHigh, BlockQ5_K, BlockQ4_K>;
  static constexpr int kBlockElems = kQK_K, kBlockBytes = sizeof(Block);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const int g = j0 / 64, hi = (j0 % 64) / 32, l0 = j0 % 32;
    const auto [d, m] = k4_scale_and_min(b, 2 * g + hi);
    const uint8_t* qs = b + offsetof(Block, qs) + 32 * g + l0;
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) {
      uint32_t q = (ld_u8(qs + n) >> (4 * hi)) & 0x0F;
      if constexpr (kHigh) q |= ((ld_u8(b + offsetof(BlockQ5_K, qh) + l0 + n) >> (2 * g + hi)) & 1) << 4;
      v[n] = __fsub_rn(__fmul_rn(d, static_cast<float>(q)), m);
    }
  }
};

struct DequantQ6_K {  // element 128h + 32qq + l as in GemvQ6_K
  static constexpr int kBlockElems = kQK_K, kBlockBytes = sizeof(BlockQ6_K);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const int h = j0 / 128, qq = (j0 % 128) / 32, l0 = j0 % 32;
    const uint8_t* ql = b + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (qq % 2);
    const uint8_t* qh = b + offsetof(BlockQ6_K, qh) + 32 * h;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + offsetof(BlockQ6_K, scales));
    const float ds =
        __fmul_rn(ld_f16(b + offsetof(BlockQ6_K, d)), static_cast<float>(__ldg(scales + 8 * h + l0 / 16 + 2 * qq)));
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) {
      const uint32_t q =
          ((ld_u8(ql + l0 + n) >> (4 * (qq / 2))) & 0x0F) | (((ld_u8(qh + l0 + n) >> (2 * qq)) & 3) << 4);
      v[n] = __fmul_rn(ds, static_cast<float>(static_cast<int>(q) - 32));
    }
  }
};

// Q2_K: element 128h + 32p + l (l < 32) is bits 2p of qs[32h + l], scale byte scales[8h + 2p + l / 16]
// (the scale in its low nibble, the min in its high one): (d·sc)·q - dmin·m.
struct DequantQ2_K {
  static constexpr int kBlockElems = kQK_K, kBlockBytes = sizeof(BlockQ2_K);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const int h = j0 / 128, p = (j0 % 128) / 32, l0 = j0 % 32;
    const uint32_t sc = ld_u8(b + offsetof(BlockQ2_K, scales) + 8 * h + 2 * p + l0 / 16);
    const float dl = __fmul_rn(ld_f16(b + offsetof(BlockQ2_K, d)), static_cast<float>(sc & 0x0F));
    const float ml = __fmul_rn(ld_f16(b + offsetof(BlockQ2_K, dmin)), static_cast<float>(sc >> 4));
    const uint8_t* qs = b + offsetof(BlockQ2_K, qs) + 32 * h + l0;
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) {
      v[n] = __fsub_rn(__fmul_rn(dl, static_cast<float>((ld_u8(qs + n) >> (2 * p)) & 3)), ml);
    }
  }
};

// Q3_K's 6-bit scale i (0..15) from its 12 packed bytes, minus 32, as unpack_q3_k_scales.
__device__ __forceinline__ int q3_k_scale(const uint8_t* packed, int i) {
  const uint32_t low = (ld_u8(packed + i % 8) >> (4 * (i / 8))) & 0x0F;
  const uint32_t high = (ld_u8(packed + 8 + i % 4) >> (2 * (i / 4))) & 0x03;
  return static_cast<int>(low | (high << 4)) - 32;
}

// Q3_K: element 128h + 32p + l has low bits (qs[32h + l] >> 2p) & 3, minus 4 unless bit 4h + p of
// hmask[l] is set, scale q3_k_scale(8h + 2p + l / 16): (d·scale)·value.
struct DequantQ3_K {
  static constexpr int kBlockElems = kQK_K, kBlockBytes = sizeof(BlockQ3_K);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const int h = j0 / 128, p = (j0 % 128) / 32, l0 = j0 % 32;
    const int scale = q3_k_scale(b + offsetof(BlockQ3_K, scales), 8 * h + 2 * p + l0 / 16);
    const float dl = __fmul_rn(ld_f16(b + offsetof(BlockQ3_K, d)), static_cast<float>(scale));
    const uint8_t* qs = b + offsetof(BlockQ3_K, qs) + 32 * h + l0;
    const uint8_t* hm = b + offsetof(BlockQ3_K, hmask) + l0;
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) {
      const int q = static_cast<int>((ld_u8(qs + n) >> (2 * p)) & 3) - (((ld_u8(hm + n) >> (4 * h + p)) & 1) ? 0 : 4);
      v[n] = __fmul_rn(dl, static_cast<float>(q));
    }
  }
};

// IQ4_XS: sub-block ib (32 values) is as an IQ4_NL block of qs[16ib, +16) with iq4_xs_scale.
struct DequantIQ4_XS {
  static constexpr int kBlockElems = kQK_K, kBlockBytes = sizeof(BlockIQ4_XS);
  __device__ static void values8(const uint8_t* b, int j0, float (&v)[8]) {
    const int ib = j0 / 32, j = j0 % 32;
    const float dl = iq4_xs_scale(b, ib);
    const uint8_t* qs = b + offsetof(BlockIQ4_XS, qs) + 16 * ib + j % 16;
    const int shift = j < 16 ? 0 : 4;
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) v[n] = __fmul_rn(dl, static_cast<float>(iq4_level((ld_u8(qs + n) >> shift) & 0x0F)));
  }
};

// Element i of a plain-type (F32, F16, BF16) row, exactly: get_rows stores it, dequantize_f16
// rounds it (an F16 value back to itself).
template <DType T>
__device__ __forceinline__ float plain_value(const uint8_t* row, int64_t i) {
  if constexpr (T == DType::kF32) {
    return __ldg(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == DType::kF16) {
    return ld_f16(row + 2 * i);
  } else {
    static_assert(T == DType::kBF16, "plain_value: not a plain type");
    return bf16_bits_to_float(ld_u16(row + 2 * i));
  }
}

// f(Dequant{}) for a block type of matmul_supports; false (f not called) for the plain types.
template <class Fn>
bool with_block_values(DType dtype, Fn&& f) {
  switch (dtype) {
    case DType::kQ4_0: f(DequantNibbles<FormatQ4_0>{}); return true;
    case DType::kQ4_1: f(DequantNibbles<FormatQ4_1>{}); return true;
    case DType::kQ5_0: f(DequantNibbles<FormatQ5_0>{}); return true;
    case DType::kQ5_1: f(DequantNibbles<FormatQ5_1>{}); return true;
    case DType::kIQ4_NL: f(DequantNibbles<FormatIQ4_NL>{}); return true;
    case DType::kQ8_0: f(DequantQ8_0{}); return true;
    case DType::kQ2_K: f(DequantQ2_K{}); return true;
    case DType::kQ3_K: f(DequantQ3_K{}); return true;
    case DType::kQ4_K: f(DequantQ4Q5_K<false>{}); return true;
    case DType::kQ5_K: f(DequantQ4Q5_K<true>{}); return true;
    case DType::kQ6_K: f(DequantQ6_K{}); return true;
    case DType::kIQ4_XS: f(DequantIQ4_XS{}); return true;
    default: return false;
  }
}

}  // namespace ember::cuda
