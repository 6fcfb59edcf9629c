// The int8 prefill GEMM of cuda_kernels.h: activations quantized per 32 values as the CPU's Q8_1
// (its Q8_0 values and d, plus s = d·Σq), then int8 tensor cores (mma.sync m16n8k32, or two
// m16n8k16 for 16-value scales) on the weights' own blocks: each 32 values' exact integer sum
// scaled by both scales, plus the weights' min times the activations' sum for the formats with one
// (Q2_K: its mins per 16 values as a second int8 operand).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cuda/block_loads.h"
#include "cuda/block_values.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/mma.h"
#include "cuda/q8_0_quantize.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"

namespace ember::cuda {
namespace {

constexpr int kBlockValues = kInt8GemmBlock;  // one activation block = one weight (sub-)block = one mma k
static_assert(kQK4_0 == kBlockValues && kQK5_0 == kBlockValues && kQK8_0 == kBlockValues && kQK4_NL == kBlockValues);
static_assert(kQK4_1 == kBlockValues && kQK5_1 == kBlockValues && kQK_K % kBlockValues == 0);

// ---- quantize_q8_1_rows: one warp per 32-value block ---------------------------------------------

constexpr int kQuantizeThreads = 256;
constexpr int64_t kQuantizeMaxBlocks = 8192;

__global__ void quantize_q8_1_rows_kernel(const float* __restrict__ x, int64_t n_blocks, int8_t* __restrict__ q,
                                          float* __restrict__ d, float* __restrict__ s, float* __restrict__ sum_d) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kQuantizeThreads / 32);
  // The loop bound is the same for the whole warp, as quantize_q8_0_lane's shuffles need.
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * (kQuantizeThreads / 32) + threadIdx.x / 32; b < n_blocks;
       b += warps) {
    const Q8_0Lane v = quantize_q8_0_lane(__ldg(x + b * kBlockValues + lane));
    q[b * kBlockValues + lane] = v.q;
    const int sum = warp_sum(static_cast<int>(v.q));
    if (lane == 0) {  // the CPU's stored f16 d and s (|sum| <= 4064: exact as a float)
      d[b] = __half2float(__float2half_rn(v.scale));
      s[b] = __half2float(__float2half_rn(__fmul_rn(static_cast<float>(sum), v.scale)));
      sum_d[b] = __fmul_rn(d[b], static_cast<float>(sum));
    }
  }
}

// ---- weight blocks as int8 ------------------------------------------------------------------------

// Four bytes each below 128 minus kBias each, as four signed bytes: lifting every byte by 128 first
// keeps a borrow from crossing into the next byte.
template <uint32_t kBias>
__device__ __forceinline__ uint32_t minus_per_byte(uint32_t v) {
  return ((v | 0x80808080u) - kBias * 0x01010101u) ^ 0x80808080u;
}

// One 32-value (sub-)block of weights as d·v + m (v the int8 values; m = 0 without kMin); with
// kScales16, value l is (d·scale)·v, scale the int16 in the low half of `halves` for l < 16, else
// the high half's; with kMins16, d·v + m·min, min byte 0 of `halves` for l < 16, else byte 1.
struct SubBlockScales {
  float d, m;
  uint32_t halves = 0;
};

// Each type: kBlockBytes, kBlockValues (32, or a 256-value super-block of 8 sub-blocks), kMin,
// kQ8_1s (the min multiplies Q8_1's f16 s as on the CPU, else the float d·Σq, which cannot
// overflow), kScales16, kMins16 (Q2_K's integer min per 16 values, times m), and
// decode(block, sub, words), which writes sub-block `sub`'s 32 values as signed bytes in value
// order (four per word, the lowest in the low byte) and returns its scales; value = d·v + m with
// the CPU dequantizer's d and m (Q4_K's m is -dmin·min).
template <class F>  // code - kBias, IQ4_NL's level (an int8), or Q4_1 / Q5_1's code (with their m)
struct Int8Nibbles {
  static constexpr int kBlockBytes = sizeof(typename F::Block), kBlockValues = 32;
  static constexpr bool kMin = F::kMin, kQ8_1s = F::kMin, kScales16 = false, kMins16 = false;
  __device__ static uint32_t values(uint32_t codes) {
    if constexpr (F::kCodebook) {
      return iq4_levels4(codes);
    } else {
      return minus_per_byte<F::kBias>(codes);
    }
  }
  __device__ static SubBlockScales decode(const uint8_t* b, int /*sub*/, uint32_t (&words)[8]) {
    EMBER_UNROLL
    for (int c = 0; c < 4; ++c) {
      uint32_t low, high;
      nibble_codes<F>(b, c, low, high);
      words[c] = values(low);
      words[c + 4] = values(high);
    }
    if constexpr (kMin) return {ld_f16(b), ld_f16(b + offsetof(typename F::Block, m))};
    return {ld_f16(b), 0.0f};
  }
};

