// The paged KV cache on the GPU: store_kv and flash-decoding attention (cuda_kernels.h; the CPU's
// kv_layout.cpp and attention.cpp are the reference).
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/kv_rows.h"
#include "cuda/launch.h"
#include "cuda/rope_pair.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"

namespace ember::cuda {
namespace {

using kv_rows::attention_call;
using kv_rows::AttentionCall;
using kv_rows::ceil_div;
using kv_rows::F16Row;
using kv_rows::F32Row;
using kv_rows::first_visible;
using kv_rows::kTokens;
using kv_rows::Q8_0Row;
using kv_rows::with_row_formats;

constexpr int kThreads = 128;               // attention block size
constexpr int kParts = kThreads / kTokens;  // lanes that split one token's q·k (consecutive lanes)
constexpr int kMaxGroup = 8;                // query heads per attention block; larger groups span blocks
constexpr int kMaxHeadDim = 256;
constexpr int kMaxPairs = kMaxHeadDim / 2;  // head_dim is handled as pairs (float2 / half2)
// Wider heads (up to kWideHeadDim: latent attention's 512 + 64 row) run a variant with fewer query
// heads per block, so that its queries and staged V still fit the 48 KiB of static shared memory.
constexpr int kWideHeadDim = kAttentionMaxHeadDim;
constexpr int kWideGroup = 4;
constexpr int kStoreThreads = 128;
constexpr int kMergeThreads = 128;
// Split policy (split_tokens == 0): aim at about kTargetBlocks blocks (an H200 holds ~8 per SM on
// 132 SMs), chunks of at least kMinChunkTokens; never more than kMaxChunks chunks per row nor
// kMaxRowChunks (row, chunk) pairs per call, which bounds the workspace.
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMinChunkTokens = 64;
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kMaxRowChunks = 1024;

// ---- store_kv: block = one row; threads over its n_head_kv × head_dim values ----

struct StoreArgs {
  void* k_pool;
  void* v_pool;
  const float* k;  // [n_rows][n_head_kv][head_dim]
  const float* v;
  const KvRow* rows;
  const int32_t* block_tables;  // [n_seqs][max_blocks]
  int64_t k_row_bytes, v_row_bytes;
  int32_t n_seqs, max_blocks, n_blocks, n_head_kv, head_dim;
};

// Row `row`'s k and v into its pool slots. kStoreThreads is a multiple of 32 and, with a Q8_0 pool,
// head_dim too: each warp's 32 values of an iteration are one Q8_0 block, and every lane of a warp
// runs the same iterations.
template <typename KF, typename VF>
__device__ void store_row(const StoreArgs& a, int64_t row) {
  const KvRow r = a.rows[row];
  // A bad index is a broken invariant (the CPU aborts): trap rather than write out of bounds.
  if (r.seq < 0 || r.seq >= a.n_seqs || r.pos < 0 || r.pos / kTokens >= a.max_blocks) __trap();
  const int32_t block = a.block_tables[static_cast<int64_t>(r.seq) * a.max_blocks + r.pos / kTokens];
  if (block < 0 || block >= a.n_blocks) __trap();
  const int32_t slot = r.pos % kTokens;
  const int32_t n = a.n_head_kv * a.head_dim;
  static_assert(!(KF::kWarpStore || VF::kWarpStore) || kStoreThreads % 32 == 0);
  for (int32_t i = threadIdx.x; i < n; i += kStoreThreads) {
    const int32_t h = i / a.head_dim, d = i % a.head_dim;
    // Pool layout [block][n_head_kv][16 tokens][row]: the row of (block, h, slot).
    const int64_t at = (static_cast<int64_t>(block) * a.n_head_kv + h) * kTokens + slot;
    KF::store(static_cast<uint8_t*>(a.k_pool) + at * a.k_row_bytes, d, a.k[row * n + i]);
    if (a.v_pool != a.k_pool) VF::store(static_cast<uint8_t*>(a.v_pool) + at * a.v_row_bytes, d, a.v[row * n + i]);
  }
}

template <typename KF, typename VF>
__global__ void __launch_bounds__(kStoreThreads) store_kv_kernel(const StoreArgs a) {
  store_row<KF, VF>(a, blockIdx.x);
}

// q's and k's rotation of one row (RoPE, rope_pair.h) and the store of its k and v.
struct RopeRowArgs {
  float* q;              // [n_rows][n_head_q][head_dim]
  float* k;              // [n_rows][n_head_kv][head_dim] (StoreArgs::k, writable)
  const float* cos_sin;  // [n_rows][n_rot]
  int32_t n_head_q, n_rot;
  bool neox;
};

// Block = one row: its q and k heads rotated in place (as rope_qk), then, after a barrier, its k and
// v stored (as store_kv): the two launches' bits in one.
template <typename KF, typename VF>
__global__ void __launch_bounds__(kStoreThreads) rope_store_kv_kernel(const StoreArgs a, const RopeRowArgs r) {
  const int64_t row = blockIdx.x;
  const int32_t half = r.n_rot / 2, hd = a.head_dim;
  const float* cs = r.cos_sin + row * r.n_rot;
  for (int32_t p = threadIdx.x; p < (r.n_head_q + a.n_head_kv) * half; p += kStoreThreads) {
    const int32_t h = p / half, i = p % half;
    float* head = h < r.n_head_q ? r.q + (row * r.n_head_q + h) * hd : r.k + (row * a.n_head_kv + h - r.n_head_q) * hd;
    rope_pair(head, cs, i, half, r.neox);
  }
  __syncthreads();  // the rotated k, read by other threads of the block
  store_row<KF, VF>(a, row);
}

// ---- attention ----

// The call (out written when n_chunks == 1) and the per-row kernel's own plan.
struct AttnArgs : AttentionCall {
  const int32_t* row_ids;  // [grid.x]: the rows this call computes (null: rows 0..grid.x)
  float* part_ml;          // [grid.x][n_head][n_chunks][2] (max, sum), when n_chunks > 1
  float* part_acc;         // [grid.x][n_head][n_chunks][head_dim] unnormalized Σ p·v
  int32_t group_tile;      // query heads per block (<= group_cap(head_dim))
  int32_t n_group_tiles;   // blocks per kv head along grid.y
  int32_t chunk_tokens;    // a multiple of 16: the call's chunk size (per_row_chunks: the largest)
  int32_t per_row_chunks;  // 1: each row spreads its own range over the chunks (row_chunk_tokens)
  int32_t n_chunks;        // grid.z
};

// The chunks of a row: its visible range [lo, pos] cut at base + c·chunk_tokens (base = lo rounded
// down to a block), the last needed chunk extended to pos so that no position is ever dropped.
// Every chunk c < chunks_needed() holds at least one visible position.
// The chunk size of a row whose visible range is [lo, pos]: the call's; or, with per-row chunks
// (the automatic split), the row's own range spread over the call's chunks in whole blocks of at
// least kMinChunkTokens, so a short row in a call planned for a long context (a decode step on the
// reserved shape) still splits as it would alone.
__device__ inline int32_t row_chunk_tokens(const AttnArgs& a, int32_t lo, int32_t pos) {
  if (a.per_row_chunks == 0) return a.chunk_tokens;
  const int64_t span = static_cast<int64_t>(pos) + 1 - lo / kTokens * kTokens;
  const int64_t per_chunk = ceil_div(ceil_div(span, a.n_chunks), kTokens) * kTokens;
  return static_cast<int32_t>(per_chunk < kMinChunkTokens ? kMinChunkTokens : per_chunk);
}
__device__ inline int32_t chunks_needed(int32_t lo, int32_t pos, int32_t chunk_tokens, int32_t n_chunks) {
  const int32_t base = lo / kTokens * kTokens;
  const int64_t needed = ceil_div(static_cast<int64_t>(pos) + 1 - base, chunk_tokens);
  return needed < n_chunks ? static_cast<int32_t>(needed) : n_chunks;
}

// Grid (n_rows, n_head_kv · n_group_tiles, n_chunks), kThreads threads. One block: one row, a tile
// of the query heads of one kv head (each K/V value loaded once for all of them), one chunk of the
// row's positions, walked 16 tokens (one pool block) at a time with an online softmax:
//   scores: thread (t = tid / 8, part = tid % 8) holds token t's K pairs part, part+8, ... in
//           registers and reduces q·k over the 8 lanes of the token with shuffles;
//   softmax: thread (g = tid / 16, t = tid % 16) keeps query g's running max and sum (replicated
//           over the 16 lanes) and turns the scores into weights p;
//   p·V:   thread (slice = tid / w, c = tid % w), w = min(n_pairs, kThreads), accumulates pairs
//           c, c + w, ... (one pair unless the head has more pairs than the block has threads) of
//           queries slice, slice + n_slices, ... from V staged in shared memory.
// kHd and kGroup bound head_dim and group_tile (the shared arrays' sizes).
template <typename KF, typename VF, int kPairsPerPart, int kHd, int kGroup>
__global__ void __launch_bounds__(kThreads) attention_kernel(const AttnArgs a) {
  constexpr int kPairs = kHd / 2;
  constexpr int kPvCols = (kPairs + kThreads - 1) / kThreads;  // pairs per thread in the p·V role
  __shared__ __align__(16) float q_s[kGroup][kHd];             // scaled queries (read as float2)
  __shared__ float2 v_s[kTokens][kPairs];                      // the tile's V as floats, 0 outside the visible slots
  __shared__ float p_s[kGroup][kTokens];                       // scores, then weights
  __shared__ float corr_s[kGroup];                             // the tile's rescale of the accumulators
  __shared__ float m_s[kGroup], l_s[kGroup];

  const auto slot_row = static_cast<int32_t>(blockIdx.x);  // the row's place in the workspace
  const int32_t row = a.row_ids != nullptr ? a.row_ids[slot_row] : slot_row;
  if (row < 0 || row >= a.n_rows) __trap();
  const int32_t kv_head = static_cast<int32_t>(blockIdx.y) / a.n_group_tiles;
  const int32_t g0 = static_cast<int32_t>(blockIdx.y) % a.n_group_tiles * a.group_tile;
  const int32_t n_g = min(a.group_tile, a.group - g0);  // query heads of this block
  const int32_t head0 = kv_head * a.group + g0;
  const KvRow r = a.rows[row];
  if (r.seq < 0 || r.seq >= a.n_seqs || r.pos < 0 || r.pos >= a.n_tokens[r.seq] || r.pos / kTokens >= a.max_blocks) {
    __trap();  // a broken invariant (the CPU aborts): never read outside the pools
  }
  const int32_t lo = first_visible(r.pos, a.window);
  const int32_t chunk_tokens = row_chunk_tokens(a, lo, r.pos);
  const int32_t n_needed = chunks_needed(lo, r.pos, chunk_tokens, a.n_chunks);
  const int32_t chunk = static_cast<int32_t>(blockIdx.z);
  if (n_g <= 0 || chunk >= n_needed) return;  // uniform over the block, before any barrier
  const int32_t base = lo / kTokens * kTokens;
  const int32_t begin = max(lo, base + chunk * chunk_tokens);
  const int32_t end = chunk == n_needed - 1 ? r.pos + 1 : base + (chunk + 1) * chunk_tokens;

  const int32_t hd = a.head_dim, n_pairs = hd / 2;
  const int tid = static_cast<int>(threadIdx.x);
  for (int i = tid; i < n_g * hd; i += kThreads) {
    q_s[i / hd][i % hd] = a.q[(static_cast<int64_t>(row) * a.n_head + head0 + i / hd) * hd + i % hd] * a.scale;
  }
  const int t = tid / kParts, part = tid % kParts;   // score role
  const int sg = tid / kTokens, st = tid % kTokens;  // softmax role
  const int pv_width = min(n_pairs, kThreads);       // p·V role
  const int slice = tid / pv_width, c = tid % pv_width;
  const int n_slices = kThreads / pv_width;
  float m_run = -INFINITY, l_run = 0.0f;  // query sg's state (valid where sg < n_g)
  float2 acc[kGroup][kPvCols];            // acc[gi][j]: pair c + j·pv_width of query slice + gi·n_slices
  EMBER_UNROLL
  for (int gi = 0; gi < kGroup; ++gi) {
    EMBER_UNROLL
    for (int j = 0; j < kPvCols; ++j) acc[gi][j] = make_float2(0.0f, 0.0f);
  }

  const int32_t* table = a.block_tables + static_cast<int64_t>(r.seq) * a.max_blocks;

  __syncthreads();  // q_s

  for (int32_t tile = begin / kTokens * kTokens; tile < end; tile += kTokens) {
    const int32_t block = table[tile / kTokens];
    if (block < 0 || block >= a.n_blocks) __trap();
    const int64_t first_row = (static_cast<int64_t>(block) * a.n_head_kv + kv_head) * kTokens;  // 16 rows
    const uint8_t* kb = static_cast<const uint8_t*>(a.k_pool) + first_row * a.k_row_bytes;
    const uint8_t* vb = static_cast<const uint8_t*>(a.v_pool) + first_row * a.v_row_bytes;
    // Visible slots [t0, t1): the others may hold anything (NaN included) and are never loaded.
    const int t0 = max(begin - tile, 0), t1 = min(end - tile, kTokens);

    const bool visible = t >= t0 && t < t1;
    float2 k_r[kPairsPerPart];
    EMBER_UNROLL
    for (int i = 0; i < kPairsPerPart; ++i) {
      const int cc = part + i * kParts;
      k_r[i] = visible && cc < n_pairs ? KF::load_pair(kb + t * a.k_row_bytes, cc) : make_float2(0.0f, 0.0f);
    }
    // V in the p·V role's layout: thread (slice, c) stages its pairs of tokens slice + i·n_slices.
    if (slice < n_slices) {
      for (int vt = slice; vt < kTokens; vt += n_slices) {
        const bool seen = vt >= t0 && vt < t1;
        EMBER_UNROLL
        for (int j = 0; j < kPvCols; ++j) {
          const int cc = c + j * pv_width;
          if (cc < n_pairs) v_s[vt][cc] = seen ? VF::load_pair(vb + vt * a.v_row_bytes, cc) : make_float2(0.0f, 0.0f);
        }
      }
    }
    for (int g = 0; g < n_g; ++g) {
      const float2* qg = reinterpret_cast<const float2*>(q_s[g]);
      float s = 0.0f;
      EMBER_UNROLL
      for (int i = 0; i < kPairsPerPart; ++i) {
        const int cc = part + i * kParts;
        if (cc < n_pairs) s += qg[cc].x * k_r[i].x + qg[cc].y * k_r[i].y;
      }
      // Butterfly over the token's 8 lanes (float + commutes, so every lane ends equal).
      s = warp_xor_rounds<1, 2, 4>(s, WarpAdd{});
      if (a.softcap > 0.0f) s = a.softcap * tanhf(s / a.softcap);
      if (part == 0) p_s[g][t] = visible ? s : -INFINITY;
    }
    __syncthreads();  // p_s scores, v_s

    {  // Online softmax over the tile, all threads taking part in the 16-lane shuffles.
      const bool mine = sg < n_g;
      const float s = mine ? p_s[sg][st] : -INFINITY;
      float tile_max = s;
      static_assert(kTokens == 16, "the 16-lane butterflies below");
      tile_max = warp_xor_rounds<8, 4, 2, 1>(tile_max, WarpMax{});
      const float m_new = fmaxf(m_run, tile_max);
      const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
      const float corr = m_run == -INFINITY ? 0.0f : expf(m_run - m_new);
      float sum = p;
      sum = warp_xor_rounds<8, 4, 2, 1>(sum, WarpAdd{});
      l_run = l_run * corr + sum;
      m_run = m_new;
      if (mine) {
        p_s[sg][st] = p;
        if (st == 0) corr_s[sg] = corr;
      }
    }
    __syncthreads();  // p_s weights, corr_s

    if (slice < n_slices) {
      EMBER_UNROLL
      for (int gi = 0; gi < kGroup; ++gi) {
        const int g = slice + gi * n_slices;
        if (g < n_g) {
          EMBER_UNROLL
          for (int j = 0; j < kPvCols; ++j) {
            acc[gi][j].x *= corr_s[g];
            acc[gi][j].y *= corr_s[g];
          }
        }
      }
      EMBER_UNROLL
      for (int j = 0; j < kPvCols; ++j) {
        const int cc = c + j * pv_width;
        if (cc >= n_pairs) continue;
        EMBER_UNROLL
        for (int vt = 0; vt < kTokens; ++vt) {
          const float2 v = v_s[vt][cc];
          EMBER_UNROLL
          for (int gi = 0; gi < kGroup; ++gi) {
            const int g = slice + gi * n_slices;
            if (g < n_g) {
              const float p = p_s[g][vt];
              acc[gi][j].x += p * v.x;
              acc[gi][j].y += p * v.y;
            }
          }
        }
      }
    }
    __syncthreads();  // before the next tile overwrites v_s, p_s, corr_s
  }

  if (sg < n_g && st == 0) {
    m_s[sg] = m_run;
    l_s[sg] = l_run;
  }
  __syncthreads();
  if (slice >= n_slices) return;
  EMBER_UNROLL
  for (int gi = 0; gi < kGroup; ++gi) {
    const int g = slice + gi * n_slices;
    if (g >= n_g) continue;
    const int64_t qh = static_cast<int64_t>(row) * a.n_head + head0 + g;  // (row, query head)
    const int64_t slot = (static_cast<int64_t>(slot_row) * a.n_head + head0 + g) * a.n_chunks + chunk;
    const float inv = 1.0f / l_s[g];  // l >= 1: the max-scoring position contributes exp(0)
    EMBER_UNROLL
    for (int j = 0; j < kPvCols; ++j) {
      const int cc = c + j * pv_width;
      if (cc >= n_pairs) continue;
      if (a.n_chunks == 1) {
        a.out[qh * hd + 2 * cc] = acc[gi][j].x * inv;
        a.out[qh * hd + 2 * cc + 1] = acc[gi][j].y * inv;
      } else {
        a.part_acc[slot * hd + 2 * cc] = acc[gi][j].x;
        a.part_acc[slot * hd + 2 * cc + 1] = acc[gi][j].y;
      }
    }
    if (a.n_chunks > 1 && c == 0) {
      a.part_ml[2 * slot] = m_s[g];
      a.part_ml[2 * slot + 1] = l_s[g];
    }
  }
}

// Grid (n_rows, n_head), kMergeThreads threads: combines a row's chunks with weights exp(m_c − M),
// M the largest chunk max, as the CPU's merge.
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const AttnArgs a) {
  __shared__ float w_s[kMaxChunks];
  __shared__ float inv_s;
  const auto slot_row = static_cast<int32_t>(blockIdx.x);
  const int32_t row = a.row_ids != nullptr ? a.row_ids[slot_row] : slot_row;
  if (row < 0 || row >= a.n_rows) __trap();
  const KvRow r = a.rows[row];
  const int32_t lo = first_visible(r.pos, a.window);
  const int32_t n = chunks_needed(lo, r.pos, row_chunk_tokens(a, lo, r.pos), a.n_chunks);
  const int64_t slot0 = (static_cast<int64_t>(slot_row) * a.n_head + blockIdx.y) * a.n_chunks;
  const int tid = static_cast<int>(threadIdx.x);
  float big = -INFINITY;
  for (int32_t ch = 0; ch < n; ++ch) big = fmaxf(big, a.part_ml[2 * (slot0 + ch)]);
  for (int32_t ch = tid; ch < n; ch += kMergeThreads) {
    const float m = a.part_ml[2 * (slot0 + ch)];
    w_s[ch] = m == -INFINITY ? 0.0f : expf(m - big);
  }
  __syncthreads();
  if (tid == 0) {
    float sum = 0.0f;
    for (int32_t ch = 0; ch < n; ++ch) sum += w_s[ch] * a.part_ml[2 * (slot0 + ch) + 1];
    inv_s = 1.0f / sum;
  }
  __syncthreads();
  const int32_t hd = a.head_dim;
  for (int32_t d = tid; d < hd; d += kMergeThreads) {
    float o = 0.0f;
    for (int32_t ch = 0; ch < n; ++ch) o += w_s[ch] * a.part_acc[(slot0 + ch) * hd + d];
    a.out[(static_cast<int64_t>(row) * a.n_head + blockIdx.y) * hd + d] = o * inv_s;
  }
}

// Chunks per row for this call (1: no split) and their size. Bounded by the workspace the caller
// gave, so any n_rows <= max_rows fits what attention_workspace_bytes(max_rows, ...) returned.
void plan_split(AttnArgs& a, int32_t n_rows, int32_t max_context, int32_t split_tokens, size_t workspace_bytes) {
  a.chunk_tokens = kTokens;
  a.n_chunks = 1;
  a.per_row_chunks = split_tokens == 0 ? 1 : 0;
  if (split_tokens < 0) return;  // batch invariance: a row's result depends on the row alone
  int64_t want;
  if (split_tokens > 0) {
    want = ceil_div(max_context, ceil_div(split_tokens, kTokens) * kTokens);
  } else {
    const int64_t blocks = static_cast<int64_t>(n_rows) * a.n_head_kv * a.n_group_tiles;
    want = std::min(ceil_div(kTargetBlocks, blocks), ceil_div(max_context, kMinChunkTokens));
  }
  const auto slot_bytes = static_cast<int64_t>(a.n_head) * (a.head_dim + 2) * static_cast<int64_t>(sizeof(float));
  want = std::min({want, kMaxChunks, kMaxRowChunks / n_rows,
                   static_cast<int64_t>(workspace_bytes / static_cast<size_t>(slot_bytes * n_rows))});
  if (want <= 1) return;
  const int64_t chunk_tokens = ceil_div(ceil_div(max_context, want), kTokens) * kTokens;
  a.chunk_tokens = static_cast<int32_t>(chunk_tokens);
  a.n_chunks = static_cast<int32_t>(ceil_div(max_context, chunk_tokens));
}

// The query heads one block takes at most, for heads of head_dim values.
int32_t group_cap(int32_t head_dim) { return head_dim > kMaxHeadDim ? kWideGroup : kMaxGroup; }

template <typename KF, typename VF>
void launch_attention(const AttnArgs& a, dim3 grid, cudaStream_t stream) {
  if (a.head_dim <= 128) {
    EMBER_CUDA_LAUNCH(grid, kThreads, 0, stream, attention_kernel<KF, VF, 64 / kParts, kMaxHeadDim, kMaxGroup>)(a);
  } else if (a.head_dim <= kMaxHeadDim) {
    EMBER_CUDA_LAUNCH(grid, kThreads, 0, stream, attention_kernel<KF, VF, kMaxPairs / kParts, kMaxHeadDim, kMaxGroup>)
    (a);
  } else {
    EMBER_CUDA_LAUNCH(grid, kThreads, 0, stream,
                      attention_kernel<KF, VF, kWideHeadDim / 2 / kParts, kWideHeadDim, kWideGroup>)
    (a);
  }
}

}  // namespace

