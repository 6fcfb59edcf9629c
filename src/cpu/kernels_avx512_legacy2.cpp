// The avx512 dot products of the 32-element block formats (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL):
// two blocks per zmm through VNNI vpdpbusd, eight blocks per iteration with their scales gathered
// and converted together (vpermt2w + one vcvtph2ps for 8 blocks instead of scalar conversions).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/isa_kernel.h"
#include "cpu/simd_avx2.h"
#include "quant/block_iq4.h"
#include "quant/block_legacy.h"

namespace ember {
namespace {

// How far ahead of the weight stream to prefetch: ~120 blocks of 34 bytes measured best for Q8_0
// (the hardware prefetcher alone left the GEMV at half the read bandwidth).
constexpr int kPrefetchBytes = 4096;

// Eight f16 values at byte offsets kStride·i (i = 0..7) from p, as 8 floats: the block scales of 8
// consecutive blocks. Per 4 blocks, two 64-byte loads (the second ending at the 4th value, so
// nothing past the blocks is read) and one vpermt2w gather the words, instead of 8 scalar inserts.
// Reads stay inside the 8 blocks for strides >= 16, also from p = block + 2 (Q4_1's m, Q8_1's s)
// for strides >= 18.
template <int kStride>
inline __m256 f16_x8(const void* p) {
  static_assert(kStride % 2 == 0 && kStride >= 16 && 3 * kStride + 2 <= 128, "4 values must fit two zmm");
  constexpr int kOffsetB = 3 * kStride + 2 > 64 ? 3 * kStride + 2 - 64 : 0;  // second load's start
  // Word indices into (a, b): value i of a group at word i (first group) or 4 + i (second).
  static constexpr auto kIndex = [] {
    struct {
      int16_t lo[32], hi[32];
    } idx{};
    for (int i = 0; i < 4; ++i) {
      const int byte = kStride * i;
      const int16_t w = static_cast<int16_t>(byte + 2 <= 64 ? byte / 2 : 32 + (byte - kOffsetB) / 2);
      idx.lo[i] = w;
      idx.hi[4 + i] = w;
    }
    return idx;
  }();
  const char* c = static_cast<const char*>(p);
  const auto gather = [](const char* group, const int16_t* index) {
    if constexpr (kOffsetB == 0) {  // one window holds all four: single-source vpermw
      return _mm512_permutexvar_epi16(_mm512_loadu_si512(index), _mm512_loadu_si512(group));
    } else {
      return _mm512_permutex2var_epi16(_mm512_loadu_si512(group), _mm512_loadu_si512(index),
                                       _mm512_loadu_si512(group + kOffsetB));
    }
  };
  const __m512i lo = gather(c, kIndex.lo), hi = gather(c + 4 * kStride, kIndex.hi);
  return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_blend_epi16(0xF0, lo, hi)));
}

// Two 32-byte payloads (at a and b) in one zmm: a in the low half.
inline __m512i load_2x32(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}

// The 32 nibbles of two Q4_0-layout blocks (16 bytes each; low nibbles are elements 0..15, high
// nibbles 16..31) in element order, block a in the low half, unsigned 0..15: [a, a, b, b] by two
// broadcast loads (one merged under a mask), then a per-lane shift of 0 or 4 and a mask.
inline __m512i nibbles_2(const uint8_t* a, const uint8_t* b) {
  const __m512i aabb =
      _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))), 0xFF00,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
  const __m512i shifts =
      _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(4), _mm_setzero_si128())),
                         _mm256_set_m128i(_mm_set1_epi16(4), _mm_setzero_si128()), 1);
  return _mm512_and_si512(_mm512_srlv_epi16(aabb, shifts), _mm512_set1_epi8(0x0F));
}

// The 5th bits of two Q5 blocks as a byte mask (bits 0..31: block a's elements, 32..63: b's).
inline __mmask64 high_bits_2(const uint8_t (&a)[4], const uint8_t (&b)[4]) {
  uint32_t lo, hi;
  std::memcpy(&lo, a, sizeof lo);
  std::memcpy(&hi, b, sizeof hi);
  return _cvtu64_mask64(lo | (static_cast<uint64_t>(hi) << 32));
}