struct Int8Q8_0 {
  static constexpr int kBlockBytes = sizeof(BlockQ8_0), kBlockValues = 32;
  static constexpr bool kMin = false, kQ8_1s = false, kScales16 = false, kMins16 = false;
  __device__ static SubBlockScales decode(const uint8_t* b, int /*sub*/, uint32_t (&words)[8]) {
    EMBER_UNROLL
    for (int i = 0; i < 8; ++i) words[i] = ld_u32_a2(b + offsetof(BlockQ8_0, qs) + 4 * i);
    return {ld_f16(b), 0.0f};
  }
};

// Q4_K / Q5_K sub-block j: value l is nibble j % 2 of qs[32 (j / 2) + l] (Q5_K: bit j of qh[l] its
// 5th bit), d = d·scale_j, m = -(dmin·min_j), as dequantize_row_q4_k.
template <bool kHigh>
struct Int8Q4Q5_K {
  using Block = std::conditional_t<kHigh, BlockQ5_K, BlockQ4_K>;
  static constexpr int kBlockBytes = sizeof(Block), kBlockValues = kQK_K;
  static constexpr bool kMin = true, kQ8_1s = false, kScales16 = false, kMins16 = false;
  __device__ static SubBlockScales decode(const uint8_t* b, int j, uint32_t (&words)[8]) {
    const uint8_t* qs = b + offsetof(Block, qs) + 32 * (j / 2);
    EMBER_UNROLL
    for (int c = 0; c < 8; ++c) {
      uint32_t v = (ld_u32(qs + 4 * c) >> (4 * (j % 2))) & 0x0F0F0F0Fu;
      if constexpr (kHigh) v |= ((ld_u32(b + offsetof(BlockQ5_K, qh) + 4 * c) >> j) & 0x01010101u) << 4;
      words[c] = v;
    }
    const ScaleAndMin scales = k4_scale_and_min(b, j);
    return {scales.d, -scales.m};
  }
};

// IQ4_XS sub-block ib: an IQ4_NL block's nibbles at qs[16 ib], d = iq4_xs_scale.
struct Int8IQ4_XS {
  static constexpr int kBlockBytes = sizeof(BlockIQ4_XS), kBlockValues = kQK_K;
  static constexpr bool kMin = false, kQ8_1s = false, kScales16 = false, kMins16 = false;
  __device__ static SubBlockScales decode(const uint8_t* b, int ib, uint32_t (&words)[8]) {
    const uint8_t* qs = b + offsetof(BlockIQ4_XS, qs) + 16 * ib;
    EMBER_UNROLL
    for (int c = 0; c < 4; ++c) {
      const uint32_t q = ld_u32(qs + 4 * c);
      words[c] = iq4_levels4(q & 0x0F0F0F0Fu);
      words[c + 4] = iq4_levels4((q >> 4) & 0x0F0F0F0Fu);
    }
    return {iq4_xs_scale(b, ib), 0.0f};
  }
};

// Two int8 scales (Q6_K's int8, Q3_K's 6 bits - 32) as SubBlockScales::halves.
__device__ __forceinline__ uint32_t scale_halves(int lo, int hi) {
  return (static_cast<uint32_t>(lo) & 0xFFFFu) | static_cast<uint32_t>(hi) << 16;
}