bool kv_supports(DType k_dtype, DType v_dtype, int32_t head_dim) noexcept {
  const auto ok = [head_dim](DType t) {
    if (t == DType::kQ8_0) return head_dim > 0 && head_dim % Q8_0Row::kValues == 0;
    return t == DType::kF32 || t == DType::kF16;
  };
  return ok(k_dtype) && ok(v_dtype);
}

namespace {

StoreArgs store_args(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, const float* k,
                     const float* v) {
  EMBER_CUDA_EXPECT_MSG(kv_supports(kv.k_dtype, kv.v_dtype, kv.head_dim),
                        "CUDA paged KV: F32, F16 or Q8_0 pools (Q8_0: head_dim a multiple of 32)");
  EMBER_CUDA_EXPECT(kv.n_head_kv > 0 && kv.head_dim > 0 && kv.n_blocks >= 0 && n_rows >= 0);
  StoreArgs a{};
  if (n_rows == 0) return a;
  EMBER_CUDA_EXPECT(kv.k != nullptr && kv.v != nullptr && rows != nullptr && k != nullptr && v != nullptr);
  EMBER_CUDA_EXPECT(seqs.block_tables != nullptr && seqs.n_seqs > 0 && seqs.max_blocks > 0);
  // F16 values and Q8_0 scales are stored as 2-byte halves.
  EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(kv.k) % 8 == 0 && reinterpret_cast<uintptr_t>(kv.v) % 8 == 0);
  a.k_pool = kv.k;
  a.v_pool = kv.v;
  a.k = k;
  a.v = v;
  a.rows = rows;
  a.block_tables = seqs.block_tables;
  a.n_seqs = seqs.n_seqs;
  a.max_blocks = seqs.max_blocks;
  a.n_blocks = kv.n_blocks;
  a.n_head_kv = kv.n_head_kv;
  a.head_dim = kv.head_dim;
  return a;
}

}  // namespace

