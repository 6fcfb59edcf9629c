// The avx512 attention tile kernel (this file is compiled with the AVX-512 flags only): flash
// attention over one kv head's paged K/V for a tile of queries, one 16-token block per step. The
// queries go in groups of 4 (GQA: the heads of one kv head), so each K/V element is loaded and
// widened once per group: q·k with lanes along head_dim for 4 queries x 4 tokens, reduced to one
// zmm per query by a transposing tree; then p·v with the group's accumulators in registers.
// Includes only plain-data headers (see attention_kernel.h): no <cmath>, so exp and tanh are ours.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/attention_kernel.h"

namespace ember {
namespace {

constexpr int kBlockTokens = 16;
// Blocks ahead of the current one whose K/V rows are prefetched: the next block is elsewhere in
// the pool (block table), so the hardware prefetcher cannot guess it.
constexpr int kPrefetchBlocks = 1;

// exp(x) for 16 lanes. Range reduction x = n·ln2 + r, |r| <= ln2/2, with ln2 split in two
// (Cody-Waite: n·kLn2Hi is exact), then Cephes' degree-5 minimax polynomial for e^r - 1 - r and
// e^r·2^n by vscalefps. Max relative error 1.2e-7 (one float ulp) against a double exp, measured
// on 1.75e7 points of [-87.3, 88]; attention_test bounds it by 2e-7. x < -87.33 (below the
// smallest normal result), -inf and NaN give exactly 0; x > 88.37 gives e^88.37.
inline __m512 exp512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

// tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~2e-7 (relative error grows near 0, where the
// soft-cap multiplies it back by the cap: ~1e-5 absolute on a logit for cap 50).
inline __m512 tanh512(__m512 x) {
  const __m512 e = exp512(_mm512_add_ps(x, x));
  return _mm512_sub_ps(_mm512_set1_ps(1.0f),
                       _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
}

// Lane t = the sum of the 16 lanes of a[t]: a transposing reduction tree (unpack, shuffle,
// 128-bit lane shuffles), 15 adds instead of 16 horizontal sums.
inline __m512 reduce16(const __m512* a) {
  __m512 q[4];
  for (int g = 0; g < 4; ++g) {
    const __m512* b = a + 4 * g;
    // Per 128-bit lane: [b0, b1, b0, b1] partial sums, then [b0, b1, b2, b3].
    const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(b[0], b[1]), _mm512_unpackhi_ps(b[0], b[1]));
    const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(b[2], b[3]), _mm512_unpackhi_ps(b[2], b[3]));
    q[g] = _mm512_add_ps(_mm512_shuffle_ps(s01, s23, 0x44), _mm512_shuffle_ps(s01, s23, 0xEE));
  }
  // Add the 128-bit lanes pairwise, twice: lane group g ends up holding tokens 4g..4g+3.
  const __m512 t0 = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], 0x88), _mm512_shuffle_f32x4(q[0], q[1], 0xDD));
  const __m512 t1 = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], 0x88), _mm512_shuffle_f32x4(q[2], q[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88), _mm512_shuffle_f32x4(t0, t1, 0xDD));
}

// Loaders of 16 elements of a K/V row (at element c, a multiple of 16; lanes outside `m` zero) as
// f32. kNarrow: not f32 in the pool, so worth converting once per block for several query groups.
struct LoadF16 {
  static constexpr bool kNarrow = true;
  static __m512 load(const uint8_t* row, int c, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + c));
  }
};
// Q8_0 rows: 34-byte blocks (f16 d, 32 int8 q) of 32 values q·d; c's 16 values lie in one block.
struct LoadQ8_0 {
  static constexpr bool kNarrow = true;
  static __m512 load(const uint8_t* row, int c, __mmask16 m) {
    const uint8_t* block = row + (c >> 5) * 34;
    uint16_t h;
    std::memcpy(&h, block, sizeof h);
    const __m128i q = _mm_maskz_loadu_epi8(m, block + 2 + (c & 31));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(_cvtsh_ss(h)));
  }
};
struct LoadF32 {
  static constexpr bool kNarrow = false;
  static __m512 load(const uint8_t* row, int c, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + c);
  }
};

// What one block step needs besides the queries: the block's K/V rows of this kv head.
struct BlockRows {
  const uint8_t* k;
  const uint8_t* v;
  int64_t k_row_bytes;
  int64_t v_row_bytes;
  int head_dim;
  int dp;          // head_dim rounded up to 16
  __mmask16 tail;  // lanes of the last 16-column chunk that are inside head_dim
};

