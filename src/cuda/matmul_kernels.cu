// The matmul kernels of cuda_kernels.h: GEMV straight from the GGUF blocks (decode, 1-8 rows) and
// the f16 conversions that feed the cuBLAS prefill path.
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "cuda/activations.h"
#include "cuda/block_loads.h"
#include "cuda/block_values.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"

namespace ember::cuda {
namespace {

// GEMV: one block of kGemvThreads threads per kGemvRows output rows. The threads stride together
// over the rows' "units" (a fixed slice of a block: 32 quants, or 4-8 plain values), so a warp's
// loads cover contiguous bytes and the k of one row pair is split over 4 warps (enough blocks in
// flight for small n_out too). Two rows per block: every x value loaded feeds both rows, halving
// the L1 traffic of x, which is several times the weight traffic for 4-bit types.
constexpr int kGemvThreads = 128;
constexpr int kGemvWarps = kGemvThreads / 32;
constexpr int kGemvRows = 2;
// Resident blocks per SM the gemv kernel is compiled for, i.e. its register budget: 72 registers
// for M = 1 (decode is memory bound and wants occupancy), 80, 128, then 255 from M = 5. ptxas
// fills whatever budget it gets by hoisting loads; its own choice (no minimum) and tighter budgets
// spilled a few bytes for some M, these do not (checked with -Xptxas -v for sm_80 and sm_90).
// (maybe_unused: the CUDA emulator compiles __launch_bounds__ away.)
// Q6_K's unit takes one register more than that budget holds since one kernel serves several
// matrices (the part's pointer and size are no longer plain parameters): it gets one block less at
// M = 1 and 2 instead of spilling.
[[maybe_unused]] constexpr int gemv_min_blocks(int m) { return m == 1 ? 7 : m == 2 ? 6 : m <= 4 ? 4 : 2; }
template <class Type>
[[maybe_unused]] constexpr int gemv_min_blocks_for(int m) {
  return Type::kTightRegisters && m <= 2 ? gemv_min_blocks(m) - 1 : gemv_min_blocks(m);
}
// Elementwise kernels (dequantize_f16, f32_to_f16): grid-stride loops over at most kMaxBlocks.
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks)); }

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- GEMV building blocks ----------------------------------------------------------------------

using RowPtrs = const uint8_t* [kGemvRows];

// s[r][m] += Σ_i w[r][i] · x[m][e + i] for the 4 elements at e (x rows 16-byte aligned, e % 4 == 0).
template <int M>
__device__ __forceinline__ void dot4(const float* __restrict__ x, int64_t k, int64_t e, const float (&w)[kGemvRows][4],
                                     float (&s)[kGemvRows][M]) {
  EMBER_UNROLL
  for (int m = 0; m < M; ++m) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(x + m * k + e));
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      s[r][m] = fmaf(w[r][0], v.x, s[r][m]);
      s[r][m] = fmaf(w[r][1], v.y, s[r][m]);
      s[r][m] = fmaf(w[r][2], v.z, s[r][m]);
      s[r][m] = fmaf(w[r][3], v.w, s[r][m]);
    }
  }
}

// s[r][m] += w[r] · x[m][e] (the unaligned plain-type paths).
template <int M>
__device__ __forceinline__ void dot1(const float* __restrict__ x, int64_t k, int64_t e, const float (&w)[kGemvRows],
                                     float (&s)[kGemvRows][M]) {
  EMBER_UNROLL
  for (int m = 0; m < M; ++m) {
    const float v = __ldg(x + m * k + e);
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) s[r][m] = fmaf(w[r], v, s[r][m]);
  }
}

template <int M>
__device__ __forceinline__ void scale_add(const float (&d)[kGemvRows], const float (&s)[kGemvRows][M],
                                          float (&acc)[kGemvRows][M]) {
  EMBER_UNROLL
  for (int r = 0; r < kGemvRows; ++r) {
    EMBER_UNROLL
    for (int m = 0; m < M; ++m) acc[r][m] = fmaf(d[r], s[r][m], acc[r][m]);
  }
}

// Each type: kUnitElems values per unit, and accumulate(), which adds unit u of both rows (each
// row's values · x) to acc. Unit u covers elements [u * kUnitElems, (u + 1) * kUnitElems) of the
// row unless a comment says otherwise.

struct GemvF32 {  // unit: one float4 (k % 4 == 0, 16-byte-aligned rows)
  static constexpr int kUnitElems = 4;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    float v[kGemvRows][4];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const float4 q = __ldg(reinterpret_cast<const float4*>(w[r]) + u);
      v[r][0] = q.x, v[r][1] = q.y, v[r][2] = q.z, v[r][3] = q.w;
    }
    dot4<M>(x, k, 4 * u, v, acc);
  }
};

// F16 and BF16: unit of 8 values read as one uint4 (k % 8 == 0, 16-byte-aligned rows).
template <bool kBf16>
struct GemvHalf {
  static constexpr int kUnitElems = 8;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    uint32_t q[kGemvRows][4];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint4 b = __ldg(reinterpret_cast<const uint4*>(w[r]) + u);
      q[r][0] = b.x, q[r][1] = b.y, q[r][2] = b.z, q[r][3] = b.w;
    }
    EMBER_UNROLL
    for (int half = 0; half < 2; ++half) {  // elements 8u + 4·half + [0, 4): words 2·half, 2·half + 1
      float v[kGemvRows][4];
      EMBER_UNROLL
      for (int r = 0; r < kGemvRows; ++r) {
        EMBER_UNROLL
        for (int i = 0; i < 4; ++i) {
          const uint32_t bits = (q[r][2 * half + i / 2] >> (16 * (i % 2))) & 0xFFFF;
          v[r][i] =
              kBf16 ? bf16_bits_to_float(bits) : __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
        }
      }
      dot4<M>(x, k, 8 * u + 4 * half, v, acc);
    }
  }
};

// F32, F16, BF16 one value per unit: any k, any alignment.
template <DType kType>
struct GemvPlainScalar {
  static constexpr int kUnitElems = 1;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    float v[kGemvRows];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      if constexpr (kType == DType::kF32) {
        v[r] = __ldg(reinterpret_cast<const float*>(w[r]) + u);
      } else if constexpr (kType == DType::kF16) {
        v[r] = ld_f16(w[r] + 2 * u);
      } else {
        v[r] = bf16_bits_to_float(ld_u16(w[r] + 2 * u));
      }
    }
    dot1<M>(x, k, u, v, acc);
  }
};

