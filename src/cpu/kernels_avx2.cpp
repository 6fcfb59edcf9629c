// The avx2 kernel table (AVX2 + FMA + F16C; this file is compiled with those flags only):
// activation quantization to Q8_0 and the dot products of the 32-element block formats.
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

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

// Q8_0 activations, bit-identical to the reference (same amax, same d = amax/127, same products,
// same rounding).
void quantize_row_q8_0_avx2(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
                 v3 = _mm256_loadu_ps(x + 24);
    const float amax = hmax_abs(_mm256_max_ps(
        _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v0), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v1)),
        _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v2), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v3))));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // round to nearest even
    const __m256 mul = _mm256_set1_ps(id);
    const __m256i i0 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v0, mul)));
    const __m256i i1 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v1, mul)));
    const __m256i i2 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v2, mul)));
    const __m256i i3 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v3, mul)));
    // Pack 32 int32 to 32 int8; the packs interleave 128-bit lanes, the permute restores order.
    const __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
    const __m256i p =
        _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), p);
  }
}

// Sum of the 32 products of signed bytes x·y as 8 int32 lanes (|x|, |y| <= 127: no saturation).
inline __m256i dot_i8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

float vec_dot_q8_0_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
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

float vec_dot_q4_0_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ4_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(_mm256_sub_epi8(nibbles_q4_0(x[b].qs), _mm256_set1_epi8(8)), qy)),
                          _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
  }
  return hsum(acc);
}

}  // namespace

const IsaKernel* avx2_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {8 /* q8_0 */, quantize_row_q8_0_avx2, vec_dot_q8_0_q8_0_avx2},
      {2 /* q4_0 */, nullptr, vec_dot_q4_0_q8_0_avx2},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
