// The avx2 kernels of the 256-element super-block formats: activation quantization to Q8_K
// (bit-identical to the reference) and the K-quant / IQ4_XS dot products (maddubs + madd).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"

namespace ember {
namespace {

constexpr int kPrefetchBytes = 4096;  // ~4 KiB ahead in the weight stream

template <typename Block>
inline void prefetch_block(const Block* x) {
  prefetch_lines(reinterpret_cast<const char*>(x) + kPrefetchBytes, sizeof(Block));
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// pshufb control that broadcasts 16-bit entry w0 over the low 128-bit lane and w1 over the high.
inline __m256i lane_word_ctrl(int w0, int w1) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>((2 * w1) | ((2 * w1 + 1) << 8))),
                          _mm_set1_epi16(static_cast<int16_t>((2 * w0) | ((2 * w0 + 1) << 8))));
}

// ---- Q8_K activations ----

// ggml's nearest_int (add 1.5·2^23, read the mantissa) on 8 lanes: the same float add and integer
// steps as the reference, so the result agrees for every input, NaN and infinities included.
inline __m256i nearest_int(__m256 v) {
  const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.0f)));
  return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x00400000));
}

// The low bytes of 32 int32 (four vectors of 8, in order) as 32 bytes in order: the reference's
// int8_t cast truncates, so mask before the (then non-saturating) unsigned packs.
inline __m256i low_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i m = _mm256_set1_epi32(0xFF);
  const __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m));
  const __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, m), _mm256_and_si256(d, m));
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The reference: the first element of largest |x| (NaN never wins) sets d = max / -127; quants are
// nearest_int(x · (-127 / max)) capped at 127; bsums are sums of 16 quants.
void quantize_row_q8_k_avx2(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    __m256 vmax = _mm256_setzero_ps();
    // max_ps returns its second operand when either is NaN, so NaN inputs are skipped as in `>`.
    for (int i = 0; i < kQK_K; i += 8) vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    float max = 0.0f;
    for (int i = 0; i < kQK_K; i += 8) {
      const __m256 eq = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
      const int mask = _mm256_movemask_ps(eq);
      if (mask != 0) {
        max = x[i + __builtin_ctz(static_cast<unsigned>(mask))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 mul = _mm256_set1_ps(iscale);
    __m256i group_sums[2];  // groups 0,2,4,6 | 1,3,5,7 and 8,10,12,14 | 9,11,13,15 (int32)
    for (int half = 0; half < 2; ++half) {
      __m256i quads[4];  // per 32 quants: 4-element sums of group 2k (low lane) and 2k+1 (high)
      for (int k = 0; k < 4; ++k) {
        const float* xs = x + 128 * half + 32 * k;
        __m256i q[4];
        for (int j = 0; j < 4; ++j) {
          q[j] = _mm256_min_epi32(nearest_int(_mm256_mul_ps(mul, _mm256_loadu_ps(xs + 8 * j))), _mm256_set1_epi32(127));
        }
        const __m256i bytes = low_bytes(q[0], q[1], q[2], q[3]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 128 * half + 32 * k), bytes);
        quads[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes), _mm256_set1_epi16(1));
      }
      group_sums[half] =
          _mm256_hadd_epi32(_mm256_hadd_epi32(quads[0], quads[1]), _mm256_hadd_epi32(quads[2], quads[3]));
    }
    const __m256i packed = _mm256_packs_epi32(group_sums[0], group_sums[1]);  // even groups | odd groups
    const __m128i even = _mm256_castsi256_si128(packed), odd = _mm256_extracti128_si256(packed, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].bsums), _mm_unpacklo_epi16(even, odd));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].bsums + 8), _mm_unpackhi_epi16(even, odd));
    y[b].d = 1 / iscale;
  }
}

// ---- dot products ----

// Σ_j min_j (bsums[2j] + bsums[2j+1]) as 8 int32 lanes: the mins' term of Q4_K/Q5_K.
inline __m256i mins_dot_bsums(uint64_t mins, const int16_t* bsums) {
  const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mins));
  return _mm256_madd_epi16(load32(bsums), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)));
}

