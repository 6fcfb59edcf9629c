// The avx512 GEMM microkernel (VNNI) and activation quantizer over 16-row panels (gemm_isa.h).
// Compiled with AVX-512 flags; includes only plain-data headers (see isa_kernel.h for why).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/gemm_isa.h"
#include "cpu/gemm_quantize_avx512.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

constexpr int kRows = kAvx512Panels.rows;         // weight rows per group: one int32 / float lane each
constexpr int kGroup = kAvx512Panels.k_group;     // k-values of a row per lane: vpdpbusd's 4-byte groups
constexpr int kTileRows = kAvx512Acts.tile_rows;  // activation rows per register tile
static_assert(kRows == 16 && kGroup == 4 && kAvx512Acts.k_group == kGroup && kAvx512Acts.elem_bytes == 1);
// Register tile: 6 activation rows × 2 groups (32 weight rows) = 12 int32 + 12 float
// accumulators, 2 weight vectors and a broadcast: 27 of the 32 zmm. Each weight vector feeds 6
// vpdpbusd and each broadcast 2, so loads stay under the two per cycle the VNNI ports can eat.

// Row tile t of the activations (its first Rows rows: a full tile, or the last one's remainder, so
// a step of 2-5 rows does not pay for 6) × kGroups groups of 16 weight rows over the tile's
// sub-blocks. The int32 accumulators restart at every sub-block (from −offset·Σa) and fold into the
// float accumulators with the scales: fma(isum, scale·ad, acc), then fma(min, ad·Σa, acc) — the
// scalar reference's order, so results are bit-identical, and each row's result is the same
// whatever the tile's height.
template <int kGroups, int Sub, bool HasMin, bool Nibbles, int Rows>
void tile_rows(const GemmActivations& acts, const GemmTile& tile, int64_t t, const __mmask16 (&valid)[kGroups]) {
  static_assert(Rows >= 1 && Rows <= kTileRows);
  constexpr int64_t kQBytes = kRows * Sub / (Nibbles ? 2 : 1);
  constexpr int64_t kSubBytes = kQBytes + 4 * kRows * (HasMin ? 2 : 1);
  constexpr int kSteps = Sub / kGroup;                           // k-groups per sub-block
  constexpr int kLoads = Nibbles ? kSteps / 2 : kSteps;          // weight vectors per sub-block and group
  constexpr int64_t kActSubBytes = kTileRows * Sub;              // one tile's int8 values of one sub-block
  const int64_t cell = (t * acts.n_sub + tile.sb0) * kTileRows;  // [tile][sub-block][row] index of sb0
  const uint8_t* a = static_cast<const uint8_t*>(acts.q) + cell * Sub;
  const float* ascale = acts.scale + cell;
  const int32_t* corr = acts.corr + cell;
  const float* amin = HasMin ? acts.min_scale + cell : nullptr;
  float* y = tile.y + t * kTileRows * tile.y_stride;
  __m512 facc[Rows][kGroups];
  for (int i = 0; i < Rows; ++i) {
    for (int g = 0; g < kGroups; ++g) {
      facc[i][g] =
          tile.accumulate ? _mm512_maskz_loadu_ps(valid[g], y + i * tile.y_stride + 16 * g) : _mm512_setzero_ps();
    }
  }
  for (int64_t b = 0; b < tile.n_sb; ++b) {
    const uint8_t* p = tile.panel + b * kSubBytes;
    const uint8_t* ab = a + b * kActSubBytes;
    __m512i iacc[Rows][kGroups];
    for (int i = 0; i < Rows; ++i) {
      for (int g = 0; g < kGroups; ++g) iacc[i][g] = _mm512_set1_epi32(corr[b * kTileRows + i]);
    }
    // Weight vector j holds k-group j (or, as nibbles, k-groups j and j + kLoads).
    const auto dot_step = [&](const __m512i(&w)[kGroups], int step) {
      for (int i = 0; i < Rows; ++i) {
        const __m512i x = _mm512_set1_epi32(load_i32(ab + (step * kTileRows + i) * kGroup));
        for (int g = 0; g < kGroups; ++g) iacc[i][g] = _mm512_dpbusd_epi32(iacc[i][g], w[g], x);
      }
    };
    for (int j = 0; j < kLoads; ++j) {
      __m512i w[kGroups];
      for (int g = 0; g < kGroups; ++g) w[g] = _mm512_load_si512(p + g * tile.group_stride + j * kRows * kGroup);
      if constexpr (Nibbles) {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        __m512i high[kGroups];
        for (int g = 0; g < kGroups; ++g) {
          high[g] = _mm512_and_si512(_mm512_srli_epi16(w[g], 4), low4);
          w[g] = _mm512_and_si512(w[g], low4);
        }
        dot_step(w, j);
        dot_step(high, j + kLoads);
      } else {
        dot_step(w, j);
      }
    }
    for (int g = 0; g < kGroups; ++g) {
      const __m512 scale = _mm512_load_ps(p + g * tile.group_stride + kQBytes);
      for (int i = 0; i < Rows; ++i) {
        facc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[i][g]),
                                     _mm512_mul_ps(scale, _mm512_set1_ps(ascale[b * kTileRows + i])), facc[i][g]);
      }
      if constexpr (HasMin) {
        const __m512 min = _mm512_load_ps(p + g * tile.group_stride + kQBytes + 4 * kRows);
        for (int i = 0; i < Rows; ++i)
          facc[i][g] = _mm512_fmadd_ps(min, _mm512_set1_ps(amin[b * kTileRows + i]), facc[i][g]);
      }
    }
  }
  for (int i = 0; i < Rows; ++i) {
    for (int g = 0; g < kGroups; ++g) _mm512_mask_storeu_ps(y + i * tile.y_stride + 16 * g, valid[g], facc[i][g]);
  }
}

