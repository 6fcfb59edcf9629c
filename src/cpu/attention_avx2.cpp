// The avx2 attention tile kernel (AVX2 + FMA + F16C; this file is compiled with those flags only):
// the avx512 kernel's scheme on 8-lane vectors and 16 registers: a block's 16 scores are two ymm,
// queries go in groups of 2 (then 1), head_dim a multiple of 8 (the driver keeps the scalar kernel
// for other sizes). Includes only plain-data headers (see attention_kernel.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/attention_kernel.h"
#include "cpu/simd_avx2.h"

namespace ember {
namespace {

constexpr int kBlockTokens = 16;
constexpr int kPrefetchBlocks = 1;  // as in attention_avx512.cpp

// exp(x) as exp512 in attention_avx512.cpp (same reduction and polynomial), with 2^n built in the
// exponent bits: x is clamped to [-87.34, 88] so that n stays in [-126, 127]. Below -87.34, -inf
// and NaN give exactly 0.
inline __m256 exp256(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(two_n)), keep);
}

inline __m256 tanh256(__m256 x) {  // 1 - 2 / (e^{2x} + 1), as tanh512
  const __m256 e = exp256(_mm256_add_ps(x, x));
  return _mm256_sub_ps(_mm256_set1_ps(1.0f),
                       _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// Lane i = the sum of the 8 lanes of a[i] (a transposing hadd tree).
inline __m256 reduce8(const __m256* a) {
  const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

// 8 elements of a K/V row at element c (a multiple of 8), as f32. kNarrow: not f32 in the pool, so
// worth converting once per block when several query groups read it.
struct LoadF16 {
  static constexpr bool kNarrow = true;
  static __m256 load(const uint8_t* row, int c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  }
};
// Q8_0 rows: 34-byte blocks (f16 d, 32 int8 q) of 32 values q·d; c's 8 values lie in one block.
struct LoadQ8_0 {
  static constexpr bool kNarrow = true;
  static __m256 load(const uint8_t* row, int c) {
    const uint8_t* block = row + (c >> 5) * 34;
    uint16_t h;
    std::memcpy(&h, block, sizeof h);
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + (c & 31)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(_cvtsh_ss(h)));
  }
};
struct LoadF32 {
  static constexpr bool kNarrow = false;
  static __m256 load(const uint8_t* row, int c) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c); }
};

struct BlockRows {
  const uint8_t* k;
  const uint8_t* v;
  int64_t k_row_bytes;
  int64_t v_row_bytes;
  int head_dim;  // a multiple of 8
  int dp;        // row stride of q and acc in floats
};

// Two halves of a block's 16 lanes (tokens 0-7, 8-15).
struct Scores {
  __m256 lo, hi;
};

// acc[g·TG + t] += q_g[c..c+8) · k_t[c..c+8).
template <int QG, int TG, typename K>
inline void qk_chunk(__m256* acc, const float* q, const BlockRows& b, const uint8_t* rows, int c) {
#pragma GCC unroll 2
  for (int g = 0; g < QG; ++g) {
    const __m256 qc = _mm256_load_ps(q + g * b.dp + c);
#pragma GCC unroll 8
    for (int t = 0; t < TG; ++t)
      acc[g * TG + t] = _mm256_fmadd_ps(qc, K::load(rows + t * b.k_row_bytes, c), acc[g * TG + t]);
  }
}

// The block's 16 scores for QG (1 or 2) queries: tokens in groups of TG = 8/QG, 8 accumulators.
template <int QG, typename K>
inline void block_scores(const float* q, const BlockRows& b, Scores* s) {
  constexpr int TG = 8 / QG, kGroups = kBlockTokens / TG;
  __m256 r[kGroups];
  for (int k = 0; k < kGroups; ++k) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
    const uint8_t* rows = b.k + k * TG * b.k_row_bytes;
    for (int c = 0; c < b.head_dim; c += 8) qk_chunk<QG, TG, K>(acc, q, b, rows, c);
    r[k] = reduce8(acc);
  }
  if constexpr (QG == 1) {
    s[0] = {r[0], r[1]};
  } else {  // r[k]: lanes 0-3 query 0, 4-7 query 1, tokens 4k..4k+3
    s[0] = {_mm256_permute2f128_ps(r[0], r[1], 0x20), _mm256_permute2f128_ps(r[2], r[3], 0x20)};
    s[1] = {_mm256_permute2f128_ps(r[0], r[1], 0x31), _mm256_permute2f128_ps(r[2], r[3], 0x31)};
  }
}