// Q6_K sub-block j = 4h + qq: value l is nibble qq / 2 of ql[64h + 32 (qq % 2) + l] with bits 2qq
// of qh[32h + l] above it, minus 32; scales[8h + 2qq] for l < 16, the next one after (DequantQ6_K).
struct Int8Q6_K {
  static constexpr int kBlockBytes = sizeof(BlockQ6_K), kBlockValues = kQK_K;
  static constexpr bool kMin = false, kQ8_1s = false, kScales16 = true, kMins16 = false;
  __device__ static SubBlockScales decode(const uint8_t* b, int j, uint32_t (&words)[8]) {
    const int h = j / 4, qq = j % 4;
    const uint8_t* ql = b + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (qq % 2);
    const uint8_t* qh = b + offsetof(BlockQ6_K, qh) + 32 * h;
    EMBER_UNROLL
    for (int c = 0; c < 8; ++c) {  // 210-byte blocks: 2-byte aligned
      const uint32_t low = (ld_u32_a2(ql + 4 * c) >> (4 * (qq / 2))) & 0x0F0F0F0Fu;
      const uint32_t high = (ld_u32_a2(qh + 4 * c) >> (2 * qq)) & 0x03030303u;
      words[c] = minus_per_byte<32>(low | high << 4);
    }
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + offsetof(BlockQ6_K, scales)) + 8 * h + 2 * qq;
    return {ld_f16(b + offsetof(BlockQ6_K, d)), 0.0f, scale_halves(__ldg(scales), __ldg(scales + 1))};
  }
};

// Q3_K sub-block j = 4h + p: value l is bits 2p of qs[32h + l], minus 4 unless bit j of hmask[l]
// is set; q3_k_scale(2j) for l < 16, q3_k_scale(2j + 1) after (DequantQ3_K).
struct Int8Q3_K {
  static constexpr int kBlockBytes = sizeof(BlockQ3_K), kBlockValues = kQK_K;
  static constexpr bool kMin = false, kQ8_1s = false, kScales16 = true, kMins16 = false;
  __device__ static SubBlockScales decode(const uint8_t* b, int j, uint32_t (&words)[8]) {
    const uint8_t* qs = b + offsetof(BlockQ3_K, qs) + 32 * (j / 4);
    EMBER_UNROLL
    for (int c = 0; c < 8; ++c) {  // 110-byte blocks: 2-byte aligned
      const uint32_t low = (ld_u32_a2(qs + 4 * c) >> (2 * (j % 4))) & 0x03030303u;
      const uint32_t keep = (ld_u32_a2(b + offsetof(BlockQ3_K, hmask) + 4 * c) >> j) & 0x01010101u;
      words[c] = minus_per_byte<4>(low | keep << 2);  // low - 4, or low where the bit is set
    }
    const uint8_t* scales = b + offsetof(BlockQ3_K, scales);
    return {ld_f16(b + offsetof(BlockQ3_K, d)), 0.0f,
            scale_halves(q3_k_scale(scales, 2 * j), q3_k_scale(scales, 2 * j + 1))};
  }
};

// Q2_K sub-block j = 4h + p: value l is bits 2p of qs[32h + l] times the low nibble of scales[2j]
// for l < 16, of scales[2j + 1] after (at most 3 · 15: still an int8), d = d, m = -dmin; the
// scales' high nibbles are the 16 values' mins (value = d·v - dmin·min, DequantQ2_K), as the low
// and high bytes of SubBlockScales::halves.
struct Int8Q2_K {
  static constexpr int kBlockBytes = sizeof(BlockQ2_K), kBlockValues = kQK_K;
  static constexpr bool kMin = false, kQ8_1s = false, kScales16 = false, kMins16 = true;
  __device__ static SubBlockScales decode(const uint8_t* b, int j, uint32_t (&words)[8]) {
    const uint8_t* qs = b + offsetof(BlockQ2_K, qs) + 32 * (j / 4);
    const uint32_t lo = ld_u8(b + offsetof(BlockQ2_K, scales) + 2 * j);
    const uint32_t hi = ld_u8(b + offsetof(BlockQ2_K, scales) + 2 * j + 1);
    EMBER_UNROLL
    for (int c = 0; c < 8; ++c) {  // bytes of at most 3 times a 4-bit scale: no carry between them
      words[c] = ((ld_u32(qs + 4 * c) >> (2 * (j % 4))) & 0x03030303u) * ((c < 4 ? lo : hi) & 0x0Fu);
    }
    return {ld_f16(b + offsetof(BlockQ2_K, d)), -ld_f16(b + offsetof(BlockQ2_K, dmin)), (lo >> 4) | (hi >> 4) << 8};
  }
};

