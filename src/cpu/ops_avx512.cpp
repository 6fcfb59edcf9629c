// The avx512 ops table (AVX-512 F/BW/VL/DQ + VNNI + BF16; this file is compiled with those flags
// only): the bodies of ops_simd.h over 16-float vectors with mask-register tails. The get_rows
// converters stay avx2's (a few rows per step; they are not worth a second copy).
#include <immintrin.h>

#include <cstdint>

#include "cpu/ops_isa.h"
#include "cpu/ops_simd.h"

namespace ember {
namespace {

// The vector traits ops_simd.h is written against (see its header comment).
struct VecAvx512 {
  using F = __m512;
  using M = __mmask16;
  static constexpr int64_t kLanes = 16;

  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static M tail_mask(int64_t count) { return static_cast<M>((1u << count) - 1u); }  // count <= 16
  // Masked-off lanes are neither read nor written (no fault past the end of an array).
  static F load_partial(const float* p, int64_t count) { return _mm512_maskz_loadu_ps(tail_mask(count), p); }
  static void store_partial(float* p, F v, int64_t count) { _mm512_mask_storeu_ps(p, tail_mask(count), v); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm512_fmsub_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F fmaddsub(F a, F b, F c) { return _mm512_fmaddsub_ps(a, b, c); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F abs(F v) { return _mm512_abs_ps(v); }
  static F neg(F v) { return _mm512_xor_ps(v, _mm512_set1_ps(-0.0f)); }
  static F sign(F v) { return _mm512_and_ps(v, _mm512_set1_ps(-0.0f)); }
  static F or_(F a, F b) { return _mm512_or_ps(a, b); }
  static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M ge(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static F select(M m, F t, F f) { return _mm512_mask_blend_ps(m, f, t); }
  static unsigned bits(M m) { return m; }
  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static F round(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F trunc(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  // vscalefps: p·2^n with one rounding, denormal results and overflow to inf included.
  static F scale_pow2(F p, F n) { return _mm512_scalef_ps(p, n); }
  static F dup_even(F v) { return _mm512_moveldup_ps(v); }
  static F dup_odd(F v) { return _mm512_movehdup_ps(v); }
  static F swap_pairs(F v) { return _mm512_permute_ps(v, 0xB1); }
  static void store_i8(int8_t* dst, F v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
  }
};

}  // namespace

const OpsTable& avx512_ops() {
  static constexpr OpsTable kTable = {.fns = ops_simd::simd_ops<VecAvx512>(), .to_float = nullptr, .n_to_float = 0};
  return kTable;
}

}  // namespace ember
