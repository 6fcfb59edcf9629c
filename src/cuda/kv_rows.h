// The paged KV pools' row formats as the attention kernels read and write them, and what the
// per-row and tiled attention kernels share (attention_kernels.cu, tiled_attention_kernels.cu):
// the visible range, the call's arguments and their checks.
#pragma once

#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/q8_0_quantize.h"

namespace ember::cuda::kv_rows {

constexpr int kTokens = kKvBlockTokens;  // one pool block = one tile of the per-row attention loop

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The first position a row at `pos` sees (window > 0: a sliding window).
__device__ inline int32_t first_visible(int32_t pos, int32_t window) {
  return window > 0 ? max(0, pos - window + 1) : 0;
}

// ---- pool row formats: one token's head_dim values of one kv head ----
// load_pair(row, c): values 2c and 2c + 1 as floats. store(row, d, x): value d of the row, called by
// every thread of a warp for 32 consecutive d of one row (lane = d % 32) when kWarpStore.

struct F32Row {
  static constexpr bool kWarpStore = false;
  static int64_t row_bytes(int32_t head_dim) { return int64_t{4} * head_dim; }
  __device__ static float2 load_pair(const uint8_t* row, int c) { return reinterpret_cast<const float2*>(row)[c]; }
  __device__ static void store(uint8_t* row, int32_t d, float x) { reinterpret_cast<float*>(row)[d] = x; }
};

struct F16Row {
  static constexpr bool kWarpStore = false;
  static int64_t row_bytes(int32_t head_dim) { return int64_t{2} * head_dim; }
  __device__ static float2 load_pair(const uint8_t* row, int c) {
    return __half22float2(reinterpret_cast<const __half2*>(row)[c]);
  }
  __device__ static void store(uint8_t* row, int32_t d, float x) {
    reinterpret_cast<__half*>(row)[d] = __float2half_rn(x);  // IEEE RNE
  }
};

// Q8_0 (head_dim a multiple of 32): 34-byte blocks of an f16 scale d and 32 int8 q, value q·d; the
// store quantizes bit for bit as the CPU's quantize_row_q8_0 (d = absmax / 127 skipping NaNs,
// q = round half away from zero of x / d, 0 where that is out of range).
struct Q8_0Row {
  static constexpr bool kWarpStore = true;
  static constexpr int kValues = 32, kBytes = 34;
  static int64_t row_bytes(int32_t head_dim) { return int64_t{kBytes} * (head_dim / kValues); }
  __device__ static float2 load_pair(const uint8_t* row, int c) {
    const uint8_t* block = row + (c / (kValues / 2)) * kBytes;
    const float d = __half2float(*reinterpret_cast<const __half*>(block));
    const int j = 2 * c % kValues;
    return make_float2(static_cast<float>(static_cast<int8_t>(block[2 + j])) * d,
                       static_cast<float>(static_cast<int8_t>(block[3 + j])) * d);
  }
  __device__ static void store(uint8_t* row, int32_t d, float x) {
    const Q8_0Lane v = quantize_q8_0_lane(x);
    uint8_t* block = row + (d / kValues) * kBytes;
    block[2 + d % kValues] = static_cast<uint8_t>(v.q);
    if (d % kValues == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(v.scale);
  }
};

// f(row format) for a pool dtype kv_supports accepted.
template <typename F>
void with_row_format(DType dtype, F&& f) {
  if (dtype == DType::kF16) {
    f(F16Row{});
  } else if (dtype == DType::kQ8_0) {
    f(Q8_0Row{});
  } else {
    f(F32Row{});
  }
}

// launch.template operator()<KF, VF>() for the K and V pools' row formats, with args' row sizes set.
template <typename Args, typename Launch>
void with_row_formats(const PagedKvView& kv, Args& args, Launch&& launch) {
  with_row_format(kv.k_dtype, [&](auto k_format) {
    with_row_format(kv.v_dtype, [&](auto v_format) {
      using KF = decltype(k_format);
      using VF = decltype(v_format);
      args.k_row_bytes = KF::row_bytes(kv.head_dim);
      args.v_row_bytes = VF::row_bytes(kv.head_dim);
      launch.template operator()<KF, VF>();
    });
  });
}

// ---- what both attention kernels read of a call ----

struct AttentionCall {
  const void* k_pool;
  const void* v_pool;
  const int32_t* block_tables;       // [n_seqs][max_blocks]
  const int32_t* n_tokens;           // [n_seqs]
  const KvRow* rows;                 // [n_rows]
  const float* q;                    // [n_rows][n_head][head_dim]
  float* out;                        // [n_rows][n_head][head_dim]
  int64_t k_row_bytes, v_row_bytes;  // set by with_row_formats
  int32_t n_rows, n_seqs, max_blocks, n_blocks;
  int32_t n_head, n_head_kv, head_dim;
  int32_t group;  // n_head / n_head_kv
  int32_t window;
  float scale, softcap;
};

// The checks both launchers make of a non-empty call (each checks its pools and heads first), and
// the fields it fills.
inline AttentionCall attention_call(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows,
                                    const float* q, const AttentionParams& params, float* out) {
  EMBER_CUDA_EXPECT(kv.n_head_kv > 0 && kv.n_blocks >= 0 && n_rows > 0);
  EMBER_CUDA_EXPECT(params.n_head > 0 && params.n_head % kv.n_head_kv == 0 && params.n_head <= kMaxGridY);
  EMBER_CUDA_EXPECT_MSG(params.alibi_slopes == nullptr, "CUDA attention: no ALiBi");
  EMBER_CUDA_EXPECT(params.window >= 0 && params.softcap >= 0.0f && params.scale >= 0.0f);
  EMBER_CUDA_EXPECT(kv.k != nullptr && kv.v != nullptr && rows != nullptr && q != nullptr && out != nullptr);
  // K/V rows are read as float2 / half2 pairs (a Q8_0 row: its f16 scales, 2-byte aligned), q as float2.
  EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(kv.k) % 8 == 0 && reinterpret_cast<uintptr_t>(kv.v) % 8 == 0);
  EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(q) % 8 == 0);
  EMBER_CUDA_EXPECT(seqs.block_tables != nullptr && seqs.n_tokens != nullptr && seqs.n_seqs > 0 && seqs.max_blocks > 0);
  AttentionCall a{};
  a.k_pool = kv.k;
  a.v_pool = kv.v;
  a.block_tables = seqs.block_tables;
  a.n_tokens = seqs.n_tokens;
  a.rows = rows;
  a.q = q;
  a.out = out;
  a.n_rows = n_rows;
  a.n_seqs = seqs.n_seqs;
  a.max_blocks = seqs.max_blocks;
  a.n_blocks = kv.n_blocks;
  a.n_head = params.n_head;
  a.n_head_kv = kv.n_head_kv;
  a.head_dim = kv.head_dim;
  a.group = params.n_head / kv.n_head_kv;
  a.window = params.window;
  a.scale = params.scale > 0.0f ? params.scale : 1.0f / std::sqrt(static_cast<float>(kv.head_dim));
  a.softcap = params.softcap;
  return a;
}

}  // namespace ember::cuda::kv_rows