// ---- the GEMM ---------------------------------------------------------------------------------------
//
// One block of 4 warps per (64 activation rows, 64 weight rows) tile of y. Per step it stages 4
// blocks (128 values of k) of both in shared memory as int8 with their scales; each warp then runs
// its 32×32 of the tile as 2×4 mma.sync m16n8k32 (or twice as many m16n8k16; Q2_K: a second
// m16n8k32 each for its mins) per block of k and adds each s32 result times w's d · x's d (plus
// w's m · x's sum) to its float accumulators: per
// output, the blocks' terms in k order, as the CPU's vec_dot_*_q8_0 and vec_dot_*_q8_1 (bit for bit
// for those types). blockIdx.x walks the activation tiles, so consecutive blocks share a weight
// tile (read from memory once, then from L2), and the step's int8 activations (m·k bytes) are read
// from L2.

constexpr int kGemmThreads = 128;
// Resident blocks per SM the kernel is compiled for: a 128-register budget (ptxas's own choice,
// 168, holds only 3 blocks of 4 warps per SM) without spills (-Xptxas -v, sm_80 and sm_90); the
// formats with a min or with 16-value scales need more (at 128 they spilled 8-40 bytes), so 3.
// (maybe_unused: the emulator drops __launch_bounds__)
template <class Type>
[[maybe_unused]] constexpr int kGemmMinBlocks = Type::kMin || Type::kScales16 || Type::kMins16 ? 3 : 4;
constexpr int kTileRows = 64;                           // activation rows (m) per block
constexpr int kTileCols = 64;                           // weight rows (n) per block
constexpr int kStepBlocks = 4;                          // k blocks staged per step
constexpr int kStepBytes = kStepBlocks * kBlockValues;  // per row and step
constexpr int kRowStride = kStepBytes + 16;             // bytes: a fragment's 32 words hit 32 banks
static_assert(kRowStride % 16 == 0 && (kRowStride / 4) % 32 == 4);

// float(s) for |s| < 2^22 without the int -> float conversion (16 per clock per SM on sm_80 and
// sm_90, a quarter to an eighth of the float rate): the bits 0x4B400000 + s are the float
// 1.5·2^23 + s, exactly.
__device__ __forceinline__ float small_int_to_float(int32_t s) { return __int_as_float(0x4B400000 + s) - 12582912.0f; }