// The quantized units are laid out so that the 8 (K types, IQ4_XS) or 4 (32-value types) lanes on
// one block read x in whole 128-byte lines: a warp's x loads then touch 4-8 lines each, not 32.

// The NibbleFormat types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), unit: a quarter block. Unit u is qs
// word c = u % 4 of block u / 4, bytes qs[4c + n]: element 4c + n (low nibble) and 16 + 4c + n
// (high nibble); kHigh adds the 5th bit of element j at bit j of qh; kCodebook maps the codes to
// their levels.
template <class F>
struct GemvNibbles {
  using Block = typename F::Block;
  static constexpr int kUnitElems = 8;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int c = u % 4;
    float d[kGemvRows], lo[kGemvRows][4], hi[kGemvRows][4];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint8_t* b = w[r] + (u / 4) * sizeof(Block);
      d[r] = ld_f16(b);
      uint32_t lo_q, hi_q;
      nibble_codes<F>(b, c, lo_q, hi_q);
      if constexpr (F::kCodebook) {  // int8 levels + 128: unsigned bytes
        lo_q = iq4_levels4(lo_q) ^ 0x80808080u;
        hi_q = iq4_levels4(hi_q) ^ 0x80808080u;
      }
      constexpr int kBias = F::kCodebook ? 128 : F::kBias;
      EMBER_UNROLL
      for (int n = 0; n < 4; ++n) {
        lo[r][n] = byte_value<kBias>(lo_q, n);
        hi[r][n] = byte_value<kBias>(hi_q, n);
      }
      if constexpr (F::kMin) {  // a min per block: the values themselves, as Q4_K's
        const float m = ld_f16(b + offsetof(Block, m));
        EMBER_UNROLL
        for (int n = 0; n < 4; ++n) {
          lo[r][n] = fmaf(d[r], lo[r][n], m);
          hi[r][n] = fmaf(d[r], hi[r][n], m);
        }
      }
    }
    const int64_t e = 32 * (u / 4) + 4 * c;
    if constexpr (F::kMin) {
      dot4<M>(x, k, e, lo, acc);
      dot4<M>(x, k, e + 16, hi, acc);
    } else {
      float s[kGemvRows][M] = {};  // Σ level · x; the block scale is applied once at the end
      dot4<M>(x, k, e, lo, s);
      dot4<M>(x, k, e + 16, hi, s);
      scale_add<M>(d, s, acc);
    }
  }
};

struct GemvQ8_0 {  // unit: a quarter block, qs[8c, 8c + 8) of block u / 4 (c = u % 4): elements 8u + [0, 8)
  static constexpr int kUnitElems = 8;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    float d[kGemvRows], v[2][kGemvRows][4];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint8_t* b = w[r] + (u / 4) * sizeof(BlockQ8_0);
      d[r] = ld_f16(b);
      EMBER_UNROLL
      for (int i = 0; i < 2; ++i) {
        const uint32_t q = ld_u32_a2(b + offsetof(BlockQ8_0, qs) + 8 * (u % 4) + 4 * i) ^ 0x80808080u;  // q + 128
        EMBER_UNROLL
        for (int n = 0; n < 4; ++n) v[i][r][n] = byte_value<128>(q, n);
      }
    }
    float s[kGemvRows][M] = {};
    dot4<M>(x, k, 8 * static_cast<int64_t>(u), v[0], s);
    dot4<M>(x, k, 8 * static_cast<int64_t>(u) + 4, v[1], s);
    scale_add<M>(d, s, acc);
  }
};

// Q4_K and Q5_K (kHigh) unit: an eighth of a block. Unit u is t = u % 8 of block u / 8 and holds
// qs words t + 8g (g < 4), bytes qs[32g + 4t + n]: element 64g + 4t + n (low nibble, sub-block 2g)
// and 64g + 32 + 4t + n (high nibble, sub-block 2g + 1); Q5_K's 5th bits of those are bits 2g and
// 2g + 1 of qh[4t + n] (qh word t). Blocks are 144 / 176 bytes: 4-byte aligned words.
template <bool kHigh>
struct GemvQ4Q5_K {
  using Block = std::conditional_t<kHigh, BlockQ5_K, BlockQ4_K>;
  static constexpr int kUnitElems = 32;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int t = u % 8;
    float d[kGemvRows], dmin[kGemvRows];
    uint32_t sc[kGemvRows][2], mn[kGemvRows][2], q[kGemvRows][4];  // sc/mn [r][j / 4] byte j % 4
    uint32_t qh[kGemvRows];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint32_t* b = reinterpret_cast<const uint32_t*>(w[r] + (u / 8) * sizeof(Block));
      const uint32_t dm = __ldg(b);
      d[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(dm & 0xFFFF)));
      dmin[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(dm >> 16)));
      // scale_min_k4 for all 8 sub-blocks at once from the 12 scale bytes (words s0, s1, s2).
      const uint32_t s0 = __ldg(b + 1), s1 = __ldg(b + 2), s2 = __ldg(b + 3);
      sc[r][0] = s0 & 0x3F3F3F3Fu;
      mn[r][0] = s1 & 0x3F3F3F3Fu;
      sc[r][1] = (s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u);
      mn[r][1] = ((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u);
      EMBER_UNROLL
      for (int g = 0; g < 4; ++g) q[r][g] = __ldg(b + offsetof(Block, qs) / 4 + 8 * g + t);
      if constexpr (kHigh) qh[r] = __ldg(b + offsetof(BlockQ5_K, qh) / 4 + t);
    }
    const int64_t e = (u / 8) * static_cast<int64_t>(kQK_K) + 4 * t;
    EMBER_UNROLL
    for (int g = 0; g < 4; ++g) {  // values are d·q - m: a min per sub-block, so no factoring out
      float lo[kGemvRows][4], hi[kGemvRows][4];
      EMBER_UNROLL
      for (int r = 0; r < kGemvRows; ++r) {
        const float d_lo = d[r] * byte_value<0>(sc[r][g / 2], 2 * g % 4);
        const float m_lo = dmin[r] * byte_value<0>(mn[r][g / 2], 2 * g % 4);
        const float d_hi = d[r] * byte_value<0>(sc[r][g / 2], 2 * g % 4 + 1);
        const float m_hi = dmin[r] * byte_value<0>(mn[r][g / 2], 2 * g % 4 + 1);
        uint32_t lo_q = q[r][g] & 0x0F0F0F0Fu, hi_q = (q[r][g] >> 4) & 0x0F0F0F0Fu;
        if constexpr (kHigh) {
          lo_q |= ((qh[r] >> (2 * g)) & 0x01010101u) << 4;
          hi_q |= ((qh[r] >> (2 * g + 1)) & 0x01010101u) << 4;
        }
        EMBER_UNROLL
        for (int n = 0; n < 4; ++n) {
          lo[r][n] = fmaf(d_lo, byte_value<0>(lo_q, n), -m_lo);
          hi[r][n] = fmaf(d_hi, byte_value<0>(hi_q, n), -m_hi);
        }
      }
      dot4<M>(x, k, e + 64 * g, lo, acc);
      dot4<M>(x, k, e + 64 * g + 32, hi, acc);
    }
  }
};