// Q4_K: chunk c (32 bytes of qs) holds sub-block 2c in its low nibbles and 2c+1 in its high ones.
// R activation rows share each block's unpacking (scales, nibbles, scale words); every row gets
// exactly the operations of R = 1, so the rows' results are the one-row kernel's bit for bit.
template <int R>
void dot_q4_k_q8_k_rows(int64_t n, const void* vx, const void* const (&vy)[R], float* out) {
  const auto* x = static_cast<const BlockQ4_K*>(vx);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(vy[r]);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[R], acc_min[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps(), acc_min[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    uint64_t scales, mins;
    unpack_k4_scales(x[b].scales, &scales, &mins);
    const float dmin = _cvtsh_ss(x[b].dmin), d = _cvtsh_ss(x[b].d);
    for (int r = 0; r < R; ++r) {
      acc_min[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins_dot_bsums(mins, y[r][b].bsums)),
                                   _mm256_set1_ps(dmin * y[r][b].d), acc_min[r]);
    }
    const __m256i sc16 =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    __m256i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load32(x[b].qs + 32 * c);
      const __m256i q_lo = _mm256_and_si256(q, low4), q_hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      const __m256i s_lo = _mm256_shuffle_epi8(sc16, lane_word_ctrl(2 * c, 2 * c));
      const __m256i s_hi = _mm256_shuffle_epi8(sc16, lane_word_ctrl(2 * c + 1, 2 * c + 1));
      for (int r = 0; r < R; ++r) {
        const __m256i p_lo = _mm256_maddubs_epi16(q_lo, load32(y[r][b].qs + 64 * c));
        const __m256i p_hi = _mm256_maddubs_epi16(q_hi, load32(y[r][b].qs + 64 * c + 32));
        isum[r] =
            _mm256_add_epi32(isum[r], _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi)));
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(d * y[r][b].d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]) - hsum(acc_min[r]);
}

float vec_dot_q4_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  float out;
  dot_q4_k_q8_k_rows<1>(n, vx, {vy}, &out);
  return out;
}

void vec_dot_2_q4_k_q8_k_avx2(int64_t n, const void* vx, const void* vy0, const void* vy1, float* out) {
  dot_q4_k_q8_k_rows<2>(n, vx, {vy0, vy1}, out);
}

// Q6_K (layout: kernels_avx512_k.cpp): unsigned 6-bit quants into maddubs, the -32 offset as
// -32 Σ_g sc_g bsums_g. R activation rows share the unpacking, as for Q4_K.
template <int R>
void dot_q6_k_q8_k_rows(int64_t n, const void* vx, const void* const (&vy)[R], float* out) {
  const auto* x = static_cast<const BlockQ6_K*>(vx);
  const BlockQ8_K* y[R];
  for (int r = 0; r < R; ++r) y[r] = static_cast<const BlockQ8_K*>(vy[r]);
  const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales)));
    __m256i isum[R];
    for (int r = 0; r < R; ++r) {
      isum[r] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_slli_epi32(_mm256_madd_epi16(load32(y[r][b].bsums), sc16), 5));
    }
    // Both lanes hold the 8 scales of one half (groups 8h..8h+7).
    const __m256i sc_half[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
    for (int h = 0; h < 2; ++h) {
      const __m256i sc = sc_half[h];
      const __m256i ql0 = load32(x[b].ql + 64 * h), ql1 = load32(x[b].ql + 64 * h + 32);
      const __m256i qh = load32(x[b].qh + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)),
      };
      for (int k = 0; k < 4; ++k) {  // elements 128h + 32k + 0..31: groups 8h + 2k, 2k+1
        const __m256i s = _mm256_shuffle_epi8(sc, lane_word_ctrl(2 * k, 2 * k + 1));
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_maddubs_epi16(q[k], load32(y[r][b].qs + 128 * h + 32 * k));
          isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(p, s));
        }
      }
    }
    const float d = _cvtsh_ss(x[b].d);
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(d * y[r][b].d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

float vec_dot_q6_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  float out;
  dot_q6_k_q8_k_rows<1>(n, vx, {vy}, &out);
  return out;
}

void vec_dot_2_q6_k_q8_k_avx2(int64_t n, const void* vx, const void* vy0, const void* vy1, float* out) {
  dot_q6_k_q8_k_rows<2>(n, vx, {vy0, vy1}, out);
}

// 0x10 in the bytes of qh whose bit `bit` is set (the Q5_K 5th bit of one sub-block).
inline __m256i fifth_bit(__m256i qh, int bit) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m), m), _mm256_set1_epi8(0x10));
}

// Q5_K: Q4_K plus bit j of qh[l] as the 5th bit of element 32j + l (sub-block j).
float vec_dot_q5_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ5_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    uint64_t scales, mins;
    unpack_k4_scales(x[b].scales, &scales, &mins);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins_dot_bsums(mins, y[b].bsums)),
                              _mm256_set1_ps(_cvtsh_ss(x[b].dmin) * y[b].d), acc_min);
    const __m256i sc16 =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    const __m256i qh = load32(x[b].qh);
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load32(x[b].qs + 32 * c);
      const __m256i q_lo = _mm256_or_si256(_mm256_and_si256(q, low4), fifth_bit(qh, 2 * c));
      const __m256i q_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), fifth_bit(qh, 2 * c + 1));
      const __m256i p_lo = _mm256_maddubs_epi16(q_lo, load32(y[b].qs + 64 * c));
      const __m256i p_hi = _mm256_maddubs_epi16(q_hi, load32(y[b].qs + 64 * c + 32));
      const __m256i s_lo = _mm256_shuffle_epi8(sc16, lane_word_ctrl(2 * c, 2 * c));
      const __m256i s_hi = _mm256_shuffle_epi8(sc16, lane_word_ctrl(2 * c + 1, 2 * c + 1));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