template <class Type>
__global__ void __launch_bounds__(kGemmThreads, kGemmMinBlocks<Type>)
    int8_gemm_kernel(const uint8_t* __restrict__ w, int64_t n_out, int64_t k, const int8_t* __restrict__ xq,
                     const float* __restrict__ xd, const float* __restrict__ xs, int64_t m, float* __restrict__ y) {
  __shared__ __align__(16) uint8_t x_s[kTileRows * kRowStride];
  __shared__ __align__(16) uint8_t w_s[kTileCols * kRowStride];
  __shared__ float xd_s[kTileRows][kStepBlocks];
  __shared__ float wd_s[kTileCols][kStepBlocks];
  // Only with Type::kMin: x's sum (Q8_1's s, or d·Σq) per block; with it or Type::kMins16, w's m.
  constexpr bool kWeightMin = Type::kMin || Type::kMins16;
  __shared__ float xs_s[Type::kMin ? kTileRows : 1][kStepBlocks];
  __shared__ float wm_s[kWeightMin ? kTileCols : 1][kStepBlocks];
  // Only with Type::kScales16 or kMins16: w's two 16-value scales or mins per block (SubBlockScales::halves).
  __shared__ uint32_t wh_s[Type::kScales16 || Type::kMins16 ? kTileCols : 1][kStepBlocks];

  const int tid = static_cast<int>(threadIdx.x);
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const int64_t col0 = static_cast<int64_t>(blockIdx.y) * kTileCols;
  const int64_t k_blocks = k / kBlockValues;
  constexpr int kSubBlocks = Type::kBlockValues / kBlockValues;  // per weight block
  const int64_t row_bytes = k / Type::kBlockValues * Type::kBlockBytes;
  const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int warp_row = 32 * (warp / 2), warp_col = 32 * (warp % 2);

  float acc[2][4][4] = {};  // [16-row half][8-column group][fragment element]
  for (int64_t step0 = 0; step0 < k_blocks; step0 += kStepBlocks) {
    // Activations: 8 chunks of 16 bytes per row; rows past m and blocks past k read as 0.
    EMBER_UNROLL
    for (int i = 0; i < kTileRows * 8 / kGemmThreads; ++i) {
      const int c = tid + i * kGemmThreads, r = c / 8, chunk = c % 8;
      const int64_t row = row0 + r, block = step0 + chunk / 2;
      uint8_t* to = x_s + r * kRowStride + 16 * chunk;
      if (row < m && block < k_blocks) {
        copy16(to, xq + row * k + block * kBlockValues + 16 * (chunk % 2));
      } else {
        store_u32x4(to, 0, 0, 0, 0);
      }
    }
    EMBER_UNROLL
    for (int i = 0; i < kTileRows * kStepBlocks / kGemmThreads; ++i) {
      const int c = tid + i * kGemmThreads, r = c / kStepBlocks, b = c % kStepBlocks;
      const int64_t row = row0 + r, block = step0 + b;
      const bool inside = row < m && block < k_blocks;
      xd_s[r][b] = inside ? __ldg(xd + row * k_blocks + block) : 0.0f;
      if constexpr (Type::kMin) xs_s[r][b] = inside ? __ldg(xs + row * k_blocks + block) : 0.0f;
    }
    // Weights: one (row, block) per thread and pass, decoded to int8; consecutive threads read
    // consecutive blocks of a row.
    EMBER_UNROLL
    for (int i = 0; i < kTileCols * kStepBlocks / kGemmThreads; ++i) {
      const int c = tid + i * kGemmThreads, r = c / kStepBlocks, b = c % kStepBlocks;
      const int64_t col = col0 + r, block = step0 + b;
      uint32_t words[8] = {};
      SubBlockScales scales{0.0f, 0.0f};
      if (col < n_out && block < k_blocks) {
        const uint8_t* from = w + col * row_bytes + block / kSubBlocks * Type::kBlockBytes;
        scales = Type::decode(from, static_cast<int>(block % kSubBlocks), words);
      }
      uint8_t* to = w_s + r * kRowStride + kBlockValues * b;
      store_u32x4(to, words[0], words[1], words[2], words[3]);
      store_u32x4(to + 16, words[4], words[5], words[6], words[7]);
      wd_s[r][b] = scales.d;
      if constexpr (kWeightMin) wm_s[r][b] = scales.m;
      if constexpr (Type::kScales16 || Type::kMins16) wh_s[r][b] = scales.halves;
    }
    __syncthreads();

    // Not unrolled: hoisting the four blocks' fragment loads ran out of registers.
    EMBER_NO_UNROLL
    for (int b = 0; b < kStepBlocks; ++b) {
      uint32_t a[2][4], bw[4][2];
      float x_d[2][2], w_d[4][2];
      EMBER_UNROLL
      for (int i = 0; i < 2; ++i) {
        const int r = warp_row + 16 * i + g;
        const uint8_t* lo = x_s + r * kRowStride + kBlockValues * b + 4 * t;
        const uint8_t* hi = lo + 8 * kRowStride;
        a[i][0] = u32_at(lo);
        a[i][1] = u32_at(hi);
        a[i][2] = u32_at(lo + 16);
        a[i][3] = u32_at(hi + 16);
        x_d[i][0] = xd_s[r][b];
        x_d[i][1] = xd_s[r + 8][b];
      }
      EMBER_UNROLL
      for (int j = 0; j < 4; ++j) {
        const uint8_t* col = w_s + (warp_col + 8 * j + g) * kRowStride + kBlockValues * b + 4 * t;
        bw[j][0] = u32_at(col);
        bw[j][1] = u32_at(col + 16);
        w_d[j][0] = wd_s[warp_col + 8 * j + 2 * t][b];
        w_d[j][1] = wd_s[warp_col + 8 * j + 2 * t + 1][b];
      }
      EMBER_UNROLL
      for (int i = 0; i < 2; ++i) {
        EMBER_UNROLL
        for (int j = 0; j < 4; ++j) {
          int32_t s[4] = {0, 0, 0, 0};
          float sum[4];
          if constexpr (Type::kScales16) {
            // The halves' sums apart, each times its scale: |Σ| < 2 · 16·32·128·128 = 2^24, exact
            // as a float (past small_int_to_float's range).
            int32_t hi[4] = {0, 0, 0, 0};
            mma_16x8x16_s8(s, {a[i][0], a[i][1]}, bw[j][0]);
            mma_16x8x16_s8(hi, {a[i][2], a[i][3]}, bw[j][1]);
            EMBER_UNROLL
            for (int e = 0; e < 4; ++e) {
              const uint32_t halves = wh_s[warp_col + 8 * j + 2 * t + e % 2][b];
              const int lo_scale = static_cast<int16_t>(halves & 0xFFFFu), hi_scale = static_cast<int>(halves) >> 16;
              sum[e] = __int2float_rn(s[e] * lo_scale + hi[e] * hi_scale);
            }
          } else {
            mma_16x8x32_s8(s, a[i], bw[j]);
            EMBER_UNROLL
            for (int e = 0; e < 4; ++e) sum[e] = small_int_to_float(s[e]);
          }
          // kMins16: Σ min·q, the min of each value's 16 (column g's two, four bytes each, as the
          // B fragment's words: value 4t.. of the first 16, then 16 + 4t..); |Σ| < 32·15·128.
          float min_sum[4];
          if constexpr (Type::kMins16) {
            const uint32_t mins = wh_s[warp_col + 8 * j + g][b];
            int32_t ms[4] = {0, 0, 0, 0};
            mma_16x8x32_s8(ms, a[i], {(mins & 0xFFu) * 0x01010101u, (mins >> 8) * 0x01010101u});
            EMBER_UNROLL
            for (int e = 0; e < 4; ++e) min_sum[e] = small_int_to_float(ms[e]);
          }
          EMBER_UNROLL
          for (int e = 0; e < 4; ++e) {
            // vec_dot_*_q8_0's sum += float(sumi) · (d_w · d_x) (vec_dot_*_q8_1's + m_w · s_x), rounded
            // as it rounds (unfused: the GPU's bits are the CPU reference's)
            float term = __fmul_rn(sum[e], __fmul_rn(w_d[j][e % 2], x_d[i][e / 2]));
            if constexpr (Type::kMin) {
              const float min_term =
                  __fmul_rn(wm_s[warp_col + 8 * j + 2 * t + e % 2][b], xs_s[warp_row + 16 * i + g + 8 * (e / 2)][b]);
              term = __fadd_rn(term, min_term);
            }
            if constexpr (Type::kMins16) {  // + float(Σ min·q) · (m_w · d_x)
              const float min_term =
                  __fmul_rn(min_sum[e], __fmul_rn(wm_s[warp_col + 8 * j + 2 * t + e % 2][b], x_d[i][e / 2]));
              term = __fadd_rn(term, min_term);
            }
            acc[i][j][e] = __fadd_rn(acc[i][j][e], term);
          }
        }
      }
    }
    __syncthreads();  // every fragment read before the next step overwrites the tiles
  }

  EMBER_UNROLL
  for (int i = 0; i < 2; ++i) {
    EMBER_UNROLL
    for (int j = 0; j < 4; ++j) {
      EMBER_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int64_t row = row0 + warp_row + 16 * i + g + 8 * (e / 2);
        const int64_t col = col0 + warp_col + 8 * j + 2 * t + e % 2;
        if (row < m && col < n_out) y[row * n_out + col] = acc[i][j][e];
      }
    }
  }
}