// acc_g[c0 .. c0 + 8·NC) = acc_g·corr[g] + Σ_{t in [t0, t1)} p[g][t]·v_t.
template <int QG, int NC, typename V>
inline void pv_columns(float* acc, const float* corr, const float (*p)[kBlockTokens], const BlockRows& b, int c0,
                       int t0, int t1) {
  __m256 r[QG][NC];
#pragma GCC unroll 2
  for (int g = 0; g < QG; ++g) {
    const __m256 cg = _mm256_set1_ps(corr[g]);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) r[g][j] = _mm256_mul_ps(_mm256_load_ps(acc + g * b.dp + c0 + 8 * j), cg);
  }
  for (int t = t0; t < t1; ++t) {
    const uint8_t* row = b.v + t * b.v_row_bytes;
    __m256 pg[QG];
#pragma GCC unroll 2
    for (int g = 0; g < QG; ++g) pg[g] = _mm256_set1_ps(p[g][t]);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      const __m256 vc = V::load(row, c0 + 8 * j);
#pragma GCC unroll 2
      for (int g = 0; g < QG; ++g) r[g][j] = _mm256_fmadd_ps(pg[g], vc, r[g][j]);
    }
  }
#pragma GCC unroll 2
  for (int g = 0; g < QG; ++g) {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) _mm256_store_ps(acc + g * b.dp + c0 + 8 * j, r[g][j]);
  }
}

template <int QG, typename V>
inline void pv_all(float* acc, const float* corr, const float (*p)[kBlockTokens], const BlockRows& b, int t0, int t1) {
  constexpr int kMaxColumns = QG == 2 ? 4 : 8;
  for (int c0 = 0; c0 < b.head_dim; c0 += 8 * kMaxColumns) {
    switch ((b.head_dim - c0) / 8 < kMaxColumns ? (b.head_dim - c0) / 8 : kMaxColumns) {
      case 1: pv_columns<QG, 1, V>(acc, corr, p, b, c0, t0, t1); break;
      case 2: pv_columns<QG, 2, V>(acc, corr, p, b, c0, t0, t1); break;
      case 3: pv_columns<QG, 3, V>(acc, corr, p, b, c0, t0, t1); break;
      case 4: pv_columns<QG, 4, V>(acc, corr, p, b, c0, t0, t1); break;
      case 5: pv_columns<QG, 5 < kMaxColumns ? 5 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1); break;
      case 6: pv_columns<QG, 6 < kMaxColumns ? 6 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1); break;
      case 7: pv_columns<QG, 7 < kMaxColumns ? 7 : kMaxColumns, V>(acc, corr, p, b, c0, t0, t1); break;
      default: pv_columns<QG, kMaxColumns, V>(acc, corr, p, b, c0, t0, t1); break;
    }
  }
}

inline int imax(int a, int b) { return a > b ? a : b; }
inline int imin(int a, int b) { return a < b ? a : b; }

// One query's scores of the block -> its softmax weights p (16 floats) and the online update of
// m and l; returns the factor the accumulator must be rescaled by.
inline float softmax_step(const AttnTileArgs& a, int i, Scores s, int pos0, int q0, int q1, float* p) {
  const float neg_inf = -__builtin_inff();
  const __m256i lane_lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lane_hi = _mm256_add_epi32(lane_lo, _mm256_set1_epi32(8));
  if (a.softcap > 0.0f) {
    const __m256 cap = _mm256_set1_ps(a.softcap);
    s.lo = _mm256_mul_ps(cap, tanh256(_mm256_div_ps(s.lo, cap)));
    s.hi = _mm256_mul_ps(cap, tanh256(_mm256_div_ps(s.hi, cap)));
  }
  if (a.slope != nullptr) {  // ALiBi: slope · (token position - query position)
    const __m256 slope = _mm256_set1_ps(a.slope[i]), base = _mm256_set1_ps(static_cast<float>(pos0 - a.pos[i]));
    s.lo = _mm256_fmadd_ps(slope, _mm256_add_ps(_mm256_cvtepi32_ps(lane_lo), base), s.lo);
    s.hi = _mm256_fmadd_ps(slope, _mm256_add_ps(_mm256_cvtepi32_ps(lane_hi), base), s.hi);
  }
  // Visible lanes: q0 <= lane < q1 (none when q0 >= q1); the others, unwritten slots included, -inf.
  const __m256i first = _mm256_set1_epi32(q0 - 1), end = _mm256_set1_epi32(q1);
  const __m256 vis_lo =
      _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(lane_lo, first), _mm256_cmpgt_epi32(end, lane_lo)));
  const __m256 vis_hi =
      _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(lane_hi, first), _mm256_cmpgt_epi32(end, lane_hi)));
  s.lo = _mm256_blendv_ps(_mm256_set1_ps(neg_inf), s.lo, vis_lo);
  s.hi = _mm256_blendv_ps(_mm256_set1_ps(neg_inf), s.hi, vis_hi);
  const float m_old = a.m[i];
  const float block_max = hmax(_mm256_max_ps(s.lo, s.hi));
  const float m_new = block_max > m_old ? block_max : m_old;
  float corr = 1.0f;
  if (m_new > m_old) corr = _mm256_cvtss_f32(exp256(_mm256_set1_ps(m_old - m_new)));  // 0 if m_old = -inf
  const __m256 m = _mm256_set1_ps(m_new);
  const __m256 e_lo = exp256(_mm256_sub_ps(s.lo, m)), e_hi = exp256(_mm256_sub_ps(s.hi, m));
  _mm256_store_ps(p, e_lo);
  _mm256_store_ps(p + 8, e_hi);
  a.m[i] = m_new;
  a.l[i] = a.l[i] * corr + hsum(_mm256_add_ps(e_lo, e_hi));
  return corr;
}

