// The avx512 dot products of the 256-element super-block formats (K-quants, IQ4_XS) with Q8_K
// activations: maddubs + VNNI vpdpwssd (the sub-block scales applied to 16-bit pair sums).
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"

namespace ember {
namespace {

// Prefetch distance into the weight stream: ~4 KiB ahead, as the 32-element kernels measured best.
constexpr int kPrefetchBytes = 4096;

template <typename Block>
inline void prefetch_block(const Block* x) {
  prefetch_lines(reinterpret_cast<const char*>(x) + kPrefetchBytes, sizeof(Block));
}

// Word indices for vpermw: the four 128-bit lanes take 16-bit entries w0..w3 (each repeated 8x).
inline __m512i lane_words(int w0, int w1, int w2, int w3) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(
          _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(w1)), _mm_set1_epi16(static_cast<int16_t>(w0)))),
      _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(w3)), _mm_set1_epi16(static_cast<int16_t>(w2))), 1);
}

// The 64 bytes at p.
inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }

// Sum of the 16 floats of v.
inline float hsum512(__m512 v) { return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1))); }

// Σ_j min_j (bsums[2j] + bsums[2j+1]) of a Q4_K/Q5_K super-block as 8 int32 lanes (lane j: sub-block
// j), the term the mins contribute: x = d·sc·q - dmin·min, so Σ x·y = d Σ sc Σ q·y - dmin Σ min Σ y.
inline __m256i mins_dot_bsums(uint64_t mins, const int16_t* bsums) {
  const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mins));
  const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));  // min j in words 2j, 2j+1
  return _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)), m16);
}

// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins. qs byte l of chunk c (32 bytes) holds
// element 64c+l in its low nibble and 64c+32+l in its high nibble. One zmm of qs (two chunks) gives
// low nibbles [sub 4k | sub 4k+2] and high nibbles [sub 4k+1 | sub 4k+3]; regrouped by 256-bit halves
// they follow the activations' order, so the activations are plain 64-byte loads. R activation rows
// share each block's unpacking (scales, nibbles, scale words); every row gets exactly the
// operations of R = 1, so the rows' results are the one-row kernel's bit for bit.
template <int R>
void dot_q4_k_q8_k_rows(int64_t n, const void* vx, const void* const (&vy)[R], float* out) {
  const auto* x = static_cast<const BlockQ4_K*>(vx);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(vy[r]);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Scale words for the four zmm of a super-block: zmm i holds sub-blocks 2i (lanes 0-1), 2i+1 (2-3).
  const __m512i scale_idx[4] = {lane_words(0, 0, 1, 1), lane_words(2, 2, 3, 3), lane_words(4, 4, 5, 5),
                                lane_words(6, 6, 7, 7)};
  __m512 acc[R];
  __m256 acc_min[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps(), acc_min[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    uint64_t scales, mins;
    unpack_k4_scales(x[b].scales, &scales, &mins);
    const float dmin = _cvtsh_ss(x[b].dmin), d = _cvtsh_ss(x[b].d);
    for (int r = 0; r < R; ++r) {
      acc_min[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins_dot_bsums(mins, y[r][b].bsums)),
                                   _mm256_set1_ps(dmin * y[r][b].d), acc_min[r]);
    }
    const __m512i sc16 =
        _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    __m512i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
    for (int k = 0; k < 2; ++k) {
      const __m512i q = load64(x[b].qs + 64 * k);
      const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      const __m512i v0 = _mm512_shuffle_i64x2(lo, hi, 0x44);  // elements 128k + 0..63
      const __m512i v1 = _mm512_shuffle_i64x2(lo, hi, 0xEE);  // elements 128k + 64..127
      const __m512i s0 = _mm512_permutexvar_epi16(scale_idx[2 * k], sc16);
      const __m512i s1 = _mm512_permutexvar_epi16(scale_idx[2 * k + 1], sc16);
      for (int r = 0; r < R; ++r) {
        const __m512i p0 = _mm512_maddubs_epi16(v0, load64(y[r][b].qs + 128 * k));
        const __m512i p1 = _mm512_maddubs_epi16(v1, load64(y[r][b].qs + 128 * k + 64));
        isum[r] = _mm512_dpwssd_epi32(isum[r], p0, s0);
        isum[r] = _mm512_dpwssd_epi32(isum[r], p1, s1);
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(d * y[r][b].d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum512(acc[r]) - hsum(acc_min[r]);
}

float vec_dot_q4_k_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  float out;
  dot_q4_k_q8_k_rows<1>(n, vx, {vy}, &out);
  return out;
}

void vec_dot_2_q4_k_q8_k_avx512(int64_t n, const void* vx, const void* vy0, const void* vy1, float* out) {
  dot_q4_k_q8_k_rows<2>(n, vx, {vy0, vy1}, out);
}

// Q6_K: 16 groups of 16 with signed 8-bit scales, q = 6 bits (ql nibble | 2 qh bits << 4) - 32.
// Per 128 elements (half h): ql bytes 0..31 hold elements 0..31 (low nibbles) and 64..95 (high),
// bytes 32..63 hold 32..63 and 96..127; qh byte l holds the top bits of l, l+32, l+64, l+96 in bit
// pairs 0, 2, 4, 6. The unsigned 0..63 go into maddubs; the -32 becomes -32 Σ_g sc_g bsums_g. R
// activation rows share the unpacking, as for Q4_K.
template <int R>
void dot_q6_k_q8_k_rows(int64_t n, const void* vx, const void* const (&vy)[R], float* out) {
  const auto* x = static_cast<const BlockQ6_K*>(vx);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(vy[r]);
  const __m512i low4 = _mm512_set1_epi8(0x0F), qh_bits = _mm512_set1_epi8(0x33);
  // zmm i of a super-block covers groups 4i..4i+3, one per 128-bit lane.
  const __m512i scale_idx[4] = {lane_words(0, 1, 2, 3), lane_words(4, 5, 6, 7), lane_words(8, 9, 10, 11),
                                lane_words(12, 13, 14, 15)};
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales)));
    __m512i isum[R];
    for (int r = 0; r < R; ++r) {
      const __m256i offset =
          _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[r][b].bsums)), sc16);
      isum[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
    }
    const __m512i sc = _mm512_castsi256_si512(sc16);
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = load64(x[b].ql + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qh + 32 * h));
      // Bits 0-1: top bits of the low-nibble elements; bits 4-5: of the high-nibble ones.
      const __m512i hb =
          _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1), qh_bits);
      // (a & 0x0F) | (b & 0xF0) in one vpternlog (imm 0xE4: c ? a : b with c = 0x0F).
      const __m512i q_lo = _mm512_ternarylogic_epi32(ql, _mm512_slli_epi16(hb, 4), low4, 0xE4);
      const __m512i q_hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), hb, low4, 0xE4);
      const __m512i s0 = _mm512_permutexvar_epi16(scale_idx[2 * h], sc);
      const __m512i s1 = _mm512_permutexvar_epi16(scale_idx[2 * h + 1], sc);
      for (int r = 0; r < R; ++r) {
        const __m512i p0 = _mm512_maddubs_epi16(q_lo, load64(y[r][b].qs + 128 * h));
        const __m512i p1 = _mm512_maddubs_epi16(q_hi, load64(y[r][b].qs + 128 * h + 64));
        isum[r] = _mm512_dpwssd_epi32(isum[r], p0, s0);
        isum[r] = _mm512_dpwssd_epi32(isum[r], p1, s1);
      }
    }
    const float d = _cvtsh_ss(x[b].d);
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(d * y[r][b].d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum512(acc[r]);
}

float vec_dot_q6_k_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  float out;
  dot_q6_k_q8_k_rows<1>(n, vx, {vy}, &out);
  return out;
}

void vec_dot_2_q6_k_q8_k_avx512(int64_t n, const void* vx, const void* vy0, const void* vy1, float* out) {
  dot_q6_k_q8_k_rows<2>(n, vx, {vy0, vy1}, out);
}

