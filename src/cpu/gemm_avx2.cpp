// The avx2 GEMM microkernel (pmaddwd on 16-bit lanes) and activation quantizer over 8-row panels
// (gemm_isa.h). Compiled with AVX2 flags; includes only plain-data headers (see isa_kernel.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/gemm_isa.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

constexpr int kRows = kAvx2Panels.rows;      // weight rows per group: one int32 / float lane each
constexpr int kGroup = kAvx2Panels.k_group;  // k-values of a row per lane: pmaddwd's 16-bit pairs
// Activation rows per register tile: 6 int32 + 6 float accumulators, the weights and a broadcast
// use 14 of the 16 ymm registers.
constexpr int kTileRows = kAvx2Acts.tile_rows;
static_assert(kRows == 8 && kGroup == 2 && kAvx2Acts.k_group == kGroup && kAvx2Acts.elem_bytes == 2);

// The first n of 8 lanes (n clamped): partial groups of 8 weight rows.
__m256i lanes_below(int64_t n) {
  const int clamped = n < 0 ? 0 : (n > kRows ? kRows : static_cast<int>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(clamped), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Row tile t of the activations (its first Rows rows: a full tile, or the last one's remainder, so
// a step of 1-5 rows does not pay for 6) × one group of 8 weight rows over the tile's sub-blocks,
// in the scalar reference's order of float operations (see gemm_avx512.cpp): each row's result is
// the same whatever the tile's height.
template <int Sub, bool HasMin, bool Nibbles, int Rows>
void tile_rows(const GemmActivations& acts, const GemmTile& tile, int64_t t, __m256i valid) {
  static_assert(Rows >= 1 && Rows <= kTileRows);
  constexpr int64_t kQBytes = kRows * Sub / (Nibbles ? 2 : 1);
  constexpr int64_t kSubBytes = kQBytes + 4 * kRows * (HasMin ? 2 : 1);
  constexpr int kSteps = Sub / kGroup;                           // k-groups per sub-block
  constexpr int kLoads = Nibbles ? kSteps / 2 : kSteps;          // 16-byte weight loads per sub-block
  constexpr int64_t kActSubElems = kTileRows * Sub;              // one tile's values of one sub-block
  const int64_t cell = (t * acts.n_sub + tile.sb0) * kTileRows;  // [tile][sub-block][row] index of sb0
  const int16_t* a = static_cast<const int16_t*>(acts.q) + cell * Sub;
  const float* ascale = acts.scale + cell;
  const int32_t* corr = acts.corr + cell;
  const float* amin = HasMin ? acts.min_scale + cell : nullptr;
  float* y = tile.y + t * kTileRows * tile.y_stride;
  __m256 facc[Rows];
  for (int i = 0; i < Rows; ++i) {
    facc[i] = tile.accumulate ? _mm256_maskload_ps(y + i * tile.y_stride, valid) : _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < tile.n_sb; ++b) {
    const uint8_t* p = tile.panel + b * kSubBytes;
    const int16_t* ab = a + b * kActSubElems;
    __m256i iacc[Rows];
    for (int i = 0; i < Rows; ++i) iacc[i] = _mm256_set1_epi32(corr[b * kTileRows + i]);
    // Load j holds k-group j (or, as nibbles, k-groups j and j + kLoads). Bytes stay unsigned
    // and widen to 16 bits, so q up to 255 times activations up to ±127 never saturates
    // (maddubs's 16-bit pair sums would, for Q8_0's 128-offset bytes).
    const auto dot_step = [&](__m256i w, int step) {
      for (int i = 0; i < Rows; ++i) {
        const __m256i pair = _mm256_set1_epi32(load_i32(ab + (step * kTileRows + i) * kGroup));
        iacc[i] = _mm256_add_epi32(iacc[i], _mm256_madd_epi16(w, pair));
      }
    };
    for (int j = 0; j < kLoads; ++j) {
      const __m128i bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(p + j * kRows * kGroup));
      if constexpr (Nibbles) {
        const __m128i low4 = _mm_set1_epi8(0x0F);
        dot_step(_mm256_cvtepu8_epi16(_mm_and_si128(bytes, low4)), j);
        dot_step(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4)), j + kLoads);
      } else {
        dot_step(_mm256_cvtepu8_epi16(bytes), j);
      }
    }
    const __m256 scale = _mm256_load_ps(reinterpret_cast<const float*>(p + kQBytes));
    for (int i = 0; i < Rows; ++i) {
      facc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[i]),
                                _mm256_mul_ps(scale, _mm256_set1_ps(ascale[b * kTileRows + i])), facc[i]);
    }
    if constexpr (HasMin) {
      const __m256 min = _mm256_load_ps(reinterpret_cast<const float*>(p + kQBytes + 4 * kRows));
      for (int i = 0; i < Rows; ++i) facc[i] = _mm256_fmadd_ps(min, _mm256_set1_ps(amin[b * kTileRows + i]), facc[i]);
    }
  }
  for (int i = 0; i < Rows; ++i) _mm256_maskstore_ps(y + i * tile.y_stride, valid, facc[i]);
}