// The activations' per-block sums a type's min multiplies (none without a min).
template <class Type>
const float* min_sums(const Q8_1Rows& x) {
  if (!Type::kMin) return nullptr;
  return Type::kQ8_1s ? x.s : x.sum_d;
}

template <class Type>
void launch_int8_gemm(const DeviceMatrix& w, const Q8_1Rows& x, int64_t m, float* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((m + kTileRows - 1) / kTileRows),
                  static_cast<unsigned>((w.n_out + kTileCols - 1) / kTileCols));
  EMBER_CUDA_LAUNCH(grid, kGemmThreads, 0, stream, int8_gemm_kernel<Type>)
  (static_cast<const uint8_t*>(w.data), w.n_out, w.k, x.q, x.d, min_sums<Type>(x), m, y);
}

}  // namespace

bool int8_gemm_supports(DType dtype) noexcept {
  switch (dtype) {
    case DType::kQ2_K:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kIQ4_NL:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kIQ4_XS: return true;
    default: return false;
  }
}

void quantize_q8_1_rows(const float* x, int64_t m, int64_t k, const Q8_1Rows& out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(m >= 0 && k >= 0 && k % kBlockValues == 0);
  const int64_t n_blocks = m * (k / kBlockValues);
  if (n_blocks == 0) return;
  constexpr int64_t kWarps = kQuantizeThreads / 32;
  const auto grid = static_cast<unsigned>(std::min((n_blocks + kWarps - 1) / kWarps, kQuantizeMaxBlocks));
  EMBER_CUDA_LAUNCH(grid, kQuantizeThreads, 0, stream, quantize_q8_1_rows_kernel)
  (x, n_blocks, out.q, out.d, out.s, out.sum_d);
  EMBER_CUDA_CHECK_LAUNCH("quantize_q8_1_rows");
}

