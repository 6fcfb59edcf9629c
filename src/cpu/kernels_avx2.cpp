// The avx2 kernel table (AVX2 + FMA + F16C; this file is compiled with those flags only):
// activation quantization to Q8_0 / Q8_1 and the dot products of the 32-element block formats.
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

// One block of 32 activations as Q8_0/Q8_1 quantize it, bit-identical to the reference (same
// amax, same d = amax/127, same products, same rounding, 0 where that overflows): stores the 32
// int8 and returns d and (through *q) the quants.
inline float quantize_q8_block(const float* x, int8_t* qs, __m256i* q) {
  const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
               v3 = _mm256_loadu_ps(x + 24);
  // |x| with NaN lanes as 0: the reference's std::max(amax, |x|) skips NaNs wherever they are.
  const float amax = hmax_abs(
      _mm256_max_ps(_mm256_max_ps(abs_or_zero(v0), abs_or_zero(v1)), _mm256_max_ps(abs_or_zero(v2), abs_or_zero(v3))));
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 mul = _mm256_set1_ps(id);
  const __m256i i0 = round_or_zero(_mm256_mul_ps(v0, mul));
  const __m256i i1 = round_or_zero(_mm256_mul_ps(v1, mul));
  const __m256i i2 = round_or_zero(_mm256_mul_ps(v2, mul));
  const __m256i i3 = round_or_zero(_mm256_mul_ps(v3, mul));
  // Pack 32 int32 to 32 int8; the packs interleave 128-bit lanes, the permute restores order.
  const __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
  *q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), *q);
  return d;
}

void quantize_row_q8_0_avx2(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    __m256i q;
    y[b].d = _cvtss_sh(quantize_q8_block(x, y[b].qs, &q), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
}

// Q8_1 also stores s = d · Σ q (f16, rounded to nearest even like the reference).
void quantize_row_q8_1_avx2(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b, x += kQK8_1) {
    __m256i q;
    const float d = quantize_q8_block(x, y[b].qs, &q);
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    const int sum = static_cast<int>(hsum(_mm256_cvtepi32_ps(sums)));  // |Σ| <= 4064: exact in float
    y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    y[b].s = _cvtss_sh(static_cast<float>(sum) * d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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
      {9 /* q8_1 */, quantize_row_q8_1_avx2, nullptr},
      {2 /* q4_0 */, nullptr, vec_dot_q4_0_q8_0_avx2},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
