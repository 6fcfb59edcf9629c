// The avx2 ops table (AVX2 + FMA + F16C; this file is compiled with those flags only): the bodies of
// ops_simd.h over 8-float vectors, and bit-identical row converters for get_rows (F16, BF16, Q8_0,
// Q4_0).
#include <immintrin.h>

#include <cstdint>

#include "cpu/ops_isa.h"
#include "cpu/ops_simd.h"
#include "cpu/simd_avx2.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

// The vector traits ops_simd.h is written against (see its header comment).
struct VecAvx2 {
  using F = __m256;
  using M = __m256;  // all-ones / all-zeros lanes
  static constexpr int64_t kLanes = 8;

  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static M tail_mask(int64_t count) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane));
  }
  // Masked-off lanes are neither read nor written (no fault past the end of an array).
  static F load_partial(const float* p, int64_t count) {
    return _mm256_maskload_ps(p, _mm256_castps_si256(tail_mask(count)));
  }
  static void store_partial(float* p, F v, int64_t count) {
    _mm256_maskstore_ps(p, _mm256_castps_si256(tail_mask(count)), v);
  }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F fmaddsub(F a, F b, F c) { return _mm256_fmaddsub_ps(a, b, c); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F abs(F v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
  static F neg(F v) { return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); }
  static F sign(F v) { return _mm256_and_ps(v, _mm256_set1_ps(-0.0f)); }
  static F or_(F a, F b) { return _mm256_or_ps(a, b); }
  static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ge(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static F select(M m, F t, F f) { return _mm256_blendv_ps(f, t, m); }
  static unsigned bits(M m) { return static_cast<unsigned>(_mm256_movemask_ps(m)); }
  static float reduce_add(F v) { return hsum(v); }
  static float reduce_max(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static F round(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F trunc(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  // p·2^n as p·2^a·2^b with a = n>>1, b = n - a: each factor is a normal float for n in [-150, 129],
  // p·2^a is exact, and the last product rounds once (denormals and overflow to inf come out right).
  static F scale_pow2(F p, F n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
    const __m256i bias = _mm256_set1_epi32(127);
    const F sa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
    const F sb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, sa), sb);
  }
  static F dup_even(F v) { return _mm256_moveldup_ps(v); }
  static F dup_odd(F v) { return _mm256_movehdup_ps(v); }
  static F swap_pairs(F v) { return _mm256_permute_ps(v, 0xB1); }
  static void store_i8(int8_t* dst, F v) {
    const __m256i i32 = _mm256_cvtps_epi32(v);
    const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packs_epi16(i16, i16));
  }
};

// ---- get_rows converters, bit-identical to the reference dequantizers (exact widenings, and the
// same single product q·d per element).

void to_float_f16(const void* src, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  }
  for (; i < n; ++i) y[i] = _cvtsh_ss(h[i]);
}

// bf16 is the high half of an f32.
void to_float_bf16(const void* src, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i)
    y[i] = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(static_cast<uint32_t>(h[i]) << 16))));
}

// 32 signed bytes times d, in element order.
inline void store_scaled_i8(const __m256i q, float d, float* y) {
  const __m256 vd = _mm256_set1_ps(d);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), vd));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), vd));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), vd));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), vd));
}

void to_float_q8_0(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQK8_0; ++b, y += kQK8_0) {
    store_scaled_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)), _cvtsh_ss(x[b].d), y);
  }
}

void to_float_q4_0(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQK4_0; ++b, y += kQK4_0) {
    store_scaled_i8(_mm256_sub_epi8(nibbles_q4_0(x[b].qs), _mm256_set1_epi8(8)), _cvtsh_ss(x[b].d), y);
  }
}

constexpr IsaToFloat kToFloat[] = {
    {1 /* f16 */, to_float_f16},
    {30 /* bf16 */, to_float_bf16},
    {8 /* q8_0 */, to_float_q8_0},
    {2 /* q4_0 */, to_float_q4_0},
};

}  // namespace

const OpsTable& avx2_ops() {
  static constexpr OpsTable kTable = {
      .fns = ops_simd::simd_ops<VecAvx2>(),
      .to_float = kToFloat,
      .n_to_float = sizeof kToFloat / sizeof kToFloat[0],
  };
  return kTable;
}

}  // namespace ember