// Row t · kTileRows alone (decode, or a last tile of one row) × kGroups groups of 16 weight rows:
// tile_rows' arithmetic with each group's int32 sum split over two accumulators (even / odd
// k-groups) so consecutive vpdpbusd do not wait on each other. Integer sums are exact, so the
// result equals tile_rows' bit for bit.
template <int kGroups, int Sub, bool HasMin, bool Nibbles>
void row_kernel(const GemmActivations& acts, const GemmTile& tile, int64_t t, const __mmask16 (&valid)[kGroups]) {
  constexpr int64_t kQBytes = kRows * Sub / (Nibbles ? 2 : 1);
  constexpr int64_t kSubBytes = kQBytes + 4 * kRows * (HasMin ? 2 : 1);
  constexpr int kSteps = Sub / kGroup;
  constexpr int kLoads = Nibbles ? kSteps / 2 : kSteps;
  constexpr int64_t kActSubBytes = kTileRows * Sub;
  const int64_t cell = (t * acts.n_sub + tile.sb0) * kTileRows;
  const uint8_t* a = static_cast<const uint8_t*>(acts.q) + cell * Sub;
  const float* ascale = acts.scale + cell;
  const int32_t* corr = acts.corr + cell;
  const float* amin = HasMin ? acts.min_scale + cell : nullptr;
  float* y = tile.y + t * kTileRows * tile.y_stride;
  __m512 facc[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    facc[g] = tile.accumulate ? _mm512_maskz_loadu_ps(valid[g], y + 16 * g) : _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < tile.n_sb; ++b) {
    const uint8_t* p = tile.panel + b * kSubBytes;
    const uint8_t* ab = a + b * kActSubBytes;
    __m512i even[kGroups], odd[kGroups];
    for (int g = 0; g < kGroups; ++g) {
      even[g] = _mm512_set1_epi32(corr[b * kTileRows]);
      odd[g] = _mm512_setzero_si512();
    }
    const auto x_of = [&](int step) { return _mm512_set1_epi32(load_i32(ab + step * kTileRows * kGroup)); };
    for (int j = 0; j < kLoads; ++j) {
      const __m512i x = x_of(j);
      for (int g = 0; g < kGroups; ++g) {
        __m512i w = _mm512_load_si512(p + g * tile.group_stride + j * kRows * kGroup);
        if constexpr (Nibbles) {
          const __m512i low4 = _mm512_set1_epi8(0x0F);
          const __m512i high = _mm512_and_si512(_mm512_srli_epi16(w, 4), low4);
          even[g] = _mm512_dpbusd_epi32(even[g], _mm512_and_si512(w, low4), x);
          odd[g] = _mm512_dpbusd_epi32(odd[g], high, x_of(j + kLoads));
        } else if (j % 2 == 0) {
          even[g] = _mm512_dpbusd_epi32(even[g], w, x);
        } else {
          odd[g] = _mm512_dpbusd_epi32(odd[g], w, x);
        }
      }
    }
    for (int g = 0; g < kGroups; ++g) {
      const __m512 scale = _mm512_load_ps(p + g * tile.group_stride + kQBytes);
      facc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even[g], odd[g])),
                                _mm512_mul_ps(scale, _mm512_set1_ps(ascale[b * kTileRows])), facc[g]);
      if constexpr (HasMin) {
        const __m512 min = _mm512_load_ps(p + g * tile.group_stride + kQBytes + 4 * kRows);
        facc[g] = _mm512_fmadd_ps(min, _mm512_set1_ps(amin[b * kTileRows]), facc[g]);
      }
    }
  }
  for (int g = 0; g < kGroups; ++g) _mm512_mask_storeu_ps(y + 16 * g, valid[g], facc[g]);
}

