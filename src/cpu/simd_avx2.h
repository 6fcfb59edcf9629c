// AVX2 helpers shared by the ISA translation units (kernels_avx2*.cpp, kernels_avx512*.cpp) and
// included by nothing else: everything is in an anonymous namespace, so each unit gets its own
// internal copy and no AVX code is ever emitted as a symbol another unit could link to.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ember {
namespace {

// Sum of the 8 floats of v.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// |v| with NaN lanes set to 0 (so a max over them skips NaNs, as std::max(amax, |x|) does).
inline __m256 abs_or_zero(__m256 v) {
  return _mm256_and_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_cmp_ps(v, v, _CMP_ORD_Q));
}

// Largest |x| of the 8 floats of v.
inline float hmax_abs(__m256 v) {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// roundf (halves away from zero), as the reference quantizer rounds: truncate, then step one away
// from zero where the dropped fraction is at least one half. Exact for |v| < 2^23.
inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
  return _mm256_add_ps(t, _mm256_or_ps(step, sign));
}

// The reference's round_or_zero (rounding.h): roundf, then 0 where the result is outside
// [-128, 127] or NaN (a subnormal block's 1/d overflows to inf), as int32.
inline __m256i round_or_zero(__m256 v) {
  const __m256 r = round_half_away(v);
  const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(r, _mm256_set1_ps(-128.0f), _CMP_GE_OQ),
                                        _mm256_cmp_ps(r, _mm256_set1_ps(127.0f), _CMP_LE_OQ));
  return _mm256_cvtps_epi32(_mm256_and_ps(r, in_range));
}

// The product of two f16 block scales. F16C conversions are exact, like the reference
// fp16_to_fp32 (which ISA units may not include).
inline float block_scale(uint16_t dx, uint16_t dy) { return _cvtsh_ss(dx) * _cvtsh_ss(dy); }

// The 32 nibbles of a Q4_0 block in element order (low nibbles are elements 0..15, high nibbles
// 16..31), unsigned 0..15.
inline __m256i nibbles_q4_0(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

// Q4_K/Q5_K: the 8 six-bit sub-block scales and the 8 six-bit mins of a super-block, one byte each
// (byte j of *scales is sub-block j's), from the 12 packed bytes (layout: block_k.h scale_min_k4;
// the same bit moves done on three 32-bit words at once).
inline void unpack_k4_scales(const uint8_t* packed, uint64_t* scales, uint64_t* mins) {
  uint32_t w[3];
  std::memcpy(w, packed, sizeof w);
  const uint32_t sc_lo = w[0] & 0x3F3F3F3Fu;                                         // sub-blocks 0..3
  const uint32_t sc_hi = (w[2] & 0x0F0F0F0Fu) | (((w[0] >> 6) & 0x03030303u) << 4);  // 4..7
  const uint32_t mn_lo = w[1] & 0x3F3F3F3Fu;
  const uint32_t mn_hi = ((w[2] >> 4) & 0x0F0F0F0Fu) | (((w[1] >> 6) & 0x03030303u) << 4);
  *scales = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  *mins = mn_lo | (static_cast<uint64_t>(mn_hi) << 32);
}

// Q3_K: the 16 six-bit scales minus their bias 32 (int8, byte i = group i of 16). Bytes 0-7 of
// `packed` hold the low nibbles (scales 0-7 low, 8-15 high nibble), bytes 8-11 the top 2 bits
// (scale i in bits 2·(i/4) of byte 8 + i%4).
inline __m128i unpack_q3_k_scales(const uint8_t* packed) {
  uint64_t low;
  uint32_t high;
  std::memcpy(&low, packed, sizeof low);
  std::memcpy(&high, packed + 8, sizeof high);
  const uint64_t h0 = (high & 0x03030303u) | (static_cast<uint64_t>((high >> 2) & 0x03030303u) << 32);
  const uint64_t h1 = ((high >> 4) & 0x03030303u) | (static_cast<uint64_t>((high >> 6) & 0x03030303u) << 32);
  const uint64_t s0 = (low & 0x0F0F0F0F0F0F0F0Full) | (h0 << 4), s1 = ((low >> 4) & 0x0F0F0F0F0F0F0F0Full) | (h1 << 4);
  return _mm_sub_epi8(_mm_set_epi64x(static_cast<long long>(s1), static_cast<long long>(s0)), _mm_set1_epi8(32));
}

// IQ4_XS: the 8 six-bit sub-block scales minus 32 (int8 in bytes 0-7): low nibbles two per byte of
// scales_l (even sub-blocks in the low nibble), top 2 bits in bit pairs of scales_h.
inline __m128i unpack_iq4_xs_scales(uint16_t scales_h, const uint8_t* scales_l) {
  uint32_t l;
  std::memcpy(&l, scales_l, sizeof l);
  uint64_t h = scales_h;  // spread the 8 bit pairs to one per byte
  h = (h | (h << 24)) & 0x000000FF000000FFull;
  h = (h | (h << 12)) & 0x000F000F000F000Full;
  h = (h | (h << 6)) & 0x0303030303030303ull;
  const __m128i b = _mm_cvtsi32_si128(static_cast<int>(l));
  const __m128i nibbles = _mm_unpacklo_epi8(_mm_and_si128(b, _mm_set1_epi8(0x0F)),
                                            _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F)));
  return _mm_sub_epi8(_mm_or_si128(nibbles, _mm_cvtsi64_si128(static_cast<long long>(h << 4))), _mm_set1_epi8(32));
}

// Prefetches the cache lines of [p, p + bytes) into L1.
inline void prefetch_lines(const void* p, int bytes) {
  for (int offset = 0; offset < bytes; offset += 64) _mm_prefetch(static_cast<const char*>(p) + offset, _MM_HINT_T0);
}

}  // namespace
}  // namespace ember
