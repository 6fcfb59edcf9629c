// The activation quantizer shared by the avx512 GEMM units (gemm_avx512.cpp, gemm_amx.cpp), which
// differ only in where the bytes go: internal linkage only, included only by units compiled with
// AVX-512 flags (see isa_kernel.h for why).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/gemm_isa.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

// Quantizes rows [r0, r1) of x (row stride k floats) per sub-block of format.sub with the scalar
// reference's rule (d = amax / 127, round half to even, saturate), for a kernel whose activation
// rows sit in tiles of `tile_rows`. `place(cell, lane, half, bytes)` stores the 16 int8 values of
// k [16·half, 16·half + 16) of the sub-block at [tile][sub-block] index `cell`, row `lane`, where the
// kernel reads them; the scale, −offset·Σa and ad·Σa are written here.
template <typename Place>
inline void quantize_rows(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
                          int64_t tile_rows, const GemmActivations& acts, Place place) {
  const int64_t n_sub = k / format.sub;
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * k;
    const int64_t t = r / tile_rows, lane = r % tile_rows;
    for (int64_t s = 0; s < n_sub; ++s) {
      const float* xs = xr + s * format.sub;
      const __m512 x0 = _mm512_loadu_ps(xs);
      const __m512 x1 = format.sub == 32 ? _mm512_loadu_ps(xs + 16) : _mm512_setzero_ps();
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
      const float d = amax / 127.0f;
      const __m512 id = _mm512_set1_ps(inverse_scale(d));
      const int64_t cell = (t * n_sub + s) * tile_rows;
      int32_t sum = 0;
      for (int half = 0; half < format.sub / 16; ++half) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(half == 0 ? x0 : x1, id));
        place(cell, lane, half, _mm512_cvtsepi32_epi8(v));
        sum += _mm512_reduce_add_epi32(v);
      }
      acts.scale[cell + lane] = d;
      acts.corr[cell + lane] = -format.offset * sum;
      if (acts.min_scale != nullptr) acts.min_scale[cell + lane] = d * static_cast<float>(sum);
    }
  }
}

}  // namespace
}  // namespace ember