// Q5_K: Q4_K plus a 5th bit per element: bit j of qh[l] belongs to element 32j + l (sub-block j).
// The zmm of sub-blocks 2i, 2i+1 (elements 64i..64i+63) tests bits 2i and 2i+1 of qh (broadcast to
// both halves) and adds 16 where set.
float vec_dot_q5_k_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ5_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m512i low4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
  const __m512i scale_idx[4] = {lane_words(0, 0, 1, 1), lane_words(2, 2, 3, 3), lane_words(4, 4, 5, 5),
                                lane_words(6, 6, 7, 7)};
  __m512i bit_sel[4];
  for (int i = 0; i < 4; ++i) {
    bit_sel[i] = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * i))),
                                    _mm256_set1_epi8(static_cast<char>(1 << (2 * i + 1))), 1);
  }
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    uint64_t scales, mins;
    unpack_k4_scales(x[b].scales, &scales, &mins);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins_dot_bsums(mins, y[b].bsums)),
                              _mm256_set1_ps(_cvtsh_ss(x[b].dmin) * y[b].d), acc_min);
    const __m512i sc16 =
        _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qh)));
    __m512i isum = _mm512_setzero_si512();
    for (int k = 0; k < 2; ++k) {
      const __m512i q = load64(x[b].qs + 64 * k);
      const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      __m512i v0 = _mm512_shuffle_i64x2(lo, hi, 0x44), v1 = _mm512_shuffle_i64x2(lo, hi, 0xEE);
      v0 = _mm512_mask_add_epi8(v0, _mm512_test_epi8_mask(qh, bit_sel[2 * k]), v0, sixteen);
      v1 = _mm512_mask_add_epi8(v1, _mm512_test_epi8_mask(qh, bit_sel[2 * k + 1]), v1, sixteen);
      const __m512i p0 = _mm512_maddubs_epi16(v0, load64(y[b].qs + 128 * k));
      const __m512i p1 = _mm512_maddubs_epi16(v1, load64(y[b].qs + 128 * k + 64));
      isum = _mm512_dpwssd_epi32(isum, p0, _mm512_permutexvar_epi16(scale_idx[2 * k], sc16));
      isum = _mm512_dpwssd_epi32(isum, p1, _mm512_permutexvar_epi16(scale_idx[2 * k + 1], sc16));
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum512(acc) - hsum(acc_min);
}

// The 2-bit planes of 32 qs bytes as two zmm in element order: [q & 3 | q >> 2 & 3] (planes 0, 1)
// and [q >> 4 & 3 | q >> 6 & 3] (planes 2, 3); plane j of byte l is element 32j + l.
inline void planes_2bit(const uint8_t* qs, __m512i* p01, __m512i* p23) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 2), 1);
  *p01 = _mm512_and_si512(z, _mm512_set1_epi8(3));
  *p23 = _mm512_and_si512(_mm512_srli_epi16(z, 4), _mm512_set1_epi8(3));
}

// Q3_K: 16 groups of 16, value = (2 low bits + 4·hmask bit) - 4, signed 6-bit scales (bias 32).
// Per 128 elements (half h) the 32 qs bytes hold 4 planes; hmask bit 4h + j of byte l marks element
// 128h + 32j + l. The unsigned 0..7 go into maddubs; the -4 becomes -4 Σ_g sc_g bsums_g.
float vec_dot_q3_k_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ3_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m512i four = _mm512_set1_epi8(4);
  const __m512i scale_idx[4] = {lane_words(0, 1, 2, 3), lane_words(4, 5, 6, 7), lane_words(8, 9, 10, 11),
                                lane_words(12, 13, 14, 15)};
  __m512i bit_sel[4];  // zmm i of a super-block holds planes 2i, 2i+1 (mod 4) of half i / 2
  for (int i = 0; i < 4; ++i) {
    bit_sel[i] = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * i))),
                                    _mm256_set1_epi8(static_cast<char>(1 << (2 * i + 1))), 1);
  }
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m256i sc16 = _mm256_cvtepi8_epi16(unpack_q3_k_scales(x[b].scales));
    const __m256i offset = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].bsums)), sc16);
    __m512i isum = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 2)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].hmask)));
    for (int h = 0; h < 2; ++h) {
      __m512i v[2];
      planes_2bit(x[b].qs + 32 * h, &v[0], &v[1]);
      for (int k = 0; k < 2; ++k) {
        const int i = 2 * h + k;
        const __m512i q = _mm512_mask_add_epi8(v[k], _mm512_test_epi8_mask(hm, bit_sel[i]), v[k], four);
        const __m512i p = _mm512_maddubs_epi16(q, load64(y[b].qs + 64 * i));
        isum = _mm512_dpwssd_epi32(isum, p, _mm512_permutexvar_epi16(scale_idx[i], sc));
      }
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum512(acc);
}

