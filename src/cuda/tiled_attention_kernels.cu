// Tiled attention on tensor cores for prefill rows (cuda_kernels.h: tiled_attention): a block
// takes a tile of up to 64 rows of one sequence and one query head, stages each 32 tokens of K and
// V in shared memory once for all its rows, and runs q·kᵀ and p·V as mma.sync m16n8k16 (f16
// operands, f32 accumulation) with an online softmax in registers. attention() reads every K and V
// value once per row; here once per 64 rows, which is what makes a long prompt's attention cheap.
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/kv_rows.h"
#include "cuda/launch.h"
#include "cuda/mma.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"

namespace ember::cuda {
namespace {

using kv_rows::first_visible;
using kv_rows::kTokens;
using kv_rows::with_row_formats;

constexpr int kWarps = kQueryTileRows / 16;  // each warp: 16 rows, the mma's M
constexpr int kThreads = 32 * kWarps;
constexpr int kKvStep = 32;  // tokens staged per iteration: two pool blocks
static_assert(kKvStep % kTokens == 0 && kKvStep % 16 == 0);

struct TiledArgs : kv_rows::AttentionCall {
  const QueryTile* tiles;  // [n_tiles] = grid.x, within [0, n_rows)
  bool copy_rows;          // F16 pools, head_dim a multiple of 8, 16-byte aligned pools: 16-byte copies
};

// The pools' K/V as f16 in shared memory ([token][dim]): F16 pools copied 16 bytes at a time as
// they are (TiledArgs::copy_rows), others converted pair by pair. K from a pool that is not F16 is
// staged in two f16 parts (k_s its rounding, k_lo_s that of the rest), as q is: one f16 K would put
// ~|s|·2⁻¹¹ into every score again.
template <typename KF, typename VF>
constexpr bool kCanCopyRows = std::is_same_v<KF, kv_rows::F16Row>&& std::is_same_v<VF, kv_rows::F16Row>;
template <typename KF>
constexpr bool kSplitK = !std::is_same_v<KF, kv_rows::F16Row>;

// Grid (n_tiles, n_head), kThreads threads; head_dim <= kHd (the rest of kHd is zeros). Warp w owns
// the tile's rows 16w..16w+15; lane (g = lane / 4, t = lane % 4) holds rows 16w + g and 16w + g + 8
// of every mma fragment (mma.h). Per 32 tokens:
//   stage:   all threads put the tokens' K and V in k_s / v_s as f16, zeros outside the tile's
//            visible range [lo, hi];
//   scores:  s = q·kᵀ, 4 fragments of 16 rows × 8 tokens, q (and K from a pool that is not F16) in
//            two f16 parts: q_hi·k + q_lo·k (+ q_hi·k_lo);
//   softmax: masked to each row's [first visible, pos], soft-capped; the row max over the 4 lanes
//            of a row (shuffles), weights p = exp(s − max), the accumulators rescaled;
//   p·V:     the score fragments are p's operand fragments as they stand (two 8-token fragments =
//            one 16-token operand), o += p·V into kHd / 8 fragments of 16 rows × 8 dims.
template <typename KF, typename VF, int kHd>
__global__ void __launch_bounds__(kThreads) tiled_attention_kernel(const TiledArgs a) {
  // Row pitch in halves: 16-byte aligned rows (the 16-byte copies), 16 bytes apart mod 128 (the
  // q·kᵀ fragment loads below hit 32 different banks).
  constexpr int kStride = kHd + 8;
  constexpr int kDimSteps = kHd / 16;  // q·kᵀ's k steps
  constexpr int kTokenTiles = kKvStep / 8;
  constexpr int kDimTiles = kHd / 8;
  __shared__ __align__(16) __half k_s[kKvStep * kStride];
  __shared__ __align__(16) __half k_lo_s[kSplitK<KF> ? kKvStep * kStride : 8];
  __shared__ __align__(16) __half v_s[kKvStep * kStride];
  __shared__ __align__(16) __half q_lo_s[kQueryTileRows * kStride];
  __shared__ int32_t pos_s[kQueryTileRows], lo_s[kQueryTileRows];
  __shared__ int32_t range_s[2];

  const QueryTile tile = a.tiles[blockIdx.x];
  const auto head = static_cast<int32_t>(blockIdx.y);
  const int32_t kv_head = head / a.group;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  // Broken invariants (the CPU aborts): trap rather than read outside the pools.
  if (tile.n_rows < 1 || tile.n_rows > kQueryTileRows || tile.first_row < 0 ||
      tile.first_row > a.n_rows - tile.n_rows) {
    __trap();
  }
  const int32_t seq = a.rows[tile.first_row].seq;
  if (seq < 0 || seq >= a.n_seqs) __trap();
  if (tid < kQueryTileRows) {
    int32_t pos = -1, lo = INT_MAX;  // a row past the tile's sees nothing
    if (tid < tile.n_rows) {
      const KvRow r = a.rows[tile.first_row + tid];
      if (r.seq != seq || r.pos < 0 || r.pos >= a.n_tokens[seq] || r.pos / kTokens >= a.max_blocks) __trap();
      pos = r.pos;
      lo = first_visible(r.pos, a.window);
    }
    pos_s[tid] = pos;
    lo_s[tid] = lo;
  }
  // Dims head_dim..kHd stay zero: written once, never staged over.
  for (int i = tid; i < kKvStep * (kHd - a.head_dim); i += kThreads) {
    const int at = i / (kHd - a.head_dim) * kStride + a.head_dim + i % (kHd - a.head_dim);
    k_s[at] = __float2half_rn(0.0f);
    v_s[at] = __float2half_rn(0.0f);
    if constexpr (kSplitK<KF>) k_lo_s[at] = __float2half_rn(0.0f);
  }
  __syncthreads();  // pos_s, lo_s, the padding
  if (tid == 0) {
    int32_t lo = INT_MAX, hi = -1;
    for (int i = 0; i < tile.n_rows; ++i) {
      lo = min(lo, lo_s[i]);
      hi = max(hi, pos_s[i]);
    }
    range_s[0] = lo;
    range_s[1] = hi;
  }

  // This lane's two rows (h = 0: 16w + g, h = 1: 16w + g + 8), and the warp's visible range.
  const int row_of[2] = {warp * 16 + g, warp * 16 + g + 8};
  const int32_t pos_of[2] = {pos_s[row_of[0]], pos_s[row_of[1]]};
  const int32_t lo_of[2] = {lo_s[row_of[0]], lo_s[row_of[1]]};
  int32_t warp_lo = INT_MAX, warp_hi = -1;
  for (int i = warp * 16; i < warp * 16 + 16; ++i) {
    if (pos_s[i] >= 0) {
      warp_lo = min(warp_lo, lo_s[i]);
      warp_hi = max(warp_hi, pos_s[i]);
    }
  }

  // q · scale as the A fragments of q·kᵀ (row h's dims 2t, 2t + 1 (+ 8) of every 16), twice: its
  // f16 rounding (q_hi, in registers) and the f16 rounding of what that leaves (q_lo_s, this
  // warp's rows in shared memory, where the loop reloads them): q_hi + q_lo carries 22 bits of q.
  // One f16 q would put ~|s|·2⁻¹¹ into every score s, which a peaked softmax turns into 1e-3 errors.
  uint32_t q_hi[kDimSteps][4];
  EMBER_UNROLL
  for (int ks = 0; ks < kDimSteps; ++ks) {
    EMBER_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int h = r % 2, d = 16 * ks + 2 * t + 8 * (r / 2);  // the fragment's register r
      float2 v = make_float2(0.0f, 0.0f);
      if (row_of[h] < tile.n_rows && d < a.head_dim) {
        const int64_t at = (static_cast<int64_t>(tile.first_row + row_of[h]) * a.n_head + head) * a.head_dim + d;
        v = *reinterpret_cast<const float2*>(a.q + at);
        v = make_float2(v.x * a.scale, v.y * a.scale);
      }
      const float hx = __half2float(__float2half_rn(v.x)), hy = __half2float(__float2half_rn(v.y));
      q_hi[ks][r] = pack_half2(hx, hy);
      store_half2(q_lo_s + row_of[h] * kStride + d, v.x - hx, v.y - hy);
    }
  }
  float o[kDimTiles][4];
  EMBER_UNROLL
  for (int n = 0; n < kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // l: this lane's share of the row's sum

  __syncthreads();  // range_s
  const int32_t lo = range_s[0], hi = range_s[1];
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks;
  const auto* k_pool = static_cast<const uint8_t*>(a.k_pool);
  const auto* v_pool = static_cast<const uint8_t*>(a.v_pool);

  for (int32_t base = lo / kKvStep * kKvStep; base <= hi; base += kKvStep) {
    // The first pool row of the step's two pool blocks, K's and V's (null: no token staged there).
    static_assert(kKvStep == 2 * kTokens);
    const uint8_t *k_first[2] = {nullptr, nullptr}, *v_first[2] = {nullptr, nullptr};
    EMBER_UNROLL
    for (int b = 0; b < 2; ++b) {
      const int32_t first = base + b * kTokens;
      if (first + kTokens - 1 >= lo && first <= hi) {
        const int32_t block = table[first / kTokens];
        if (block < 0 || block >= a.n_blocks) __trap();
        const int64_t at = (static_cast<int64_t>(block) * a.n_head_kv + kv_head) * kTokens;
        k_first[b] = k_pool + at * a.k_row_bytes;
        v_first[b] = v_pool + at * a.v_row_bytes;
      }
    }
    // Token j's rows (selects, not a runtime index: that would put the arrays in local memory).
    const auto k_row_of = [&](int j) { return (j < kTokens ? k_first[0] : k_first[1]) + j % kTokens * a.k_row_bytes; };
    const auto v_row_of = [&](int j) { return (j < kTokens ? v_first[0] : v_first[1]) + j % kTokens * a.v_row_bytes; };
    // Tokens in [lo, hi] are stored (hi < n_tokens); the others may hold anything and are not read.
    if (kCanCopyRows<KF, VF> && a.copy_rows) {
      const int chunks = a.head_dim / 8;  // 16-byte pieces of a row
      for (int i = tid; i < kKvStep * chunks; i += kThreads) {
        const int j = i / chunks, c = i % chunks;
        const int32_t p = base + j;
        __half* k_to = k_s + j * kStride + 8 * c;
        __half* v_to = v_s + j * kStride + 8 * c;
        if (p >= lo && p <= hi) {
          copy16(k_to, k_row_of(j) + 16 * c);
          copy16(v_to, v_row_of(j) + 16 * c);
        } else {
          for (int e = 0; e < 8; e += 2) {
            store_half2(k_to + e, 0.0f, 0.0f);
            store_half2(v_to + e, 0.0f, 0.0f);
          }
        }
      }
    } else {
      const int pairs = a.head_dim / 2;
      for (int i = tid; i < kKvStep * pairs; i += kThreads) {
        const int j = i / pairs, c = i % pairs;
        const int32_t p = base + j;
        float2 kv = make_float2(0.0f, 0.0f), vv = make_float2(0.0f, 0.0f);
        if (p >= lo && p <= hi) {
          kv = KF::load_pair(k_row_of(j), c);
          vv = VF::load_pair(v_row_of(j), c);
        }
        const float hx = __half2float(__float2half_rn(kv.x)), hy = __half2float(__float2half_rn(kv.y));
        store_half2(k_s + j * kStride + 2 * c, hx, hy);
        if constexpr (kSplitK<KF>) store_half2(k_lo_s + j * kStride + 2 * c, kv.x - hx, kv.y - hy);
        store_half2(v_s + j * kStride + 2 * c, vv.x, vv.y);
      }
    }
    __syncthreads();  // k_s, v_s

    if (warp_hi >= base && warp_lo < base + kKvStep) {  // uniform over the warp: it has rows seeing these tokens
      float s[kTokenTiles][4];
      EMBER_UNROLL
      for (int nt = 0; nt < kTokenTiles; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      EMBER_UNROLL
      for (int ks = 0; ks < kDimSteps; ++ks) {
        const __half* lo_row0 = q_lo_s + row_of[0] * kStride + 16 * ks + 2 * t;
        const __half* lo_row1 = q_lo_s + row_of[1] * kStride + 16 * ks + 2 * t;
        const uint32_t q_lo[4] = {half2_bits(lo_row0), half2_bits(lo_row1), half2_bits(lo_row0 + 8),
                                  half2_bits(lo_row1 + 8)};
        EMBER_UNROLL
        for (int nt = 0; nt < kTokenTiles; ++nt) {
          const int at = (nt * 8 + g) * kStride + 16 * ks + 2 * t;  // token nt·8 + g
          const uint32_t b[2] = {half2_bits(k_s + at), half2_bits(k_s + at + 8)};
          if constexpr (kSplitK<KF>) {
            const uint32_t b_lo[2] = {half2_bits(k_lo_s + at), half2_bits(k_lo_s + at + 8)};
            mma_16x8x16(s[nt], q_hi[ks], b_lo);
          }
          mma_16x8x16(s[nt], q_lo, b);
          mma_16x8x16(s[nt], q_hi[ks], b);
        }
      }
      float row_max[2] = {-INFINITY, -INFINITY};
      EMBER_UNROLL
      for (int nt = 0; nt < kTokenTiles; ++nt) {
        EMBER_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int h = i / 2;
          const int32_t p = base + nt * 8 + 2 * t + i % 2;
          float x = s[nt][i];
          if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
          x = p >= lo_of[h] && p <= pos_of[h] ? x : -INFINITY;
          s[nt][i] = x;
          row_max[h] = fmaxf(row_max[h], x);
        }
      }
      float corr[2];
      EMBER_UNROLL
      for (int h = 0; h < 2; ++h) {
        row_max[h] = warp_xor_rounds<1, 2>(row_max[h], WarpMax{});
        const float m_new = fmaxf(m_run[h], row_max[h]);
        corr[h] = m_run[h] == -INFINITY ? 0.0f : expf(m_run[h] - m_new);
        m_run[h] = m_new;
        l_run[h] *= corr[h];
      }
      EMBER_UNROLL
      for (int nt = 0; nt < kTokenTiles; ++nt) {
        EMBER_UNROLL
        for (int i = 0; i < 4; ++i) {
          const int h = i / 2;
          const float p = s[nt][i] == -INFINITY ? 0.0f : expf(s[nt][i] - m_run[h]);
          s[nt][i] = p;
          l_run[h] += p;
        }
      }
      EMBER_UNROLL
      for (int n = 0; n < kDimTiles; ++n) {
        o[n][0] *= corr[0];
        o[n][1] *= corr[0];
        o[n][2] *= corr[1];
        o[n][3] *= corr[1];
      }
      EMBER_UNROLL
      for (int kt = 0; kt < kKvStep / 16; ++kt) {
        // Tokens 16kt..16kt+15: fragment 2kt holds the first 8 (2t, 2t + 1), 2kt + 1 the next 8.
        const uint32_t p_frag[4] = {pack_half2(s[2 * kt][0], s[2 * kt][1]), pack_half2(s[2 * kt][2], s[2 * kt][3]),
                                    pack_half2(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                                    pack_half2(s[2 * kt + 1][2], s[2 * kt + 1][3])};
        // V's B fragment: tokens 16kt + 2t, + 1 (and + 8, + 9) of dim n·8 + g, one row each.
        const __half* v_col = v_s + (16 * kt + 2 * t) * kStride + g;
        EMBER_UNROLL
        for (int n = 0; n < kDimTiles; ++n) {
          const __half* v = v_col + 8 * n;
          const uint32_t b[2] = {pair_bits(v[0], v[kStride]), pair_bits(v[8 * kStride], v[9 * kStride])};
          mma_16x8x16(o[n], p_frag, b);
        }
      }
    }
    __syncthreads();  // before the next stage overwrites k_s, k_lo_s, v_s
  }

  EMBER_UNROLL
  for (int h = 0; h < 2; ++h) {
    l_run[h] = warp_xor_rounds<1, 2>(l_run[h], WarpAdd{});
  }
  EMBER_UNROLL
  for (int h = 0; h < 2; ++h) {
    if (row_of[h] >= tile.n_rows) continue;
    const float inv = 1.0f / l_run[h];  // >= 1: the row's own position scored the max, exp(0)
    float* out = a.out + (static_cast<int64_t>(tile.first_row + row_of[h]) * a.n_head + head) * a.head_dim;
    EMBER_UNROLL
    for (int n = 0; n < kDimTiles; ++n) {
      const int d = n * 8 + 2 * t;
      if (d < a.head_dim) {  // head_dim is even: d + 1 too
        out[d] = o[n][2 * h] * inv;
        out[d + 1] = o[n][2 * h + 1] * inv;
      }
    }
  }
}

}  // namespace

bool tiled_attention_supports(DType k_dtype, DType v_dtype, int32_t head_dim) noexcept {
  return kv_supports(k_dtype, v_dtype, head_dim) && head_dim > 0 && head_dim % 2 == 0 && head_dim <= kMaxTiledHeadDim;
}

bool plan_query_tiles(std::span<const KvRow> rows, int32_t n_head, int64_t min_blocks, std::vector<QueryTile>& tiles,
                      std::vector<int32_t>& lone_rows) {
  tiles.clear();
  lone_rows.clear();
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j].seq == rows[i].seq) ++j;  // a run of one sequence: [i, j)
    if (j - i >= static_cast<size_t>(kMinTileRows)) {
      // As few tiles as fit, their sizes balanced (65 rows: 33 + 32, not 64 + 1).
      const size_t n_tiles = (j - i + kQueryTileRows - 1) / kQueryTileRows;
      for (size_t k = 0, at = i; k < n_tiles; ++k) {
        const size_t n = (j - i) / n_tiles + (k < (j - i) % n_tiles ? 1 : 0);
        tiles.push_back({static_cast<int32_t>(at), static_cast<int32_t>(n)});
        at += n;
      }
    } else {
      for (size_t r = i; r < j; ++r) lone_rows.push_back(static_cast<int32_t>(r));
    }
    i = j;
  }
  if (tiles.empty() || static_cast<int64_t>(tiles.size()) * n_head < min_blocks) {
    tiles.clear();
    lone_rows.clear();
    return false;
  }
  return true;
}