// Σ u·y per 4-byte group for unsigned u, minus c·Σ y (the offset that made u unsigned).
inline __m512i dot_offset(__m512i u, __m512i y, char c) {
  return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y),
                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(c), y));
}

// Lanes 0..7 = s0, lanes 8..15 = s1.
inline __m512 scales_2(float s0, float s1) { return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1); }

// vpermps indices spreading 8 block scales over 4 zmm of two blocks: [2k x8, 2k+1 x8].
inline __m512i pair_index(int k) {
  return _mm512_inserti64x4(_mm512_set1_epi32(2 * k), _mm256_set1_epi32(2 * k + 1), 1);
}

// Σ_b scale_b · dot2(block b) over nb blocks. dot2(xa, xb, ya, yb) returns the int32 group sums of
// xa·ya in lanes 0..7 and xb·yb in lanes 8..15. With kMin (Q4_1/Q5_1 against Q8_1) adds m_x · s_y
// per block. Eight blocks per iteration, then pairs; a lone last block pairs with itself at scale 0.
template <bool kMin, typename BlockX, typename BlockY, typename Dot2>
inline float dot_blocks(int64_t nb, const BlockX* x, const BlockY* y, Dot2 dot2) {
  const __m512i idx[4] = {pair_index(0), pair_index(1), pair_index(2), pair_index(3)};
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    prefetch_lines(reinterpret_cast<const char*>(x + b) + kPrefetchBytes, 8 * sizeof(BlockX));
    // d is each block's first field; Q4_1/Q5_1's m and Q8_1's s the second.
    const __m512 s =
        _mm512_castps256_ps512(_mm256_mul_ps(f16_x8<sizeof(BlockX)>(x + b), f16_x8<sizeof(BlockY)>(y + b)));
    if constexpr (kMin) {
      acc_min = _mm256_fmadd_ps(f16_x8<sizeof(BlockX)>(reinterpret_cast<const char*>(x + b) + 2),
                                f16_x8<sizeof(BlockY)>(reinterpret_cast<const char*>(y + b) + 2), acc_min);
    }
    const __m512i d0 = dot2(x + b, x + b + 1, y + b, y + b + 1);
    const __m512i d1 = dot2(x + b + 2, x + b + 3, y + b + 2, y + b + 3);
    const __m512i d2 = dot2(x + b + 4, x + b + 5, y + b + 4, y + b + 5);
    const __m512i d3 = dot2(x + b + 6, x + b + 7, y + b + 6, y + b + 7);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(idx[0], s), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_permutexvar_ps(idx[1], s), acc1);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d2), _mm512_permutexvar_ps(idx[2], s), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d3), _mm512_permutexvar_ps(idx[3], s), acc1);
  }
  float min_sum = 0.0f;
  for (; b < nb; b += 2) {
    const bool pair = b + 1 < nb;
    const int64_t b1 = pair ? b + 1 : b;
    const float s1 = pair ? block_scale(x[b1].d, y[b1].d) : 0.0f;
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot2(x + b, x + b1, y + b, y + b1)),
                           scales_2(block_scale(x[b].d, y[b].d), s1), acc0);
    if constexpr (kMin) {
      min_sum += block_scale(x[b].m, y[b].s);
      if (pair) min_sum += block_scale(x[b1].m, y[b1].s);
    }
  }
  const __m512 acc = _mm512_add_ps(acc0, acc1);
  return hsum(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1))) + hsum(acc_min) + min_sum;
}

float vec_dot_q4_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  return dot_blocks<false>(n / kQK4_0, static_cast<const BlockQ4_0*>(vx), static_cast<const BlockQ8_0*>(vy),
                           [](const BlockQ4_0* xa, const BlockQ4_0* xb, const BlockQ8_0* ya, const BlockQ8_0* yb) {
                             return dot_offset(nibbles_2(xa->qs, xb->qs), load_2x32(ya->qs, yb->qs), 8);
                           });
}

// Q8_0: x + 128 is unsigned (the sign bit flipped), so Σ x·y = Σ (x+128)·y - 128 Σ y.
float vec_dot_q8_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  return dot_blocks<false>(n / kQK8_0, static_cast<const BlockQ8_0*>(vx), static_cast<const BlockQ8_0*>(vy),
                           [](const BlockQ8_0* xa, const BlockQ8_0* xb, const BlockQ8_0* ya, const BlockQ8_0* yb) {
                             const __m512i u =
                                 _mm512_xor_si512(load_2x32(xa->qs, xb->qs), _mm512_set1_epi8(static_cast<char>(0x80)));
                             return dot_offset(u, load_2x32(ya->qs, yb->qs), static_cast<char>(0x80));
                           });
}