template <int QG, typename K, typename V>
inline void block_step(const AttnTileArgs& a, const BlockRows& b, int i0, int pos0, int t0, int t1) {
  Scores s[QG];
  block_scores<QG, K>(a.q + static_cast<int64_t>(i0) * b.dp, b, s);
  alignas(32) float p[QG][kBlockTokens];
  float corr[QG];
  int u0 = kBlockTokens, u1 = 0;  // the union of the queries' visible tokens
  for (int g = 0; g < QG; ++g) {
    const int i = i0 + g;
    const int q0 = imax(imax(a.lo[i] - pos0, t0), 0), q1 = imin(a.hi[i] + 1 - pos0, t1);
    u0 = q0 < q1 ? imin(u0, q0) : u0;
    u1 = q0 < q1 ? imax(u1, q1) : u1;
    corr[g] = softmax_step(a, i, s[g], pos0, q0, q1, p[g]);
  }
  if (u0 < u1) pv_all<QG, V>(a.acc + static_cast<int64_t>(i0) * b.dp, corr, p, b, u0, u1);
}

template <typename K, typename V>
inline void all_queries(const AttnTileArgs& a, const BlockRows& b, int pos0, int t0, int t1) {
  int i = 0;
  for (; i + 2 <= a.n_q; i += 2) block_step<2, K, V>(a, b, i, pos0, t0, t1);
  if (i < a.n_q) block_step<1, K, V>(a, b, i, pos0, t0, t1);
}

template <typename L>
inline void convert_rows(const uint8_t* src, int64_t row_bytes, int head_dim, int dp, int t0, int t1, float* dst) {
  for (int t = t0; t < t1; ++t) {
    for (int c = 0; c < head_dim; c += 8) _mm256_store_ps(dst + t * dp + c, L::load(src + t * row_bytes, c));
  }
}

inline void prefetch_rows(const uint8_t* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

template <typename K, typename V>
void attention_tile(const AttnTileArgs& a) {
  const int dp = a.head_dim_pad;
  for (int i = 0; i < a.n_q; ++i) {
    a.m[i] = -__builtin_inff();
    a.l[i] = 0.0f;
    std::memset(a.acc + static_cast<int64_t>(i) * dp, 0, sizeof(float) * static_cast<size_t>(dp));
  }
  BlockRows b{nullptr, nullptr, a.k_row_bytes, a.v_row_bytes, a.head_dim, dp};
  // Several query groups: convert the block's F16 / Q8_0 rows once into the scratch.
  const bool convert = a.n_q > 2 && (K::kNarrow || V::kNarrow);
  const auto f32_row = static_cast<int64_t>(sizeof(float)) * dp;
  const BlockRows f32_rows{reinterpret_cast<const uint8_t*>(a.scratch),
                           reinterpret_cast<const uint8_t*>(a.scratch + kBlockTokens * dp),
                           f32_row,
                           f32_row,
                           a.head_dim,
                           dp};
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
      convert_rows<K>(b.k, b.k_row_bytes, a.head_dim, dp, t0, t1, a.scratch);
      convert_rows<V>(b.v, b.v_row_bytes, a.head_dim, dp, t0, t1, a.scratch + kBlockTokens * dp);
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

void attention_tile_avx2(const AttnTileArgs& a) {
  if (a.k_dtype == 1) return attention_tile_for_v<LoadF16>(a);
  if (a.k_dtype == 8) return attention_tile_for_v<LoadQ8_0>(a);
  attention_tile_for_v<LoadF32>(a);
}

void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp256(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    std::memcpy(buf, x + i, sizeof(float) * static_cast<size_t>(n - i));
    _mm256_store_ps(buf, exp256(_mm256_load_ps(buf)));
    std::memcpy(y + i, buf, sizeof(float) * static_cast<size_t>(n - i));
  }
}

}  // namespace

AttentionIsaKernel attention_avx2_kernel() { return {attention_tile_avx2, exp_avx2, 8}; }

}  // namespace ember
