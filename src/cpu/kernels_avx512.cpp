// The avx512 kernel table (AVX-512 F/BW/VL/DQ + VNNI + BF16; this file is compiled with those
// flags only): VNNI dot products of the 32-element block formats. Entries it lacks keep the avx2
// kernels (every AVX-512 CPU of this tier has AVX2).
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

// F16C conversions: exact, like the reference fp16_to_fp32 (which this file may not include).
inline float block_scale(uint16_t dx, uint16_t dy) { return _cvtsh_ss(dx) * _cvtsh_ss(dy); }

// 32 products of signed bytes x·y accumulated into 8 int32 lanes with one VNNI instruction:
// vpdpbusd multiplies unsigned by signed bytes, so x's sign moves onto y (|x|, |y| <= 127).
inline __m256i dot_i8(__m256i x, __m256i y) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
}

inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float vec_dot_q8_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(qx, qy)), _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
  }
  return hsum(acc);
}

float vec_dot_q4_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ4_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(unpack_q4_0(x[b].qs), qy)),
                          _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
  }
  return hsum(acc);
}

}  // namespace

const IsaKernel* avx512_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {8 /* q8_0 */, nullptr, vec_dot_q8_0_q8_0_avx512},
      {2 /* q4_0 */, nullptr, vec_dot_q4_0_q8_0_avx512},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