void store_kv(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, const float* k,
              const float* v, cudaStream_t stream) {
  StoreArgs a = store_args(kv, seqs, rows, n_rows, k, v);
  if (n_rows == 0) return;
  with_row_formats(kv, a, [&]<typename KF, typename VF>() {
    EMBER_CUDA_LAUNCH(dim3(static_cast<unsigned>(n_rows)), kStoreThreads, 0, stream, store_kv_kernel<KF, VF>)(a);
  });
  EMBER_CUDA_CHECK_LAUNCH("store_kv");
}

void rope_store_kv(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, float* q,
                   int32_t n_head_q, float* k, const float* v, int32_t n_rot, bool neox, const float* cos_sin,
                   cudaStream_t stream) {
  StoreArgs a = store_args(kv, seqs, rows, n_rows, k, v);
  EMBER_CUDA_EXPECT(n_head_q >= 0 && n_rot >= 0 && n_rot % 2 == 0 && n_rot <= kv.head_dim);
  if (n_rows == 0) return;
  EMBER_CUDA_EXPECT(q != nullptr && (n_rot == 0 || cos_sin != nullptr));
  const RopeRowArgs r{.q = q, .k = k, .cos_sin = cos_sin, .n_head_q = n_head_q, .n_rot = n_rot, .neox = neox};
  with_row_formats(kv, a, [&]<typename KF, typename VF>() {
    EMBER_CUDA_LAUNCH(dim3(static_cast<unsigned>(n_rows)), kStoreThreads, 0, stream, rope_store_kv_kernel<KF, VF>)
    (a, r);
  });
  EMBER_CUDA_CHECK_LAUNCH("rope_store_kv");
}