// Q6_K unit: an eighth of a block. Unit u is t = u % 8 of block u / 8 and holds l = 4t + n (n < 4)
// of both halves h and all four quarters qq: element 128h + 32qq + l has low bits
// ql[64h + 32 (qq % 2) + l] >> 4 (qq / 2), high bits qh[32h + l] >> 2qq and scale
// sc[8h + l / 16 + 2qq], where l / 16 = t / 4.
struct GemvQ6_K {
  static constexpr int kUnitElems = 32;
  static constexpr bool kTightRegisters = true;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int t = u % 8;
    float d[kGemvRows];
    // ql[r][h][qq % 2], qh[r][h]: bytes l = 4t + n; sc[r][h]: byte qq the int8 scale of quarter qq.
    uint32_t ql[kGemvRows][2][2], qh[kGemvRows][2], sc[kGemvRows][2];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint8_t* b = w[r] + (u / 8) * sizeof(BlockQ6_K);
      d[r] = ld_f16(b + offsetof(BlockQ6_K, d));
      EMBER_UNROLL
      for (int h = 0; h < 2; ++h) {
        ql[r][h][0] = ld_u32_a2(b + offsetof(BlockQ6_K, ql) + 64 * h + 4 * t);
        ql[r][h][1] = ld_u32_a2(b + offsetof(BlockQ6_K, ql) + 64 * h + 32 + 4 * t);
        qh[r][h] = ld_u32_a2(b + offsetof(BlockQ6_K, qh) + 32 * h + 4 * t);
        // The half's 8 scales; quarter qq's is byte t / 4 + 2qq: bytes {0, 2, 4, 6} or {1, 3, 5, 7}.
        const uint8_t* scales = b + offsetof(BlockQ6_K, scales) + 8 * h;
        sc[r][h] = __byte_perm(ld_u32_a2(scales), ld_u32_a2(scales + 4), t / 4 == 0 ? 0x6420u : 0x7531u);
      }
    }
    const int64_t e = (u / 8) * static_cast<int64_t>(kQK_K) + 4 * t;
    EMBER_UNROLL
    for (int h = 0; h < 2; ++h) {
      EMBER_UNROLL
      for (int qq = 0; qq < 4; ++qq) {
        float v[kGemvRows][4], scale[kGemvRows];
        EMBER_UNROLL
        for (int r = 0; r < kGemvRows; ++r) {
          const uint32_t q =
              ((ql[r][h][qq % 2] >> (4 * (qq / 2))) & 0x0F0F0F0Fu) | (((qh[r][h] >> (2 * qq)) & 0x03030303u) << 4);
          EMBER_UNROLL
          for (int n = 0; n < 4; ++n) v[r][n] = byte_value<32>(q, n);
          scale[r] = d[r] * byte_value<128>(sc[r][h] ^ 0x80808080u, qq);  // int8 + 128: unsigned bytes
        }
        float s[kGemvRows][M] = {};  // Σ (q - 32) · x over the 4 elements of one scale
        dot4<M>(x, k, e + 128 * h + 32 * qq, v, s);
        scale_add<M>(scale, s, acc);
      }
    }
  }
};

// Q2_K unit: an eighth of a block. Unit u is t = u % 8 of block u / 8 and holds qs words t and
// 8 + t (bytes l = 4t + n of both 32-byte halves h): element 128h + 32p + l is bits 2p of
// qs[32h + l], with scale byte scales[8h + 2p + t / 4] (scale low nibble, min high nibble). Blocks
// are 84 bytes: 4-byte aligned words.
struct GemvQ2_K {
  static constexpr int kUnitElems = 32;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int t = u % 8;
    float d[kGemvRows], dmin[kGemvRows];
    uint32_t q[kGemvRows][2], sc[kGemvRows][2];  // sc[r][h]: byte p the scale byte of plane p
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint32_t* b = reinterpret_cast<const uint32_t*>(w[r] + (u / 8) * sizeof(BlockQ2_K));
      const uint32_t dm = __ldg(b + offsetof(BlockQ2_K, d) / 4);
      d[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(dm & 0xFFFF)));
      dmin[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(dm >> 16)));
      EMBER_UNROLL
      for (int h = 0; h < 2; ++h) {
        q[r][h] = __ldg(b + offsetof(BlockQ2_K, qs) / 4 + 8 * h + t);
        // The half's 8 scale bytes; plane p's is byte 2p + t / 4: bytes {0, 2, 4, 6} or {1, 3, 5, 7}.
        sc[r][h] = __byte_perm(__ldg(b + 2 * h), __ldg(b + 2 * h + 1), t / 4 == 0 ? 0x6420u : 0x7531u);
      }
    }
    const int64_t e = (u / 8) * static_cast<int64_t>(kQK_K) + 4 * t;
    // The halves not unrolled: hoisting both halves' x loads spilled at the M = 2 and 4 budgets.
    EMBER_NO_UNROLL
    for (int h = 0; h < 2; ++h) {
      EMBER_UNROLL
      for (int p = 0; p < 4; ++p) {
        float v[kGemvRows][4];
        EMBER_UNROLL
        for (int r = 0; r < kGemvRows; ++r) {
          // (selects, not indices: h is a runtime value here, and an indexed array would live in memory)
          const uint32_t s = ((h == 0 ? sc[r][0] : sc[r][1]) >> (8 * p)) & 0xFF;
          const uint32_t codes = ((h == 0 ? q[r][0] : q[r][1]) >> (2 * p)) & 0x03030303u;
          const float dl = d[r] * byte_value<0>(s & 0x0F, 0), ml = dmin[r] * byte_value<0>(s >> 4, 0);
          EMBER_UNROLL
          for (int n = 0; n < 4; ++n) v[r][n] = fmaf(dl, byte_value<0>(codes, n), -ml);
        }
        dot4<M>(x, k, e + 128 * h + 32 * p, v, acc);
      }
    }
  }
};

