// The avx2 dot products of the other 32-element block formats (Q5_0, Q4_1, Q5_1, IQ4_NL) and of
// F32 / F16 / BF16 (F16C + FMA), and F16 activation conversion.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_iq4.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Σ x·y of signed bytes as 8 int32 lanes (|x|, |y| <= 127): x's sign moves onto y for maddubs.
inline __m256i dot_signed(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)), _mm256_set1_epi16(1));
}

// Σ u·y of unsigned bytes u (<= 127) and signed y as 8 int32 lanes.
inline __m256i dot_unsigned(__m256i u, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

// Byte j = 0xFF where bit j of `bits` is set, else 0 (the 5th bits of a Q5 block, element order).
inline __m256i bits_to_bytes(uint32_t bits) {
  // Byte j takes byte j/8 of `bits`, then tests its bit j%8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// The 5th bits of a Q5 block (qh as little-endian uint32). A local copy of block_legacy.h's
// q5_high_bits: calling that inline function here could emit it out of line with AVX code.
inline uint32_t high_bits(const uint8_t (&qh)[4]) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof bits);
  return bits;
}

// Q5_0: q = nibble | 5th bit << 4, value q - 16. Setting the high nibble to 0xF where the 5th bit is
// clear gives the signed value directly (nibble - 16 as int8).
float vec_dot_q5_0_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockQ5_0*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    const __m256i hi =
        _mm256_andnot_si256(bits_to_bytes(high_bits(x[b].qh)), _mm256_set1_epi8(static_cast<char>(0xF0)));
    const __m256i q = _mm256_or_si256(nibbles_q4_0(x[b].qs), hi);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_signed(q, load32(y[b].qs))),
                          _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
  }
  return hsum(acc);
}

// Q4_1 / Q5_1 (x = d·q + m, q unsigned): d_x d_y Σ q·y_q + m_x s_y, s_y = d_y Σ y_q from Q8_1.
template <typename Block, bool kFiveBit>
float dot_with_min(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const Block*>(vx);
  const auto* y = static_cast<const BlockQ8_1*>(vy);
  __m256 acc = _mm256_setzero_ps();
  float min_sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    __m256i q = nibbles_q4_0(x[b].qs);
    if constexpr (kFiveBit) {
      q = _mm256_or_si256(q, _mm256_and_si256(bits_to_bytes(high_bits(x[b].qh)), _mm256_set1_epi8(0x10)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_unsigned(q, load32(y[b].qs))),
                          _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
    min_sum += block_scale(x[b].m, y[b].s);
  }
  return hsum(acc) + min_sum;
}

float vec_dot_q4_1_q8_1_avx2(int64_t n, const void* x, const void* y) {
  return dot_with_min<BlockQ4_1, false>(n, x, y);
}
float vec_dot_q5_1_q8_1_avx2(int64_t n, const void* x, const void* y) { return dot_with_min<BlockQ5_1, true>(n, x, y); }

// IQ4_NL: the nibbles index the 16 signed levels (one pshufb).
float vec_dot_iq4_nl_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
  const auto* x = static_cast<const BlockIQ4_NL*>(vx);
  const auto* y = static_cast<const BlockQ8_0*>(vy);
  const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4Values)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    const __m256i q = _mm256_shuffle_epi8(levels, nibbles_q4_0(x[b].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_signed(q, load32(y[b].qs))),
                          _mm256_set1_ps(block_scale(x[b].d, y[b].d)), acc);
  }
  return hsum(acc);
}

// ---- F16 / BF16 ----

// F16C rounds to nearest even, as the reference does: bit-identical.
void quantize_row_f16_avx2(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

inline __m256 widen_f16(__m128i h) { return _mm256_cvtph_ps(h); }
// bf16 is the high half of an f32.
inline __m256 widen_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

// Widen to f32 (exact) and multiply-add into four accumulators (products of two 11- or 8-bit
// mantissas are exact in f32; only the accumulation rounds, in float rather than double).
template <typename Widen16>
inline float dot_16bit(int64_t n, const uint16_t* a, const uint16_t* b, Widen16 widen) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_lines(a + i + 1024, 64);
    for (int k = 0; k < 4; ++k) {
      const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 8 * k));
      const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 8 * k));
      acc[k] = _mm256_fmadd_ps(widen(va), widen(vb), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    acc[0] = _mm256_fmadd_ps(widen(va), widen(vb), acc[0]);
  }
  if (i < n) {  // the last 1..7 elements, zero-padded
    uint16_t ta[8] = {}, tb[8] = {};
    std::memcpy(ta, a + i, static_cast<size_t>(n - i) * sizeof(uint16_t));
    std::memcpy(tb, b + i, static_cast<size_t>(n - i) * sizeof(uint16_t));
    acc[1] = _mm256_fmadd_ps(widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ta))),
                             widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb))), acc[1]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

float vec_dot_f16_avx2(int64_t n, const void* x, const void* y) {
  return dot_16bit(n, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), widen_f16);
}

float vec_dot_bf16_avx2(int64_t n, const void* x, const void* y) {
  return dot_16bit(n, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), widen_bf16);
}

// F32 weights (MoE routers, F32 models), summed in double lanes: each product of two floats is
// exact in double (the scalar reference rounds each product to float first, then sums in double).
float vec_dot_f32_avx2(int64_t n, const void* x, const void* y) {
  const auto* a = static_cast<const float*>(x);
  const auto* b = static_cast<const float*>(y);
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) {
      const __m256d va = _mm256_cvtps_pd(_mm_loadu_ps(a + i + 4 * k));
      acc[k] = _mm256_fmadd_pd(va, _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4 * k)), acc[k]);
    }
  }
  for (; i + 4 <= n; i += 4) {
    acc[0] = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i)), _mm256_cvtps_pd(_mm_loadu_ps(b + i)), acc[0]);
  }
  const __m256d v = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
  const __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  double sum = _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
  for (; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(sum);
}

}  // namespace

const IsaKernel* avx2_legacy2_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {0 /* f32 */, nullptr, vec_dot_f32_avx2},
      {6 /* q5_0 */, nullptr, vec_dot_q5_0_q8_0_avx2},
      {3 /* q4_1 */, nullptr, vec_dot_q4_1_q8_1_avx2},
      {7 /* q5_1 */, nullptr, vec_dot_q5_1_q8_1_avx2},
      {20 /* iq4_nl */, nullptr, vec_dot_iq4_nl_q8_0_avx2},
      {1 /* f16 */, quantize_row_f16_avx2, vec_dot_f16_avx2},
      {30 /* bf16 */, nullptr, vec_dot_bf16_avx2},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
