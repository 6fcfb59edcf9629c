// The avx512 kernel table (AVX-512 F/BW/VL/DQ + VNNI + BF16; this file is compiled with those
// flags only): F32 / F16 / BF16 dot products and F16 activation conversion (the block formats are in
// kernels_avx512_legacy2.cpp and kernels_avx512_k.cpp). Entries it lacks keep the avx2 kernels
// (every AVX-512 CPU of this tier has AVX2).
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"

namespace ember {
namespace {

// The two 256-bit halves of v added.
inline __m256 halves_sum(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

// F16 activations: F16C conversion rounds to nearest even, as the reference does, so the result
// is bit-identical.
void quantize_row_f16_avx512(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// Plain 16-bit types: widen to f32 (exact), multiply-add into four accumulators (products of two
// 11- or 8-bit mantissas are exact in f32; only the accumulation rounds, in float rather than the
// reference's double).
template <typename Widen16>
inline float dot_16bit(int64_t n, const uint16_t* a, const uint16_t* b, Widen16 widen) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048 + 64, _MM_HINT_T0);
    for (int k = 0; k < 4; ++k) {
      const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16 * k));
      const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 16 * k));
      acc[k] = _mm512_fmadd_ps(widen(va), widen(vb), acc[k]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    acc[0] = _mm512_fmadd_ps(widen(va), widen(vb), acc[0]);
  }
  const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
  float total = hsum(halves_sum(sum));
  if (i < n) {  // the last 1..15 elements: a masked load of zeros beyond n
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i va = _mm256_maskz_loadu_epi16(m, a + i), vb = _mm256_maskz_loadu_epi16(m, b + i);
    total += hsum(halves_sum(_mm512_mul_ps(widen(va), widen(vb))));
  }
  return total;
}

inline __m512 widen_f16(__m256i h) { return _mm512_cvtph_ps(h); }
// bf16 is the high half of an f32.
inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

float vec_dot_f16_avx512(int64_t n, const void* x, const void* y) {
  return dot_16bit(n, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), widen_f16);
}

float vec_dot_bf16_avx512(int64_t n, const void* x, const void* y) {
  return dot_16bit(n, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), widen_bf16);
}

// F32 weights (MoE routers, F32 models), summed in double lanes: each product of two floats is
// exact in double (the scalar reference rounds each product to float first, then sums in double),
// so the result is usually closer to the exact dot product than the reference's, and the weight
// row streams at the memory's pace (double FMAs are not the limit).
float vec_dot_f32_avx512(int64_t n, const void* x, const void* y) {
  const auto* a = static_cast<const float*>(x);
  const auto* b = static_cast<const float*>(y);
  __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m512d va = _mm512_cvtps_pd(_mm256_loadu_ps(a + i + 8 * k));
      acc[k] = _mm512_fmadd_pd(va, _mm512_cvtps_pd(_mm256_loadu_ps(b + i + 8 * k)), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    acc[0] = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + i)), _mm512_cvtps_pd(_mm256_loadu_ps(b + i)), acc[0]);
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

}  // namespace

const IsaKernel* avx512_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {0 /* f32 */, nullptr, vec_dot_f32_avx512},
      {1 /* f16 */, quantize_row_f16_avx512, vec_dot_f16_avx512},
      {30 /* bf16 */, nullptr, vec_dot_bf16_avx512},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