// Q3_K unit: an eighth of a block, as Q2_K's (bytes l = 4t + n of qs's halves h), plus hmask bytes
// l: element 128h + 32p + l is (qs[32h + l] >> 2p) & 3, minus 4 unless bit 4h + p of hmask[l] is
// set, with scale q3_k_scale(8h + 2p + t / 4). Blocks are 110 bytes: 2-byte aligned.
struct GemvQ3_K {
  static constexpr int kUnitElems = 32;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int t = u % 8;
    float d[kGemvRows];
    uint32_t q[kGemvRows][2], hm[kGemvRows], sc[kGemvRows][2];  // sc[r][h]: byte p plane p's scale + 32
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint8_t* b = w[r] + (u / 8) * sizeof(BlockQ3_K);
      d[r] = ld_f16(b + offsetof(BlockQ3_K, d));
      hm[r] = ld_u32_a2(b + offsetof(BlockQ3_K, hmask) + 4 * t);
      EMBER_UNROLL
      for (int h = 0; h < 2; ++h) q[r][h] = ld_u32_a2(b + offsetof(BlockQ3_K, qs) + 32 * h + 4 * t);
      // Scale i = 8h + 2p + t / 4 (q3_k_scale): low nibble h of packed[2p + t / 4], high 2 bits at
      // 2(2h + p / 2) of packed[8 + (2p + t / 4) % 4], i.e. bytes t / 4 (p even) or 2 + t / 4 (odd).
      const uint8_t* packed = b + offsetof(BlockQ3_K, scales);
      const uint32_t low = __byte_perm(ld_u32_a2(packed), ld_u32_a2(packed + 4), t / 4 == 0 ? 0x6420u : 0x7531u);
      const uint32_t high = __byte_perm(ld_u32_a2(packed + 8), 0, t / 4 == 0 ? 0x2020u : 0x3131u);
      EMBER_UNROLL
      for (int h = 0; h < 2; ++h) {
        const uint32_t high_bits = ((high >> (4 * h)) & 0x00000303u) | ((high >> (4 * h + 2)) & 0x03030000u);
        sc[r][h] = ((low >> (4 * h)) & 0x0F0F0F0Fu) | (high_bits << 4);
      }
    }
    const int64_t e = (u / 8) * static_cast<int64_t>(kQK_K) + 4 * t;
    EMBER_UNROLL
    for (int h = 0; h < 2; ++h) {
      EMBER_UNROLL
      for (int p = 0; p < 4; ++p) {
        float v[kGemvRows][4], scale[kGemvRows];
        EMBER_UNROLL
        for (int r = 0; r < kGemvRows; ++r) {
          // Codes 0..7: the two low bits, plus 4 where the hmask bit is set; the value is code - 4.
          const uint32_t code = ((q[r][h] >> (2 * p)) & 0x03030303u) | (((hm[r] >> (4 * h + p)) & 0x01010101u) << 2);
          EMBER_UNROLL
          for (int n = 0; n < 4; ++n) v[r][n] = byte_value<4>(code, n);
          scale[r] = d[r] * byte_value<32>(sc[r][h], p);
        }
        float s[kGemvRows][M] = {};  // Σ value · x over the 4 elements of one scale
        dot4<M>(x, k, e + 128 * h + 32 * p, v, s);
        scale_add<M>(scale, s, acc);
      }
    }
  }
};

// IQ4_XS unit: an eighth of a block, as Q4_K's: unit u is t = u % 8 of block u / 8 and holds qs
// words t + 8g (g < 4; qs at byte 8 of the 136-byte blocks: 4-byte aligned), word t + 8g of
// sub-block 2g + t / 4 (16 bytes each): its bytes n are elements 64g + 32(t / 4) + 4(t % 4) + n
// (low nibbles) and 16 further (high), their levels times the sub-block's d·(ls - 32). The 8 lanes
// on a block read x over 64 consecutive values per g.
struct GemvIQ4_XS {
  static constexpr int kUnitElems = 32;
  static constexpr bool kTightRegisters = false;  // see gemv_min_blocks_for
  template <int M>
  __device__ static void accumulate(const RowPtrs& w, int u, const float* __restrict__ x, int64_t k,
                                    float (&acc)[kGemvRows][M]) {
    const int t = u % 8;
    float d[kGemvRows];
    uint32_t q[kGemvRows][4], scales_l[kGemvRows], scales_h[kGemvRows];
    EMBER_UNROLL
    for (int r = 0; r < kGemvRows; ++r) {
      const uint32_t* b = reinterpret_cast<const uint32_t*>(w[r] + (u / 8) * sizeof(BlockIQ4_XS));
      const uint32_t head = __ldg(b);  // d, scales_h
      d[r] = __half2float(__ushort_as_half(static_cast<unsigned short>(head & 0xFFFF)));
      scales_h[r] = head >> 16;
      scales_l[r] = __ldg(b + offsetof(BlockIQ4_XS, scales_l) / 4);
      EMBER_UNROLL
      for (int g = 0; g < 4; ++g) q[r][g] = __ldg(b + offsetof(BlockIQ4_XS, qs) / 4 + 8 * g + t);
    }
    const int64_t e = (u / 8) * static_cast<int64_t>(kQK_K) + 32 * (t / 4) + 4 * (t % 4);
    EMBER_UNROLL
    for (int g = 0; g < 4; ++g) {
      float lo[kGemvRows][4], hi[kGemvRows][4], dl[kGemvRows];
      EMBER_UNROLL
      for (int r = 0; r < kGemvRows; ++r) {
        // Sub-block ib = 2g + t / 4: nibble ib % 2 of scales_l[ib / 2 = g], bits 2ib of scales_h.
        const uint32_t ls =
            ((scales_l[r] >> (8 * g + 4 * (t / 4))) & 0x0F) | (((scales_h[r] >> (4 * g + 2 * (t / 4))) & 3) << 4);
        dl[r] = d[r] * byte_value<32>(ls, 0);
        const uint32_t lo_l = iq4_levels4(q[r][g] & 0x0F0F0F0Fu) ^ 0x80808080u;  // int8 + 128
        const uint32_t hi_l = iq4_levels4((q[r][g] >> 4) & 0x0F0F0F0Fu) ^ 0x80808080u;
        EMBER_UNROLL
        for (int n = 0; n < 4; ++n) {
          lo[r][n] = byte_value<128>(lo_l, n);
          hi[r][n] = byte_value<128>(hi_l, n);
        }
      }
      float s[kGemvRows][M] = {};  // Σ level · x over the sub-block's 8 values here
      dot4<M>(x, k, e + 64 * g, lo, s);
      dot4<M>(x, k, e + 64 * g + 16, hi, s);
      scale_add<M>(dl, s, acc);
    }
  }
};