// Q5_0: q = nibble + 16 · 5th bit (a masked add), value q - 16.
float vec_dot_q5_0_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  return dot_blocks<false>(n / kQK5_0, static_cast<const BlockQ5_0*>(vx), static_cast<const BlockQ8_0*>(vy),
                           [](const BlockQ5_0* xa, const BlockQ5_0* xb, const BlockQ8_0* ya, const BlockQ8_0* yb) {
                             const __m512i q = nibbles_2(xa->qs, xb->qs);
                             const __m512i q5 =
                                 _mm512_mask_add_epi8(q, high_bits_2(xa->qh, xb->qh), q, _mm512_set1_epi8(16));
                             return dot_offset(q5, load_2x32(ya->qs, yb->qs), 16);
                           });
}

// Q4_1 / Q5_1: unsigned q straight into vpdpbusd; the min enters through Q8_1's s.
float vec_dot_q4_1_q8_1_avx512(int64_t n, const void* vx, const void* vy) {
  return dot_blocks<true>(n / kQK4_1, static_cast<const BlockQ4_1*>(vx), static_cast<const BlockQ8_1*>(vy),
                          [](const BlockQ4_1* xa, const BlockQ4_1* xb, const BlockQ8_1* ya, const BlockQ8_1* yb) {
                            return _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_2(xa->qs, xb->qs),
                                                       load_2x32(ya->qs, yb->qs));
                          });
}

float vec_dot_q5_1_q8_1_avx512(int64_t n, const void* vx, const void* vy) {
  return dot_blocks<true>(n / kQK5_1, static_cast<const BlockQ5_1*>(vx), static_cast<const BlockQ8_1*>(vy),
                          [](const BlockQ5_1* xa, const BlockQ5_1* xb, const BlockQ8_1* ya, const BlockQ8_1* yb) {
                            const __m512i q = nibbles_2(xa->qs, xb->qs);
                            const __m512i q5 =
                                _mm512_mask_add_epi8(q, high_bits_2(xa->qh, xb->qh), q, _mm512_set1_epi8(16));
                            return _mm512_dpbusd_epi32(_mm512_setzero_si512(), q5, load_2x32(ya->qs, yb->qs));
                          });
}

// IQ4_NL: the nibbles index the levels + 128 (1..241, unsigned) with one vpshufb; minus 128 Σ y.
float vec_dot_iq4_nl_q8_0_avx512(int64_t n, const void* vx, const void* vy) {
  const __m512i levels = _mm512_broadcast_i32x4(_mm_add_epi8(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4Values)), _mm_set1_epi8(static_cast<char>(0x80))));
  return dot_blocks<false>(
      n / kQK4_NL, static_cast<const BlockIQ4_NL*>(vx), static_cast<const BlockQ8_0*>(vy),
      [levels](const BlockIQ4_NL* xa, const BlockIQ4_NL* xb, const BlockQ8_0* ya, const BlockQ8_0* yb) {
        const __m512i u = _mm512_shuffle_epi8(levels, nibbles_2(xa->qs, xb->qs));
        return dot_offset(u, load_2x32(ya->qs, yb->qs), static_cast<char>(0x80));
      });
}

}  // namespace

const IsaKernel* avx512_legacy2_kernels(size_t* count) {
  static constexpr IsaKernel kKernels[] = {
      {8 /* q8_0 */, nullptr, vec_dot_q8_0_q8_0_avx512}, {2 /* q4_0 */, nullptr, vec_dot_q4_0_q8_0_avx512},
      {6 /* q5_0 */, nullptr, vec_dot_q5_0_q8_0_avx512}, {3 /* q4_1 */, nullptr, vec_dot_q4_1_q8_1_avx512},
      {7 /* q5_1 */, nullptr, vec_dot_q5_1_q8_1_avx512}, {20 /* iq4_nl */, nullptr, vec_dot_iq4_nl_q8_0_avx512},
  };
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // namespace ember