// Σ over 256 elements of sc_g · q·y with q the 2-bit planes of qs (+4 where `hmask` marks it, for
// Q3_K; hmask == nullptr for Q2_K) and sc16 the 16 group scales (int16): planes j of the 32 qs
// bytes of half h are elements 128h + 32j + l, groups 8h + 2j and 8h + 2j + 1.
inline __m256i planes_dot(const uint8_t* qs, const uint8_t* hmask, const int8_t* yq, __m256i sc16) {
  const __m256i three = _mm256_set1_epi8(3);
  const __m256i hm = hmask != nullptr ? load32(hmask) : _mm256_setzero_si256();
  __m256i isum = _mm256_setzero_si256();
  const __m256i sc_half[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
  for (int h = 0; h < 2; ++h) {
    const __m256i sc = sc_half[h];  // groups 8h..8h+7 in both lanes
    const __m256i q = load32(qs + 32 * h);
    for (int j = 0; j < 4; ++j) {
      __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), three);
      if (hmask != nullptr) {
        const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << (4 * h + j)));
        v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, m), m), _mm256_set1_epi8(4)));
      }
      const __m256i p = _mm256_maddubs_epi16(v, load32(yq + 128 * h + 32 * j));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, lane_word_ctrl(2 * j, 2 * j + 1))));
    }
  }
  return isum;
}

// Q3_K: value = (2 bits + 4·hmask bit) - 4 with signed 6-bit group scales; the -4 as -4 Σ sc·bsums.
float vec_dot_q3_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ3_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m256i sc16 = _mm256_cvtepi8_epi16(unpack_q3_k_scales(x[b].scales));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load32(y[b].bsums), sc16), 2);
    const __m256i isum = _mm256_sub_epi32(planes_dot(x[b].qs, x[b].hmask, y[b].qs, sc16), offset);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum(acc);
}

// Q2_K: 4-bit group scales (low nibbles) and mins (high nibbles): d Σ sc q·y - dmin Σ min·bsums.
float vec_dot_q2_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ2_K*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales));
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0x0F)));
    const __m256i min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(load32(y[b].bsums), min16)),
                              _mm256_set1_ps(_cvtsh_ss(x[b].dmin) * y[b].d), acc_min);
    const __m256i isum = planes_dot(x[b].qs, nullptr, y[b].qs, sc16);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

// IQ4_XS: per sub-block of 32, the nibbles (Q4_0 order) index the signed levels; x's sign moves
// onto y for maddubs (|level| <= 127 keeps the pair sums in 16 bits); the 6-bit scale (bias 32)
// multiplies in madd.
float vec_dot_iq4_xs_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockIQ4_XS*>(vx);
  const auto* y = static_cast<const BlockQ8_K*>(vy);
  const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4Values)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    prefetch_block(x + b);
    const __m256i ls16 =
        _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(unpack_iq4_xs_scales(x[b].scales_h, x[b].scales_l)));
    __m256i isum = _mm256_setzero_si256();
    for (int sb = 0; sb < kQK_K / 32; ++sb) {
      const __m256i v = _mm256_shuffle_epi8(levels, nibbles_q4_0(x[b].qs + 16 * sb));
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(load32(y[b].qs + 32 * sb), v));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(ls16, lane_word_ctrl(sb, sb))));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(x[b].d) * y[b].d), acc);
  }
  return hsum(acc);
}

}  // namespace

const IsaKernel* avx2_k_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {15 /* q8_K */, quantize_row_q8_k_avx2, nullptr},
      {12 /* q4_K */, nullptr, vec_dot_q4_k_q8_k_avx2, vec_dot_2_q4_k_q8_k_avx2},
      {14 /* q6_K */, nullptr, vec_dot_q6_k_q8_k_avx2, vec_dot_2_q6_k_q8_k_avx2},
      {13 /* q5_K */, nullptr, vec_dot_q5_k_q8_k_avx2},
      {11 /* q3_K */, nullptr, vec_dot_q3_k_q8_k_avx2},
      {10 /* q2_K */, nullptr, vec_dot_q2_k_q8_k_avx2},
      {23 /* iq4_xs */, nullptr, vec_dot_iq4_xs_q8_k_avx2},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