// Every row tile of the activations × one group of 8 weight rows, each tile at its own height.
template <int Sub, bool HasMin, bool Nibbles>
void tile_kernel(const GemmActivations& acts, const GemmTile& tile) {
  const __m256i valid = lanes_below(tile.n_valid);
  const int64_t n_tiles = (tile.m + kTileRows - 1) / kTileRows;
  for (int64_t t = 0; t < n_tiles; ++t) {
    prefetch_next_slice(tile, t, n_tiles);
    const int64_t rows = tile.m - t * kTileRows < kTileRows ? tile.m - t * kTileRows : kTileRows;
    static_assert(kTileRows == 6, "one case per tile height below");
    switch (rows) {
      case 1: tile_rows<Sub, HasMin, Nibbles, 1>(acts, tile, t, valid); break;
      case 2: tile_rows<Sub, HasMin, Nibbles, 2>(acts, tile, t, valid); break;
      case 3: tile_rows<Sub, HasMin, Nibbles, 3>(acts, tile, t, valid); break;
      case 4: tile_rows<Sub, HasMin, Nibbles, 4>(acts, tile, t, valid); break;
      case 5: tile_rows<Sub, HasMin, Nibbles, 5>(acts, tile, t, valid); break;
      default: tile_rows<Sub, HasMin, Nibbles, kTileRows>(acts, tile, t, valid); break;
    }
  }
}

template <int Sub, bool HasMin, bool Nibbles>
void groups(const GemmActivations& acts, const GemmTile& tile) {
  GemmTile part = tile;
  for (int64_t g = 0; g < tile.n_groups; ++g) {
    part.panel = tile.panel + g * tile.group_stride;
    part.y = tile.y + kRows * g;
    part.n_valid = tile.n_valid - kRows * g;
    tile_kernel<Sub, HasMin, Nibbles>(acts, part);
  }
}

template <int Sub>
void kernel_for(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile) {
  if (format.nibbles) {
    return format.has_min ? groups<Sub, true, true>(acts, tile) : groups<Sub, false, true>(acts, tile);
  }
  return format.has_min ? groups<Sub, true, false>(acts, tile) : groups<Sub, false, false>(acts, tile);
}

void kernel(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile) {
  return format.sub == 32 ? kernel_for<32>(format, acts, tile) : kernel_for<16>(format, acts, tile);
}

__m256 abs_ps(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// The scalar reference's operations: d = amax / 127, id = 1 / d, q = round-half-even(x · id),
// stored as 16-bit values for pmaddwd, each pair in its interleaved slot.
void quantize(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
              const GemmActivations& acts) {
  const int64_t n_sub = k / format.sub;
  const int n_vec = format.sub / 8;
  constexpr int kStride = kTileRows * kGroup;  // int16s between consecutive pairs of one row
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * k;
    const int64_t t = r / kTileRows, lane = r % kTileRows;
    for (int64_t s = 0; s < n_sub; ++s) {
      const float* xs = xr + s * format.sub;
      __m256 amax_v = _mm256_setzero_ps();
      for (int v = 0; v < n_vec; ++v) amax_v = _mm256_max_ps(amax_v, abs_ps(_mm256_loadu_ps(xs + 8 * v)));
      const float d = hmax(amax_v) / 127.0f;
      const __m256 id = _mm256_set1_ps(inverse_scale(d));
      const int64_t cell = (t * n_sub + s) * kTileRows;
      int16_t* q = static_cast<int16_t*>(acts.q) + cell * format.sub + lane * kGroup;
      __m256i sum = _mm256_setzero_si256();
      for (int v = 0; v < n_vec; ++v) {
        const __m256i qi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xs + 8 * v), id));
        sum = _mm256_add_epi32(sum, qi);
        const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
        const int32_t p0 = _mm_cvtsi128_si32(packed), p1 = _mm_extract_epi32(packed, 1),
                      p2 = _mm_extract_epi32(packed, 2), p3 = _mm_extract_epi32(packed, 3);
        int16_t* first = q + 4 * v * kStride;  // pairs 4v .. 4v+3 of this sub-block
        std::memcpy(first, &p0, 4);
        std::memcpy(first + kStride, &p1, 4);
        std::memcpy(first + 2 * kStride, &p2, 4);
        std::memcpy(first + 3 * kStride, &p3, 4);
      }
      const int32_t total = hsum_i32(sum);
      acts.scale[cell + lane] = d;
      acts.corr[cell + lane] = -format.offset * total;
      if (acts.min_scale != nullptr) acts.min_scale[cell + lane] = d * static_cast<float>(total);
    }
  }
}

}  // namespace

GemmIsaKernels gemm_avx2_kernels() { return GemmIsaKernels{kernel, quantize, nullptr, nullptr}; }

}  // namespace ember