size_t attention_workspace_bytes(int64_t max_rows, int32_t n_head, int32_t head_dim, int32_t max_context) noexcept {
  if (max_rows <= 0 || n_head <= 0 || head_dim <= 0 || max_context <= 0) return 0;
  // plan_split never makes more chunks than this per row (chunks are >= 16 tokens) nor more than
  // kMaxRowChunks (row, chunk) pairs.
  const int64_t chunks = std::min<int64_t>(kMaxChunks, ceil_div(max_context, kTokens));
  if (chunks <= 1) return 0;
  const int64_t slots = std::min<int64_t>(max_rows * chunks, kMaxRowChunks);
  return static_cast<size_t>(slots) * static_cast<size_t>(n_head) * static_cast<size_t>(head_dim + 2) * sizeof(float);
}

void attention(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows, const float* q,
               const AttentionParams& params, int32_t max_context, void* workspace, size_t workspace_bytes, float* out,
               cudaStream_t stream, const int32_t* row_ids, int32_t n_row_ids) {
  EMBER_CUDA_EXPECT_MSG(kv_supports(kv.k_dtype, kv.v_dtype, kv.head_dim),
                        "CUDA paged KV: F32, F16 or Q8_0 pools (Q8_0: head_dim a multiple of 32)");
  EMBER_CUDA_EXPECT(kv.n_head_kv > 0 && kv.n_blocks >= 0);
  EMBER_CUDA_EXPECT_MSG(kv.head_dim > 0 && kv.head_dim % 2 == 0 && kv.head_dim <= kAttentionMaxHeadDim,
                        "CUDA attention: head_dim must be even and at most 576");
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_row_ids >= 0);
  const int32_t n_computed = row_ids != nullptr ? n_row_ids : n_rows;  // grid.x
  if (n_computed == 0) return;
  EMBER_CUDA_EXPECT(max_context >= 1);
  EMBER_CUDA_EXPECT(reinterpret_cast<uintptr_t>(workspace) % alignof(float) == 0);

  AttnArgs a{};
  static_cast<AttentionCall&>(a) = attention_call(kv, seqs, rows, n_rows, q, params, out);
  a.row_ids = row_ids;
  a.n_group_tiles = static_cast<int32_t>(ceil_div(a.group, group_cap(kv.head_dim)));
  a.group_tile = static_cast<int32_t>(ceil_div(a.group, a.n_group_tiles));  // balanced tiles
  plan_split(a, n_computed, max_context, params.split_tokens, workspace == nullptr ? 0 : workspace_bytes);
  if (a.n_chunks > 1) {  // partials: (max, sum) pairs first, then the accumulators
    a.part_ml = static_cast<float*>(workspace);
    a.part_acc = a.part_ml + 2 * static_cast<int64_t>(n_computed) * a.n_head * a.n_chunks;
  }
  const int64_t grid_y = static_cast<int64_t>(kv.n_head_kv) * a.n_group_tiles;
  EMBER_CUDA_EXPECT(grid_y <= kMaxGridY);
  const dim3 grid(static_cast<unsigned>(n_computed), static_cast<unsigned>(grid_y), static_cast<unsigned>(a.n_chunks));
  with_row_formats(kv, a, [&]<typename KF, typename VF>() { launch_attention<KF, VF>(a, grid, stream); });
  EMBER_CUDA_CHECK_LAUNCH("attention");
  if (a.n_chunks > 1) {
    EMBER_CUDA_LAUNCH(dim3(static_cast<unsigned>(n_computed), static_cast<unsigned>(params.n_head)), kMergeThreads, 0,
                      stream, merge_kernel)
    (a);
    EMBER_CUDA_CHECK_LAUNCH("attention merge");
  }
}

}  // namespace ember::cuda