void int8_gemm(const DeviceMatrix& w, const Q8_1Rows& x, int64_t m, float* y, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(int8_gemm_supports(w.dtype) && w.k > 0 && w.n_out >= 0);
  EMBER_CUDA_EXPECT(w.k % dtype_traits(w.dtype).block_size == 0);
  EMBER_CUDA_EXPECT(!reads_words(w.dtype) || reinterpret_cast<uintptr_t>(w.data) % 4 == 0);
  EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(x.q) % 16 == 0);
  EMBER_CUDA_EXPECT((m + kTileRows - 1) / kTileRows <= 0x7FFFFFFF &&
                    (w.n_out + kTileCols - 1) / kTileCols <= kMaxGridY);
  if (m <= 0 || w.n_out == 0) return;
  switch (w.dtype) {
    case DType::kQ4_0: launch_int8_gemm<Int8Nibbles<FormatQ4_0>>(w, x, m, y, stream); break;
    case DType::kQ4_1: launch_int8_gemm<Int8Nibbles<FormatQ4_1>>(w, x, m, y, stream); break;
    case DType::kQ5_0: launch_int8_gemm<Int8Nibbles<FormatQ5_0>>(w, x, m, y, stream); break;
    case DType::kQ5_1: launch_int8_gemm<Int8Nibbles<FormatQ5_1>>(w, x, m, y, stream); break;
    case DType::kIQ4_NL: launch_int8_gemm<Int8Nibbles<FormatIQ4_NL>>(w, x, m, y, stream); break;
    case DType::kQ4_K: launch_int8_gemm<Int8Q4Q5_K<false>>(w, x, m, y, stream); break;
    case DType::kQ5_K: launch_int8_gemm<Int8Q4Q5_K<true>>(w, x, m, y, stream); break;
    case DType::kIQ4_XS: launch_int8_gemm<Int8IQ4_XS>(w, x, m, y, stream); break;
    case DType::kQ2_K: launch_int8_gemm<Int8Q2_K>(w, x, m, y, stream); break;
    case DType::kQ3_K: launch_int8_gemm<Int8Q3_K>(w, x, m, y, stream); break;
    case DType::kQ6_K: launch_int8_gemm<Int8Q6_K>(w, x, m, y, stream); break;
    default: launch_int8_gemm<Int8Q8_0>(w, x, m, y, stream); break;
  }
  EMBER_CUDA_CHECK_LAUNCH("int8_gemm");
}

}  // namespace ember::cuda