// One launch multiplies x by up to kGemvMaxParts matrices of one type and k (q, k and v; gate and
// up): part p's rows take the blocks [first_block[p], first_block[p + 1]). accumulate: y += W·x
// (the residual add fused: y + the sum, the same float operation as gemv then add). bias: y = W·x
// + bias (the same operation as gemv then add). glu: one part, the gate, whose block also runs the
// same rows of glu_up and stores act(gate)·up.
struct GemvPart {
  const uint8_t* w;
  int64_t n_out;
  float* y;           // [M][n_out]
  const float* bias;  // [n_out], or null
};
struct GemvLaunch {
  GemvPart parts[kGemvMaxParts];
  int64_t first_block[kGemvMaxParts + 1];
  int n_parts;
  int accumulate;
  Glu glu;
  const uint8_t* glu_up;  // the up rows (same n_out, row_bytes) when glu != kNone
  int64_t row_bytes;
  const float* x;  // [M][k]
  int64_t k;
  int n_units;
  // gemv_experts (the kExperts kernels, M = 1): blockIdx.y is an entry, whose matrix starts
  // expert_bytes · experts[entry] after the part's (and glu_up's), whose x row is entry / x_group
  // (rows x_stride floats apart) and whose y row is entry (y_stride floats apart).
  const int32_t* experts;
  int64_t expert_bytes;
  int32_t n_expert;
  int32_t x_group;
  int64_t x_stride;
  int64_t y_stride;
};

// Σ over k of rows [row0, row0 + kGemvRows) of w (n_out rows) times the M rows of x: threads stride
// over the n_units units of the rows, then a warp and a block reduction (fixed order:
// deterministic). Thread t < kGemvRows·M returns the sum of row t / M, x row t % M; the others 0.
template <class Type, int M>
__device__ __forceinline__ float block_rows_dot(const uint8_t* __restrict__ w, int64_t row_bytes, int64_t n_out,
                                                int64_t row0, const float* __restrict__ x, int64_t k, int n_units,
                                                float (&partial)[kGemvWarps][kGemvRows * M]) {
  RowPtrs rows;  // an odd n_out's last block reads its last row twice and writes it once
  EMBER_UNROLL
  for (int r = 0; r < kGemvRows; ++r) rows[r] = w + (row0 + r < n_out ? row0 + r : n_out - 1) * row_bytes;
  float acc[kGemvRows][M] = {};
  // Not unrolled: a unit's loads already fill the register budget (other warps hide the latency).
  EMBER_NO_UNROLL
  for (int u = static_cast<int>(threadIdx.x); u < n_units; u += kGemvThreads) {
    Type::template accumulate<M>(rows, u, x, k, acc);
  }
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  EMBER_UNROLL
  for (int r = 0; r < kGemvRows; ++r) {
    EMBER_UNROLL
    for (int m = 0; m < M; ++m) {
      const float v = warp_sum(acc[r][m]);
      if (lane == 0) partial[warp][r * M + m] = v;
    }
  }
  __syncthreads();
  float sum = 0.0f;
  if (threadIdx.x < kGemvRows * M) {
    for (int i = 0; i < kGemvWarps; ++i) sum += partial[i][threadIdx.x];
  }
  return sum;
}

// y [M][n_out] of one part for its rows [kGemvRows · block, +kGemvRows): the same sums whichever
// parts share the launch. kGlu (a.glu != kNone): also the up rows, act(gate)·up stored (a template
// flag, so the plain kernels keep their registers: a second pass in them made Q6_K spill).
template <class Type, int M, bool kGlu, bool kExperts>
__global__ void __launch_bounds__(kGemvThreads, gemv_min_blocks_for<Type>(M)) gemv_kernel(const GemvLaunch a) {
  // The block's part, read with constant indices only: indexing the parameter arrays with p would
  // copy them to local memory (a stack frame, and spills in the Q6_K kernels).
  static_assert(kGemvMaxParts == 3);
  static_assert(gemv_min_blocks_for<Type>(M) >= 1);  // (also uses kTightRegisters where __launch_bounds__ is not)
  const auto block = static_cast<int64_t>(blockIdx.x);
  const int p =
      (a.n_parts > 1 && block >= a.first_block[1] ? 1 : 0) + (a.n_parts > 2 && block >= a.first_block[2] ? 1 : 0);
  const auto pick = [p](const auto& v0, const auto& v1, const auto& v2) { return p == 0 ? v0 : p == 1 ? v1 : v2; };
  const int64_t n_out = pick(a.parts[0].n_out, a.parts[1].n_out, a.parts[2].n_out);
  const int64_t row0 = (block - pick(a.first_block[0], a.first_block[1], a.first_block[2])) * kGemvRows;
  const uint8_t* w = pick(a.parts[0].w, a.parts[1].w, a.parts[2].w);
  const uint8_t* w_up = a.glu_up;
  const float* x = a.x;
  float* y = pick(a.parts[0].y, a.parts[1].y, a.parts[2].y);
  if constexpr (kExperts) {
    static_assert(M == 1);
    const auto entry = static_cast<int64_t>(blockIdx.y);
    const int32_t expert = a.experts[entry];
    if (expert < 0 || expert >= a.n_expert) __trap();  // a broken invariant: never read outside the experts
    w += expert * a.expert_bytes;
    if constexpr (kGlu) w_up += expert * a.expert_bytes;
    x += entry / a.x_group * a.x_stride;
    y += entry * a.y_stride;
  }
  __shared__ float partial[kGemvWarps][kGemvRows * M];
  const float sum = block_rows_dot<Type, M>(w, a.row_bytes, n_out, row0, x, a.k, a.n_units, partial);
  float up = 0.0f;
  if constexpr (kGlu) {
    __syncthreads();  // every sum of the gate read before partial takes the up rows'
    up = block_rows_dot<Type, M>(w_up, a.row_bytes, n_out, row0, x, a.k, a.n_units, partial);
  }
  const int r = static_cast<int>(threadIdx.x) / M, m = static_cast<int>(threadIdx.x) % M;
  if (threadIdx.x < kGemvRows * M && row0 + r < n_out) {
    float* out = y + m * n_out + row0 + r;
    if constexpr (kGlu) {
      *out = a.glu == Glu::kSilu ? silu(sum) * up : gelu_tanh(sum) * up;
    } else {
      const float* bias = pick(a.parts[0].bias, a.parts[1].bias, a.parts[2].bias);
      const float v = bias != nullptr ? sum + bias[row0 + r] : sum;
      *out = a.accumulate != 0 ? *out + v : v;
    }
  }
}

