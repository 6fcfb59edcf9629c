// AVX2 helpers shared by the ISA translation units (kernels_avx2.cpp, kernels_avx512.cpp) and
// included by nothing else: everything is in an anonymous namespace, so each unit gets its own
// internal copy and no AVX code is ever emitted as a symbol another unit could link to.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace ember {
namespace {

// Sum of the 8 floats of v.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
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

}  // namespace
}  // namespace ember
