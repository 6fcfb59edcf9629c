// The avx512 GEMM microkernels for F16 weights (vcvtph2ps + FMA) and BF16 weights (vdpbf16ps),
// and their activation layouts (gemm_isa.h). AVX-512 flags; plain-data headers only.
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "cpu/gemm_isa.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

constexpr int kRows = 16;
constexpr int kSub = 32;
constexpr int kTileRows = kFloatTileRows;
constexpr int64_t kSubBytes = kRows * kSub * 2;  // 16 rows × 32 k of 2-byte values
static_assert(kF16Panels.rows == kRows && kBF16Panels.rows == kRows && kTileRows == 12);

// One tile of up to 12 activation rows × kGroups groups, computing kActive rows (the rows the tile
// holds: a tile of 5 rows costs 5 rows of FMAs, not 12 — speculative verification's and small
// batches' case). Up to 24 float accumulators, kGroups weight vectors and a broadcast. Float order
// per output: for each k in order, acc = fma(w, x, acc) (F16); for each pair, the odd product then
// the even one (what vdpbf16ps does) — the scalar reference's order, whatever kActive is.
template <int kGroups, bool Bf16, int kActive>
void float_tile_rows(const GemmActivations& acts, const GemmTile& tile, int64_t t, const __mmask16* valid) {
  constexpr int64_t kActSubBytes = Bf16 ? kTileRows * kSub * 2 : kTileRows * kSub * 4;
  const uint8_t* a = static_cast<const uint8_t*>(acts.q) + (t * acts.n_sub + tile.sb0) * kActSubBytes;
  float* y = tile.y + t * kTileRows * tile.y_stride;
  __m512 facc[kActive][kGroups];
  for (int i = 0; i < kActive; ++i) {
    for (int g = 0; g < kGroups; ++g) {
      facc[i][g] =
          tile.accumulate ? _mm512_maskz_loadu_ps(valid[g], y + i * tile.y_stride + 16 * g) : _mm512_setzero_ps();
    }
  }
  for (int64_t b = 0; b < tile.n_sb; ++b) {
    const uint8_t* p = tile.panel + b * kSubBytes;
    const uint8_t* ab = a + b * kActSubBytes;
    if constexpr (Bf16) {
      for (int pair = 0; pair < kSub / 2; ++pair) {
        __m512bh w[kGroups];
        for (int g = 0; g < kGroups; ++g) {
          w[g] = (__m512bh)_mm512_load_si512(p + g * tile.group_stride + pair * 64);
        }
        for (int i = 0; i < kActive; ++i) {
          const __m512bh x = (__m512bh)_mm512_set1_epi32(load_i32(ab + (pair * kTileRows + i) * 4));
          for (int g = 0; g < kGroups; ++g) facc[i][g] = _mm512_dpbf16_ps(facc[i][g], w[g], x);
        }
      }
    } else {
      const auto* af = reinterpret_cast<const float*>(ab);
      for (int kk = 0; kk < kSub; ++kk) {
        __m512 w[kGroups];
        for (int g = 0; g < kGroups; ++g) {
          w[g] =
              _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p + g * tile.group_stride + kk * 32)));
        }
        for (int i = 0; i < kActive; ++i) {
          const __m512 x = _mm512_set1_ps(af[kk * kTileRows + i]);
          for (int g = 0; g < kGroups; ++g) facc[i][g] = _mm512_fmadd_ps(w[g], x, facc[i][g]);
        }
      }
    }
  }
  for (int i = 0; i < kActive; ++i) {
    for (int g = 0; g < kGroups; ++g) _mm512_mask_storeu_ps(y + i * tile.y_stride + 16 * g, valid[g], facc[i][g]);
  }
}

// float_tile_rows<kGroups, Bf16, rows> for rows 1..12, indexed by rows - 1.
template <int kGroups, bool Bf16, int... kActive>
constexpr auto make_row_kernels(std::integer_sequence<int, kActive...>) {
  using Kernel = void (*)(const GemmActivations&, const GemmTile&, int64_t, const __mmask16*);
  return std::array<Kernel, sizeof...(kActive)>{&float_tile_rows<kGroups, Bf16, kActive + 1>...};
}

// The tile's rows in tiles of 12 (the last one with what is left).
template <int kGroups, bool Bf16>
void float_tile(const GemmActivations& acts, const GemmTile& tile) {
  static constexpr auto kKernels = make_row_kernels<kGroups, Bf16>(std::make_integer_sequence<int, kTileRows>());
  __mmask16 valid[kGroups];
  for (int g = 0; g < kGroups; ++g) valid[g] = lanes_below_16(tile.n_valid - 16 * g);
  const int64_t n_tiles = (tile.m + kTileRows - 1) / kTileRows;
  for (int64_t t = 0; t < n_tiles; ++t) {
    prefetch_next_slice(tile, t, n_tiles);
    const int64_t rows = tile.m - t * kTileRows < kTileRows ? tile.m - t * kTileRows : kTileRows;
    kKernels[static_cast<size_t>(rows - 1)](acts, tile, t, valid);
  }
}

template <bool Bf16>
void float_groups(const GemmActivations& acts, const GemmTile& tile) {
  GemmTile part = tile;
  for (int64_t g = 0; g < tile.n_groups; g += 2) {
    part.panel = tile.panel + g * tile.group_stride;
    part.y = tile.y + 16 * g;
    part.n_valid = tile.n_valid - 16 * g;
    if (g + 1 < tile.n_groups) {
      float_tile<2, Bf16>(acts, part);
    } else {
      float_tile<1, Bf16>(acts, part);
    }
  }
}

// f32 -> bf16 round-to-nearest-even with quiet NaNs, in integer operations, bit-identical to the
// reference fp32_to_bf16 (vcvtneps2bf16 would flush the subnormals it keeps; the dot product then
// reads them as zero, which the scalar kernel emulates).
__m256i to_bf16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

}  // namespace

void gemm_avx512_float_kernel(PanelKind kind, const GemmActivations& acts, const GemmTile& tile) {
  if (kind == PanelKind::kBF16) return float_groups<true>(acts, tile);
  return float_groups<false>(acts, tile);
}

void gemm_avx512_float_acts(PanelKind kind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q) {
  const int64_t n_sub = k / kSub;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r / kTileRows, lane = r % kTileRows;
    for (int64_t s = 0; s < n_sub; ++s) {
      const float* xs = x + r * k + s * kSub;
      const int64_t cell = (t * n_sub + s) * kTileRows * kSub;  // element index of the tile's sub-block
      if (kind == PanelKind::kBF16) {
        auto* dst = static_cast<uint16_t*>(q) + cell + lane * 2;
        for (int half = 0; half < 2; ++half) {
          alignas(32) uint16_t v[16];
          _mm256_store_si256(reinterpret_cast<__m256i*>(v), to_bf16(_mm512_loadu_ps(xs + 16 * half)));
          for (int j = 0; j < 16; j += 2) std::memcpy(dst + ((16 * half + j) / 2) * kTileRows * 2, v + j, 4);
        }
      } else {
        float* dst = static_cast<float*>(q) + cell + lane;
        for (int kk = 0; kk < kSub; ++kk) dst[kk * kTileRows] = xs[kk];
      }
    }
  }
}

}  // namespace ember