template <class Type, int M>
void launch_gemv_m(GemvLaunch a, unsigned grid, cudaStream_t stream) {
  a.n_units = static_cast<int>(a.k / Type::kUnitElems);
  if (a.glu != Glu::kNone) {
    EMBER_CUDA_LAUNCH(grid, kGemvThreads, 0, stream, gemv_kernel<Type, M, true, false>)(a);
  } else {
    EMBER_CUDA_LAUNCH(grid, kGemvThreads, 0, stream, gemv_kernel<Type, M, false, false>)(a);
  }
}

// gemv_experts' launch: grid.y over the n_entries entries.
template <class Type>
void launch_gemv_experts(GemvLaunch a, unsigned grid, int64_t n_entries, cudaStream_t stream) {
  a.n_units = static_cast<int>(a.k / Type::kUnitElems);
  const dim3 blocks(grid, static_cast<unsigned>(n_entries));
  if (a.glu != Glu::kNone) {
    EMBER_CUDA_LAUNCH(blocks, kGemvThreads, 0, stream, gemv_kernel<Type, 1, true, true>)(a);
  } else {
    EMBER_CUDA_LAUNCH(blocks, kGemvThreads, 0, stream, gemv_kernel<Type, 1, false, true>)(a);
  }
}

// m rows (1 to kGemvMaxRows), or with a.experts set the n_entries = m entries of gemv_experts.
template <class Type>
void launch_gemv(const GemvLaunch& a, unsigned grid, int64_t m, cudaStream_t stream) {
  if (a.experts != nullptr) return launch_gemv_experts<Type>(a, grid, m, stream);
  switch (m) {
    case 1: return launch_gemv_m<Type, 1>(a, grid, stream);
    case 2: return launch_gemv_m<Type, 2>(a, grid, stream);
    case 3: return launch_gemv_m<Type, 3>(a, grid, stream);
    case 4: return launch_gemv_m<Type, 4>(a, grid, stream);
    case 5: return launch_gemv_m<Type, 5>(a, grid, stream);
    case 6: return launch_gemv_m<Type, 6>(a, grid, stream);
    case 7: return launch_gemv_m<Type, 7>(a, grid, stream);
    case 8: return launch_gemv_m<Type, 8>(a, grid, stream);
    default: EMBER_CUDA_EXPECT(m >= 1 && m <= kGemvMaxRows);
  }
}

// ---- dequantize_f16 ----------------------------------------------------------------------------

// out[8i, 8i + 8) for the n / 8 groups of 8 (n a multiple of the block size; out 16-byte aligned).
template <class Type>
__global__ void dequantize_blocks_f16_kernel(const uint8_t* __restrict__ w, int64_t n_groups,
                                             __half* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_groups;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = 8 * i;
    float v[8];
    Type::values8(w + (e / Type::kBlockElems) * Type::kBlockBytes, static_cast<int>(e % Type::kBlockElems), v);
    uint32_t h[4];  // pairs of f16 bits, the lower element in the low half
    EMBER_UNROLL
    for (int n = 0; n < 4; ++n) {
      h[n] = __half_as_ushort(__float2half_rn(v[2 * n])) |
             (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(v[2 * n + 1]))) << 16);
    }
    *reinterpret_cast<uint4*>(out + e) = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

// out[i] for the n values of a plain type (any n).
template <DType kType>
__global__ void dequantize_plain_f16_kernel(const uint8_t* __restrict__ w, int64_t n, __half* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2half_rn(plain_value<kType>(w, i));
  }
}

template <class Type>
void launch_dequantize_blocks(const uint8_t* w, int64_t n, __half* out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(aligned16(out));
  EMBER_CUDA_LAUNCH(blocks_for(n / 8), kThreads, 0, stream, dequantize_blocks_f16_kernel<Type>)(w, n / 8, out);
}

template <DType kType>
void launch_dequantize_plain(const uint8_t* w, int64_t n, __half* out, cudaStream_t stream) {
  EMBER_CUDA_LAUNCH(blocks_for(n), kThreads, 0, stream, dequantize_plain_f16_kernel<kType>)(w, n, out);
}

__global__ void f32_to_f16_kernel(const float* __restrict__ x, int64_t n, __half* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2half_rn(__ldg(x + i));
  }
}

}  // namespace

bool matmul_supports(DType dtype) noexcept {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_NL:
    case DType::kIQ4_XS: return true;
    default: return false;
  }
}