// Every row tile of the activations × kGroups groups of 16 weight rows, each tile computed at its
// own height.
template <int kGroups, int Sub, bool HasMin, bool Nibbles>
void tile_kernel(const GemmActivations& acts, const GemmTile& tile) {
  __mmask16 valid[kGroups];
  for (int g = 0; g < kGroups; ++g) valid[g] = lanes_below_16(tile.n_valid - 16 * g);
  const int64_t n_tiles = (tile.m + kTileRows - 1) / kTileRows;
  for (int64_t t = 0; t < n_tiles; ++t) {
    prefetch_next_slice(tile, t, n_tiles);
    const int64_t rows = tile.m - t * kTileRows < kTileRows ? tile.m - t * kTileRows : kTileRows;
    static_assert(kTileRows == 6, "one case per tile height below");
    switch (rows) {
      case 1: row_kernel<kGroups, Sub, HasMin, Nibbles>(acts, tile, t, valid); break;
      case 2: tile_rows<kGroups, Sub, HasMin, Nibbles, 2>(acts, tile, t, valid); break;
      case 3: tile_rows<kGroups, Sub, HasMin, Nibbles, 3>(acts, tile, t, valid); break;
      case 4: tile_rows<kGroups, Sub, HasMin, Nibbles, 4>(acts, tile, t, valid); break;
      case 5: tile_rows<kGroups, Sub, HasMin, Nibbles, 5>(acts, tile, t, valid); break;
      default: tile_rows<kGroups, Sub, HasMin, Nibbles, kTileRows>(acts, tile, t, valid); break;
    }
  }
}

template <int Sub, bool HasMin, bool Nibbles>
void groups(const GemmActivations& acts, const GemmTile& tile) {
  GemmTile part = tile;
  for (int64_t g = 0; g < tile.n_groups; g += 2) {
    part.panel = tile.panel + g * tile.group_stride;
    part.y = tile.y + 16 * g;
    part.n_valid = tile.n_valid - 16 * g;
    if (g + 1 < tile.n_groups) {
      tile_kernel<2, Sub, HasMin, Nibbles>(acts, part);
    } else {
      tile_kernel<1, Sub, HasMin, Nibbles>(acts, part);
    }
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

// Activations in 6-row tiles of 4-byte k-groups: each 16-byte chunk goes to four interleaved slots.
void quantize(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
              const GemmActivations& acts) {
  constexpr int kStride = kTileRows * kGroup;  // bytes between consecutive k-groups of one row
  quantize_rows(format, x, k, r0, r1, kTileRows, acts, [&](int64_t cell, int64_t lane, int half, __m128i bytes) {
    uint8_t* q = static_cast<uint8_t*>(acts.q) + cell * format.sub + lane * kGroup + half * 4 * kStride;
    const int32_t groups[4] = {_mm_cvtsi128_si32(bytes), _mm_extract_epi32(bytes, 1), _mm_extract_epi32(bytes, 2),
                               _mm_extract_epi32(bytes, 3)};
    for (int j = 0; j < 4; ++j) std::memcpy(q + j * kStride, &groups[j], 4);
  });
}

}  // namespace

GemmIsaKernels gemm_avx512_kernels() {
  return GemmIsaKernels{kernel, quantize, gemm_avx512_float_kernel, gemm_avx512_float_acts};
}

}  // namespace ember