// acc[g·TG + t] += q_g[c..c+16) · k_t[c..c+16) for the QG queries and TG tokens of one group.
template <int QG, int TG, typename K>
inline void qk_chunk(__m512* acc, const float* q, const BlockRows& b, const uint8_t* rows, int c, __mmask16 m) {
  __m512 kc[TG];
#pragma GCC unroll 16
  for (int t = 0; t < TG; ++t) kc[t] = K::load(rows + t * b.k_row_bytes, c, m);
#pragma GCC unroll 4
  for (int g = 0; g < QG; ++g) {
    const __m512 qc = _mm512_load_ps(q + g * b.dp + c);
#pragma GCC unroll 16
    for (int t = 0; t < TG; ++t) acc[g * TG + t] = _mm512_fmadd_ps(qc, kc[t], acc[g * TG + t]);
  }
}

// s[g] = the 16 scores of query g (q rows dp apart) against the block's 16 tokens. The tokens go
// in QG groups of TG = 16/QG so that 16 accumulators serve QG queries: each K chunk is loaded once
// for all of them (GQA), and one reduce16 per group yields lane g·TG + t.
template <int QG, typename K>
inline void block_scores(const float* q, const BlockRows& b, __m512* s) {
  constexpr int TG = kBlockTokens / QG;
  __m512 r[QG];
  const int full = b.head_dim / 16 * 16;
  for (int k = 0; k < QG; ++k) {
    __m512 acc[kBlockTokens];
#pragma GCC unroll 16
    for (int t = 0; t < kBlockTokens; ++t) acc[t] = _mm512_setzero_ps();
    const uint8_t* rows = b.k + k * TG * b.k_row_bytes;
    for (int c = 0; c < full; c += 16) qk_chunk<QG, TG, K>(acc, q, b, rows, c, 0xFFFF);
    if (full < b.head_dim) qk_chunk<QG, TG, K>(acc, q, b, rows, full, b.tail);
    r[k] = reduce16(acc);
  }
  if constexpr (QG == 1) {
    s[0] = r[0];
  } else if constexpr (QG == 2) {  // r[k]: lanes 0-7 query 0, 8-15 query 1, tokens 8k..8k+7
    s[0] = _mm512_shuffle_f32x4(r[0], r[1], 0x44);
    s[1] = _mm512_shuffle_f32x4(r[0], r[1], 0xEE);
  } else {  // r[k]: 128-bit lane g = query g, tokens 4k..4k+3; transpose the 4x4 lanes
    const __m512 t0 = _mm512_shuffle_f32x4(r[0], r[1], 0x44), t1 = _mm512_shuffle_f32x4(r[0], r[1], 0xEE);
    const __m512 t2 = _mm512_shuffle_f32x4(r[2], r[3], 0x44), t3 = _mm512_shuffle_f32x4(r[2], r[3], 0xEE);
    s[0] = _mm512_shuffle_f32x4(t0, t2, 0x88);
    s[1] = _mm512_shuffle_f32x4(t0, t2, 0xDD);
    s[2] = _mm512_shuffle_f32x4(t1, t3, 0x88);
    s[3] = _mm512_shuffle_f32x4(t1, t3, 0xDD);
  }
}

// acc_g[c0 .. c0 + 16·NC) = acc_g·corr[g] + Σ_{t in [t0, t1)} p[g][t]·v_t for the QG queries
// (acc rows dp apart): each V chunk is loaded once for all of them. The last chunk uses `last`.
template <int QG, int NC, typename V>
inline void pv_columns(float* acc, const float* corr, const float (*p)[kBlockTokens], const BlockRows& b, int c0,
                       int t0, int t1, __mmask16 last) {
  __m512 r[QG][NC];
#pragma GCC unroll 4
  for (int g = 0; g < QG; ++g) {
    const __m512 cg = _mm512_set1_ps(corr[g]);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) r[g][j] = _mm512_mul_ps(_mm512_load_ps(acc + g * b.dp + c0 + 16 * j), cg);
  }
  for (int t = t0; t < t1; ++t) {
    const uint8_t* row = b.v + t * b.v_row_bytes;
    __m512 vc[NC];
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) vc[j] = V::load(row, c0 + 16 * j, j == NC - 1 ? last : static_cast<__mmask16>(0xFFFF));
#pragma GCC unroll 4
    for (int g = 0; g < QG; ++g) {
      const __m512 pg = _mm512_set1_ps(p[g][t]);
#pragma GCC unroll 8
      for (int j = 0; j < NC; ++j) r[g][j] = _mm512_fmadd_ps(pg, vc[j], r[g][j]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < QG; ++g) {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) _mm512_store_ps(acc + g * b.dp + c0 + 16 * j, r[g][j]);
  }
}