namespace {

// gemv_experts' indirection (GemvLaunch's fields of the same names; strides 0: k and n_out).
struct GemvExperts {
  const int32_t* experts;
  int64_t expert_bytes;
  int32_t n_expert;
  int32_t x_group;
  int64_t x_stride;
  int64_t y_stride;
};

// The parts' GEMVs in one launch (see GemvLaunch); with `experts`, m is the number of entries.
void gemv_parts(std::span<const DeviceMatrix> ws, const float* x, int64_t m, std::span<float* const> ys,
                std::span<const float* const> biases, bool accumulate, Glu glu, const void* glu_up, cudaStream_t stream,
                const GemvExperts* experts = nullptr) {
  EMBER_CUDA_EXPECT(!ws.empty() && ws.size() <= static_cast<size_t>(kGemvMaxParts) && ws.size() == ys.size());
  EMBER_CUDA_EXPECT(biases.empty() || (biases.size() == ws.size() && !accumulate && glu == Glu::kNone));
  EMBER_CUDA_EXPECT(m >= 0 && m <= (experts != nullptr ? kMaxGridY : kGemvMaxRows));
  EMBER_CUDA_EXPECT(experts == nullptr ||
                    (ws.size() == 1 && !accumulate && experts->n_expert >= 1 && experts->x_group >= 1));
  for (const DeviceMatrix& w : ws) EMBER_CUDA_EXPECT(w.n_out >= 0 && w.k >= 0 && w.n_out <= INT_MAX);
  if (m == 0) return;
  const DeviceMatrix& w0 = ws[0];
  GemvLaunch a{};
  int64_t blocks = 0;
  bool all_aligned = true, any_aligned = false;
  for (size_t i = 0; i < ws.size(); ++i) {
    const DeviceMatrix& w = ws[i];
    EMBER_CUDA_EXPECT_MSG(w.dtype == w0.dtype && w.k == w0.k, "gemv_many: the matrices differ in type or k");
    if (w.n_out == 0) continue;
    EMBER_CUDA_EXPECT(w.data != nullptr && ys[i] != nullptr);
    all_aligned = all_aligned && aligned16(w.data);
    any_aligned = any_aligned || aligned16(w.data);
    a.parts[a.n_parts] = {static_cast<const uint8_t*>(w.data), w.n_out, ys[i], biases.empty() ? nullptr : biases[i]};
    a.first_block[a.n_parts] = blocks;
    blocks += (w.n_out + kGemvRows - 1) / kGemvRows;
    ++a.n_parts;
  }
  if (a.n_parts == 0) return;
  a.first_block[a.n_parts] = blocks;
  EMBER_CUDA_EXPECT(matmul_supports(w0.dtype) && w0.k % dtype_traits(w0.dtype).block_size == 0);
  EMBER_CUDA_EXPECT(w0.k <= INT_MAX && blocks <= INT_MAX);
  a.accumulate = accumulate ? 1 : 0;
  a.glu = glu;
  a.glu_up = static_cast<const uint8_t*>(glu_up);
  if (glu != Glu::kNone) {
    EMBER_CUDA_EXPECT(a.n_parts == 1 && ws.size() == 1 && !accumulate && glu_up != nullptr);
    all_aligned = all_aligned && aligned16(glu_up);
    any_aligned = any_aligned || aligned16(glu_up);
    if (reads_words(w0.dtype)) EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(glu_up) % 4 == 0);
  }
  a.row_bytes = static_cast<int64_t>(*dtype_bytes_for(w0.dtype, static_cast<uint64_t>(w0.k)));
  a.x = x;
  a.k = w0.k;
  if (experts != nullptr) {
    a.experts = experts->experts;
    a.expert_bytes = experts->expert_bytes;
    a.n_expert = experts->n_expert;
    a.x_group = experts->x_group;
    a.x_stride = experts->x_stride != 0 ? experts->x_stride : w0.k;
    a.y_stride = experts->y_stride != 0 ? experts->y_stride : w0.n_out;
    EMBER_CUDA_EXPECT(a.experts != nullptr && a.expert_bytes >= w0.n_out * a.row_bytes);
    // Every x row as aligned as the first (the kernel's path holds for all), rows that do not overlap.
    EMBER_CUDA_EXPECT(a.x_stride >= w0.k && a.y_stride >= w0.n_out && (a.x_stride == w0.k || a.x_stride % 4 == 0));
    // Every expert's matrix starts as aligned as the first's: the kernel's path holds for all.
    all_aligned = all_aligned && a.expert_bytes % 16 == 0;
    any_aligned = all_aligned;  // one matrix (per expert): no other to agree with
  }
  const auto grid = static_cast<unsigned>(blocks);
  // Plain types take the vector path when every row and x row starts 16-byte aligned. Its sums split
  // k differently from the scalar path's, so the matrices of one launch must agree on alignment: a
  // matrix alone would otherwise take another path, and other bits, than beside the others.
  // (Where k rules the vector path out, as it does for the rows of a [gate; up] matrix that are not
  // 16-byte aligned, alignment changes nothing.)
  const bool vec_k = w0.k % (w0.dtype == DType::kF32 ? 4 : 8) == 0;
  if (!dtype_traits(w0.dtype).quantized && vec_k) {
    EMBER_CUDA_EXPECT_MSG(all_aligned || !any_aligned, "gemv_many: plain matrices of one launch differ in alignment");
    // A merged tensor's experts are (whole 16-byte rows); another stride would take the scalar
    // path, and other bits than gemv() of the expert alone.
    EMBER_CUDA_EXPECT_MSG(experts == nullptr || a.expert_bytes % 16 == 0,
                          "gemv_experts: a plain expert stride not 16-byte aligned");
  }
  const bool vec4 = w0.k % 4 == 0 && all_aligned && aligned16(x);
  const bool vec8 = w0.k % 8 == 0 && all_aligned && aligned16(x);
  // The quantized kernels read x as float4 (k is a multiple of 32) and some blocks as 4-byte words
  // (reads_words); the other blocks only need their natural 2-byte alignment.
  if (dtype_traits(w0.dtype).quantized) EMBER_CUDA_EXPECT(aligned16(x));
  if (reads_words(w0.dtype)) {
    for (int i = 0; i < a.n_parts; ++i) EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(a.parts[i].w) % 4 == 0);
    EMBER_CUDA_EXPECT(a.expert_bytes % 4 == 0);  // (whole rows of these blocks always are)
  }
  // Every expert's blocks as aligned as expert 0's (2 bytes: the blocks' f16 fields; F32's floats).
  EMBER_CUDA_EXPECT(a.expert_bytes % (w0.dtype == DType::kF32 ? 4 : 2) == 0);
  switch (w0.dtype) {
    case DType::kF32:
      vec4 ? launch_gemv<GemvF32>(a, grid, m, stream) : launch_gemv<GemvPlainScalar<DType::kF32>>(a, grid, m, stream);
      break;
    case DType::kF16:
      vec8 ? launch_gemv<GemvHalf<false>>(a, grid, m, stream)
           : launch_gemv<GemvPlainScalar<DType::kF16>>(a, grid, m, stream);
      break;
    case DType::kBF16:
      vec8 ? launch_gemv<GemvHalf<true>>(a, grid, m, stream)
           : launch_gemv<GemvPlainScalar<DType::kBF16>>(a, grid, m, stream);
      break;
    case DType::kQ4_0: launch_gemv<GemvNibbles<FormatQ4_0>>(a, grid, m, stream); break;
    case DType::kQ4_1: launch_gemv<GemvNibbles<FormatQ4_1>>(a, grid, m, stream); break;
    case DType::kQ5_0: launch_gemv<GemvNibbles<FormatQ5_0>>(a, grid, m, stream); break;
    case DType::kQ5_1: launch_gemv<GemvNibbles<FormatQ5_1>>(a, grid, m, stream); break;
    case DType::kIQ4_NL: launch_gemv<GemvNibbles<FormatIQ4_NL>>(a, grid, m, stream); break;
    case DType::kIQ4_XS: launch_gemv<GemvIQ4_XS>(a, grid, m, stream); break;
    case DType::kQ2_K: launch_gemv<GemvQ2_K>(a, grid, m, stream); break;
    case DType::kQ3_K: launch_gemv<GemvQ3_K>(a, grid, m, stream); break;
    case DType::kQ8_0: launch_gemv<GemvQ8_0>(a, grid, m, stream); break;
    case DType::kQ4_K: launch_gemv<GemvQ4Q5_K<false>>(a, grid, m, stream); break;
    case DType::kQ5_K: launch_gemv<GemvQ4Q5_K<true>>(a, grid, m, stream); break;
    case DType::kQ6_K: launch_gemv<GemvQ6_K>(a, grid, m, stream); break;
    default: EMBER_CUDA_EXPECT(matmul_supports(w0.dtype));
  }
  EMBER_CUDA_CHECK_LAUNCH("gemv");
}

}  // namespace