// Q2_K: 16 groups of 16 with a 4-bit scale (low nibble) and 4-bit min (high nibble) each; value =
// d·sc·q - dmin·min with q the 2-bit planes (same plane layout as Q3_K).
float vec_dot_q2_k_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ2_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m512i scale_idx[4] = {lane_words(0, 1, 2, 3), lane_words(4, 5, 6, 7), lane_words(8, 9, 10, 11),
                                lane_words(12, 13, 14, 15)};
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales));
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0x0F)));
    const __m256i min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
    const __m256i mins = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].bsums)), min16);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(_cvtsh_ss(x[b].dmin) * y[b].d), acc_min);
    const __m512i sc = _mm512_castsi256_si512(sc16);
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      __m512i v[2];
      planes_2bit(x[b].qs + 32 * h, &v[0], &v[1]);
      for (int k = 0; k < 2; ++k) {
        const int i = 2 * h + k;
        const __m512i p = _mm512_maddubs_epi16(v[k], load64(y[b].qs + 64 * i));
        isum = _mm512_dpwssd_epi32(isum, p, _mm512_permutexvar_epi16(scale_idx[i], sc));
      }
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum512(acc) - hsum(acc_min);
}

// IQ4_XS: 8 sub-blocks of 32 (Q4_0 nibble order within each) with 6-bit scales (bias 32); the
// nibbles index the levels + 128 (unsigned, one vpshufb) for vpdpbusd, and the +128 comes back
// out through the bsums. Levels reach 241·127 per product, too much for 16-bit pair sums, so the
// sub-block sums stay int32 and take their scales in float.
float vec_dot_iq4_xs_q8_k_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockIQ4_XS*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m512i levels = _mm512_broadcast_i32x4(_mm_add_epi8(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4Values)), _mm_set1_epi8(static_cast<char>(0x80))));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Low / high nibble lanes of 4 sub-blocks to [sb lo, sb hi, sb+1 lo, sb+1 hi] (qword indices).
  const __m512i pair_lo = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i pair_hi = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  __m512i scale_idx[4];
  for (int i = 0; i < 4; ++i)
    scale_idx[i] = _mm512_inserti64x4(_mm512_set1_epi32(2 * i), _mm256_set1_epi32(2 * i + 1), 1);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_off = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const float d = _cvtsh_ss(x[b].d) * y[b].d;
    const __m128i ls = unpack_iq4_xs_scales(x[b].scales_h, x[b].scales_l);  // 8 int8
    // 128 Σ_sb ls_sb (bsums[2 sb] + bsums[2 sb + 1])
    const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].bsums)),
                                          _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(ls, ls)));
    acc_off = _mm256_fmadd_ps(_mm256_cvtepi32_ps(off), _mm256_set1_ps(128.0f * d), acc_off);
    const __m512 s =
        _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(ls)), _mm256_set1_ps(d)));
    for (int k = 0; k < 2; ++k) {
      const __m512i q = load64(x[b].qs + 64 * k);  // sub-blocks 4k..4k+3, 16 bytes each
      const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      for (int j = 0; j < 2; ++j) {
        const __m512i nib = _mm512_permutex2var_epi64(lo, j == 0 ? pair_lo : pair_hi, hi);
        const __m512i u = _mm512_shuffle_epi8(levels, nib);
        const __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, load64(y[b].qs + 128 * k + 64 * j));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_permutexvar_ps(scale_idx[2 * k + j], s), acc);
      }
    }
  }
  return hsum512(acc) - hsum(acc_off);
}

}  // namespace

const IsaKernel* avx512_k_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {12 /* q4_K */, nullptr, vec_dot_q4_k_q8_k_avx512, vec_dot_2_q4_k_q8_k_avx512},
      {14 /* q6_K */, nullptr, vec_dot_q6_k_q8_k_avx512, vec_dot_2_q6_k_q8_k_avx512},
      {13 /* q5_K */, nullptr, vec_dot_q5_k_q8_k_avx512},
      {11 /* q3_K */, nullptr, vec_dot_q3_k_q8_k_avx512},
      {10 /* q2_K */, nullptr, vec_dot_q2_k_q8_k_avx512},
      {23 /* iq4_xs */, nullptr, vec_dot_iq4_xs_q8_k_avx512},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