// All columns in groups of at most 16 / QG accumulators per query (8 for one query).
template <int QG, typename V>
inline void pv_all(float* acc, const float* corr, const float (*p)[kBlockTokens], const BlockRows& b, int t0, int t1) {
  constexpr int kMaxColumns = QG == 4 ? 4 : 8;
  for (int c0 = 0; c0 < b.dp; c0 += 16 * kMaxColumns) {
    const int nc = (b.dp - c0) / 16 < kMaxColumns ? (b.dp - c0) / 16 : kMaxColumns;
    const __mmask16 last = c0 + 16 * nc > b.head_dim ? b.tail : static_cast<__mmask16>(0xFFFF);
    switch (nc) {
      case 1: pv_columns<QG, 1, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 2: pv_columns<QG, 2, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 3: pv_columns<QG, 3, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 4: pv_columns<QG, 4, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 5: pv_columns<QG, 5 < kMaxColumns ? 5 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 6: pv_columns<QG, 6 < kMaxColumns ? 6 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1, last); break;
      case 7: pv_columns<QG, 7 < kMaxColumns ? 7 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1, last); break;
      default: pv_columns<QG, kMaxColumns, V>(acc, corr, p, b, c0, t0, t1, last); break;
    }
  }
}

inline void prefetch_rows(const uint8_t* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

inline int imax(int a, int b) { return a > b ? a : b; }
inline int imin(int a, int b) { return a < b ? a : b; }

// Queries [i0, i0 + QG) against one block (positions pos0 + [t0, t1) inside [begin, end)).
template <int QG, typename K, typename V>
inline void block_step(const AttnTileArgs& a, const BlockRows& b, int i0, int pos0, int t0, int t1) {
  const float neg_inf = -__builtin_inff();
  const __m512 lane = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 s[QG];
  block_scores<QG, K>(a.q + static_cast<int64_t>(i0) * b.dp, b, s);
  alignas(64) float p[QG][kBlockTokens];
  float corr[QG];
  int u0 = kBlockTokens, u1 = 0;  // the union of the queries' visible tokens
  for (int g = 0; g < QG; ++g) {
    const int i = i0 + g;
    // This query's visible tokens of the block, [q0, q1) (possibly empty: then p = 0, corr = 1).
    const int q0 = imax(imax(a.lo[i] - pos0, t0), 0), q1 = imin(a.hi[i] + 1 - pos0, t1);
    const __mmask16 visible =
        q0 < q1 ? static_cast<__mmask16>(((1u << q1) - 1) & ~((1u << q0) - 1)) : static_cast<__mmask16>(0);
    u0 = q0 < q1 ? imin(u0, q0) : u0;
    u1 = q0 < q1 ? imax(u1, q1) : u1;
    __m512 sg = s[g];
    if (a.softcap > 0.0f) {
      const __m512 cap = _mm512_set1_ps(a.softcap);
      sg = _mm512_mul_ps(cap, tanh512(_mm512_div_ps(sg, cap)));
    }
    if (a.slope != nullptr) {  // ALiBi: slope · (token position - query position)
      const __m512 dist = _mm512_add_ps(lane, _mm512_set1_ps(static_cast<float>(pos0 - a.pos[i])));
      sg = _mm512_fmadd_ps(_mm512_set1_ps(a.slope[i]), dist, sg);
    }
    sg = _mm512_mask_mov_ps(_mm512_set1_ps(neg_inf), visible, sg);  // also hides unwritten slots
    const float m_old = a.m[i];
    const float block_max = _mm512_reduce_max_ps(sg);
    const float m_new = block_max > m_old ? block_max : m_old;
    corr[g] = 1.0f;
    if (m_new > m_old) corr[g] = _mm512_cvtss_f32(exp512(_mm512_set1_ps(m_old - m_new)));  // 0 if m_old = -inf
    // Hidden lanes: exp(-inf) = 0; a query with nothing visible yet: exp(NaN) = 0 as well.
    const __m512 e = exp512(_mm512_sub_ps(sg, _mm512_set1_ps(m_new)));
    _mm512_store_ps(p[g], e);
    a.m[i] = m_new;
    a.l[i] = a.l[i] * corr[g] + _mm512_reduce_add_ps(e);
  }
  if (u0 < u1) pv_all<QG, V>(a.acc + static_cast<int64_t>(i0) * b.dp, corr, p, b, u0, u1);
}

// Rows [t0, t1) of a block as f32 rows of dp floats (pad lanes 0) in dst.
template <typename L>
inline void convert_rows(const uint8_t* src, int64_t row_bytes, int head_dim, int dp, __mmask16 tail, int t0, int t1,
                         float* dst) {
  for (int t = t0; t < t1; ++t) {
    for (int c = 0; c < dp; c += 16) {
      _mm512_store_ps(dst + t * dp + c, L::load(src + t * row_bytes, c, c + 16 <= head_dim ? 0xFFFF : tail));
    }
  }
}

// Queries in groups of 4, then 2, then 1, against one block: it stays in L1 across the groups.
template <typename K, typename V>
inline void all_queries(const AttnTileArgs& a, const BlockRows& b, int pos0, int t0, int t1) {
  int i = 0;
  for (; i + 4 <= a.n_q; i += 4) block_step<4, K, V>(a, b, i, pos0, t0, t1);
  if (i + 2 <= a.n_q) {
    block_step<2, K, V>(a, b, i, pos0, t0, t1);
    i += 2;
  }
  if (i < a.n_q) block_step<1, K, V>(a, b, i, pos0, t0, t1);
}

template <typename K, typename V>
void attention_tile(const AttnTileArgs& a) {
  const int dp = a.head_dim_pad;
  for (int i = 0; i < a.n_q; ++i) {
    a.m[i] = -__builtin_inff();
    a.l[i] = 0.0f;
    std::memset(a.acc + static_cast<int64_t>(i) * dp, 0, sizeof(float) * static_cast<size_t>(dp));
  }
  const auto tail = static_cast<__mmask16>(a.head_dim % 16 == 0 ? 0xFFFF : (1u << (a.head_dim % 16)) - 1);
  BlockRows b{nullptr, nullptr, a.k_row_bytes, a.v_row_bytes, a.head_dim, dp, tail};
  // More than one group of queries (prefill tiles, GQA 8): convert the block's F16 / Q8_0 rows once into
  // the scratch instead of once per group.
  const bool convert = a.n_q > 4 && (K::kNarrow || V::kNarrow);
  const BlockRows f32_rows{reinterpret_cast<const uint8_t*>(a.scratch),
                           reinterpret_cast<const uint8_t*>(a.scratch + kBlockTokens * dp),
                           static_cast<int64_t>(sizeof(float)) * dp,
                           static_cast<int64_t>(sizeof(float)) * dp,
                           a.head_dim,
                           dp,
                           tail};
  const int b_first = a.begin / kBlockTokens, b_last = (a.end - 1) / kBlockTokens;
  for (int blk = b_first; blk <= b_last; ++blk) {
    const int pos0 = blk * kBlockTokens;
    const int t0 = imax(a.begin, pos0) - pos0, t1 = imin(a.end, pos0 + kBlockTokens) - pos0;
    const int64_t block = a.block_table[blk];
    b.k = a.k_base + block * a.k_block_stride;
    b.v = a.v_base + block * a.v_block_stride;
    if (blk + kPrefetchBlocks <= b_last) {
      const int64_t ahead = a.block_table[blk + kPrefetchBlocks];
      prefetch_rows(a.k_base + ahead * a.k_block_stride, kBlockTokens * a.k_row_bytes);
      prefetch_rows(a.v_base + ahead * a.v_block_stride, kBlockTokens * a.v_row_bytes);
    }
    if (convert) {
      convert_rows<K>(b.k, b.k_row_bytes, a.head_dim, dp, tail, t0, t1, a.scratch);
      convert_rows<V>(b.v, b.v_row_bytes, a.head_dim, dp, tail, t0, t1, a.scratch + kBlockTokens * dp);
      all_queries<LoadF32, LoadF32>(a, f32_rows, pos0, t0, t1);
    } else {
      all_queries<K, V>(a, b, pos0, t0, t1);
    }
  }
}

// DType ids: 0 = F32, 1 = F16, 8 = Q8_0.
template <typename K>
void attention_tile_for_v(const AttnTileArgs& a) {
  if (a.v_dtype == 1) return attention_tile<K, LoadF16>(a);
  if (a.v_dtype == 8) return attention_tile<K, LoadQ8_0>(a);
  attention_tile<K, LoadF32>(a);
}

void attention_tile_avx512(const AttnTileArgs& a) {
  if (a.k_dtype == 1) return attention_tile_for_v<LoadF16>(a);
  if (a.k_dtype == 8) return attention_tile_for_v<LoadQ8_0>(a);
  attention_tile_for_v<LoadF32>(a);
}

void exp_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

AttentionIsaKernel attention_avx512_kernel() { return {attention_tile_avx512, exp_avx512, 1}; }

}  // namespace ember