void gemv(const DeviceMatrix& w, const float* x, int64_t m, float* y, cudaStream_t stream) {
  gemv_parts({&w, 1}, x, m, {&y, 1}, {}, false, Glu::kNone, nullptr, stream);
}

void gemv_experts(const DeviceMatrix& w, int64_t expert_bytes, int32_t n_expert, const int32_t* experts,
                  int64_t n_entries, const float* x, int32_t x_group, float* y, cudaStream_t stream, int64_t x_stride,
                  int64_t y_stride) {
  const GemvExperts e{experts, expert_bytes, n_expert, x_group, x_stride, y_stride};
  gemv_parts({&w, 1}, x, n_entries, {&y, 1}, {}, false, Glu::kNone, nullptr, stream, &e);
}

void gemv_experts_glu(const DeviceMatrix& gate, const DeviceMatrix& up, int64_t expert_bytes, int32_t n_expert, Glu act,
                      const int32_t* experts, int64_t n_entries, const float* x, int32_t x_group, float* y,
                      cudaStream_t stream) {
  EMBER_CUDA_EXPECT(act != Glu::kNone && up.dtype == gate.dtype && up.k == gate.k && up.n_out == gate.n_out);
  const GemvExperts e{experts, expert_bytes, n_expert, x_group, 0, 0};
  gemv_parts({&gate, 1}, x, n_entries, {&y, 1}, {}, false, act, up.data, stream, &e);
}

void gemv_many(std::span<const DeviceMatrix> ws, const float* x, int64_t m, std::span<float* const> ys,
               std::span<const float* const> biases, cudaStream_t stream) {
  gemv_parts(ws, x, m, ys, biases, false, Glu::kNone, nullptr, stream);
}

void gemv_accumulate(const DeviceMatrix& w, const float* x, int64_t m, float* y, cudaStream_t stream) {
  gemv_parts({&w, 1}, x, m, {&y, 1}, {}, true, Glu::kNone, nullptr, stream);
}

void gemv_glu(const DeviceMatrix& gate, const DeviceMatrix& up, Glu act, const float* x, int64_t m, float* y,
              cudaStream_t stream) {
  EMBER_CUDA_EXPECT(act != Glu::kNone);
  EMBER_CUDA_EXPECT_MSG(up.dtype == gate.dtype && up.k == gate.k && up.n_out == gate.n_out,
                        "gemv_glu: gate and up differ in type or shape");
  gemv_parts({&gate, 1}, x, m, {&y, 1}, {}, false, act, up.data, stream);
}

void dequantize_f16(const DeviceMatrix& w, __half* out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(w.n_out >= 0 && w.k >= 0);
  if (w.n_out == 0 || w.k == 0) return;
  EMBER_CUDA_EXPECT(matmul_supports(w.dtype) && w.k % dtype_traits(w.dtype).block_size == 0);
  // The matrix is n_out · k values of whole blocks back to back: dequantize it as one flat row.
  const int64_t n = w.n_out * w.k;
  const auto* data = static_cast<const uint8_t*>(w.data);
  switch (w.dtype) {
    case DType::kF32: launch_dequantize_plain<DType::kF32>(data, n, out, stream); break;
    case DType::kF16: launch_dequantize_plain<DType::kF16>(data, n, out, stream); break;
    case DType::kBF16: launch_dequantize_plain<DType::kBF16>(data, n, out, stream); break;
    default: {
      const bool blocks =
          with_block_values(w.dtype, [&]<class Type>(Type) { launch_dequantize_blocks<Type>(data, n, out, stream); });
      EMBER_CUDA_EXPECT(blocks);  // a type of matmul_supports
    }
  }
  EMBER_CUDA_CHECK_LAUNCH("dequantize_f16");
}

void f32_to_f16(const float* x, __half* out, int64_t n, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n >= 0);
  if (n == 0) return;
  EMBER_CUDA_LAUNCH(blocks_for(n), kThreads, 0, stream, f32_to_f16_kernel)(x, n, out);
  EMBER_CUDA_CHECK_LAUNCH("f32_to_f16");
}

}  // namespace ember::cuda
