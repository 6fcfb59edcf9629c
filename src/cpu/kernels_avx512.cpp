// The avx512 kernel table (AVX-512 F/BW/VL/DQ + VNNI + BF16; this file is compiled with those
// flags only): VNNI dot products of the 32-element block formats. Entries it lacks keep the avx2
// kernels (every AVX-512 CPU of this tier has AVX2).
#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

// 32 products of signed bytes x·y accumulated into 8 int32 lanes with one VNNI instruction:
// vpdpbusd multiplies unsigned by signed bytes, so x's sign moves onto y (|x|, |y| <= 127).
inline __m256i dot_i8(__m256i x, __m256i y) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
}

// How far ahead of the weight stream to prefetch, in blocks: the hardware prefetcher alone left
// the GEMV at half the measured read bandwidth; ~120 blocks (2-4 KiB) ahead measured best for both
// 18- and 34-byte blocks (gemv_bench, one thread).
constexpr int kPrefetchBlocks = 120;

// Prefetches the cache lines of `bytes` bytes starting `kPrefetchBlocks` blocks after `block`.
template <typename Block>
inline void prefetch_ahead(const Block* block, int bytes) {
  const char* p = reinterpret_cast<const char*>(block + kPrefetchBlocks);
  for (int offset = 0; offset < bytes; offset += 64) _mm_prefetch(p + offset, _MM_HINT_T0);
}

// Two 32-byte block payloads (at a and b) in one zmm: a in the low half.
inline __m512i load_2x32(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}

// Lanes 0..7 = s0, lanes 8..15 = s1.
inline __m512 scales_2(float s0, float s1) { return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1); }

// Σ x·y per 4-byte group for signed x and y: x+128 is unsigned (xor of the sign bit), and
// Σ (x+128)·y = Σ x·y + 128 Σ y, so one more vpdpbusd with 128s removes the offset.
inline __m512i dot_i8_512(__m512i x, __m512i y) {
  const __m512i xu = _mm512_xor_si512(x, _mm512_set1_epi8(static_cast<char>(0x80)));
  const __m512i biased = _mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, y);
  return _mm512_sub_epi32(biased,
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), y));
}

// Σ (q-8)·y per 4-byte group for unsigned nibbles q (0..15): Σ q·y - 8 Σ y.
inline __m512i dot_q4_512(__m512i q, __m512i y) {
  const __m512i qy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y);
  return _mm512_sub_epi32(qy, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), y));
}

// acc += the int32 sums of two blocks (lanes 0..7: block x[0]·y[0], 8..15: x[1]·y[1]) times
// their scales.
template <typename BlockX, typename BlockY>
inline void scale_and_add(__m512i sums, const BlockX* x, const BlockY* y, __m512& acc) {
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scales_2(block_scale(x[0].d, y[0].d), block_scale(x[1].d, y[1].d)),
                        acc);
}

// The two 256-bit halves of v added.
inline __m256 halves_sum(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

// Four blocks per iteration (two zmm of two blocks each, two accumulators to hide the FMA
// latency); the 0..3 remaining blocks on ymm.
float vec_dot_q8_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  const int64_t nb = n / kQK8_0;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    prefetch_ahead(x + b, 4 * sizeof(BlockQ8_0));
    const __m512i d0 = dot_i8_512(load_2x32(x[b].qs, x[b + 1].qs), load_2x32(y[b].qs, y[b + 1].qs));
    const __m512i d1 = dot_i8_512(load_2x32(x[b + 2].qs, x[b + 3].qs), load_2x32(y[b + 2].qs, y[b + 3].qs));
    scale_and_add(d0, x + b, y + b, acc0);
    scale_and_add(d1, x + b + 2, y + b + 2, acc1);
  }
  __m256 tail = halves_sum(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    tail = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(qx, qy)), _mm256_set1_ps(block_scale(x[b].d, y[b].d)), tail);
  }
  return hsum(tail);
}

float vec_dot_q4_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ4_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  const int64_t nb = n / kQK4_0;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    prefetch_ahead(x + b, 4 * sizeof(BlockQ4_0));
    const __m512i q0 = _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(x[b].qs)), nibbles_q4_0(x[b + 1].qs), 1);
    const __m512i q1 =
        _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(x[b + 2].qs)), nibbles_q4_0(x[b + 3].qs), 1);
    const __m512i d0 = dot_q4_512(q0, load_2x32(y[b].qs, y[b + 1].qs));
    const __m512i d1 = dot_q4_512(q1, load_2x32(y[b + 2].qs, y[b + 3].qs));
    scale_and_add(d0, x + b, y + b, acc0);
    scale_and_add(d1, x + b + 2, y + b + 2, acc1);
  }
  __m256 tail = halves_sum(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) {
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    const __m256i q = _mm256_sub_epi8(nibbles_q4_0(x[b].qs), _mm256_set1_epi8(8));
    tail = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q, qy)), _mm256_set1_ps(block_scale(x[b].d, y[b].d)), tail);
  }
  return hsum(tail);
}

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

}  // namespace

const IsaKernel* avx512_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {8 /* q8_0 */, nullptr, vec_dot_q8_0_q8_0_avx512},
      {2 /* q4_0 */, nullptr, vec_dot_q4_0_q8_0_avx512},
      {1 /* f16 */, quantize_row_f16_avx512, vec_dot_f16_avx512},
      {30 /* bf16 */, nullptr, vec_dot_bf16_avx512},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