void tiled_attention(const PagedKvView& kv, const DeviceKvSeqs& seqs, const KvRow* rows, int32_t n_rows,
                     const QueryTile* tiles, int32_t n_tiles, const float* q, const AttentionParams& params, float* out,
                     cudaStream_t stream) {
  EMBER_CUDA_EXPECT_MSG(tiled_attention_supports(kv.k_dtype, kv.v_dtype, kv.head_dim),
                        "CUDA tiled attention: F32, F16 or Q8_0 pools, head_dim even and at most 128");
  EMBER_CUDA_EXPECT(n_tiles >= 0 && n_rows >= 0);
  if (n_tiles == 0) return;
  EMBER_CUDA_EXPECT(tiles != nullptr);
  TiledArgs a{};
  static_cast<kv_rows::AttentionCall&>(a) = kv_rows::attention_call(kv, seqs, rows, n_rows, q, params, out);
  a.tiles = tiles;
  a.copy_rows = kv.k_dtype == DType::kF16 && kv.v_dtype == DType::kF16 && kv.head_dim % 8 == 0 &&
                reinterpret_cast<uintptr_t>(kv.k) % 16 == 0 && reinterpret_cast<uintptr_t>(kv.v) % 16 == 0;
  const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(params.n_head));
  with_row_formats(kv, a, [&]<typename KF, typename VF>() {
    if (kv.head_dim <= 64) {
      EMBER_CUDA_LAUNCH(grid, kThreads, 0, stream, tiled_attention_kernel<KF, VF, 64>)(a);
    } else {
      EMBER_CUDA_LAUNCH(grid, kThreads, 0, stream, tiled_attention_kernel<KF, VF, kMaxTiledHeadDim>)(a);
    }
  });
  EMBER_CUDA_CHECK_LAUNCH("tiled attention");
}

}  // namespace ember::cuda
