// The AMX-INT8 GEMM microkernel and its activation quantizer: avx512's integer panels (16-row
// groups of 4-byte k-groups, gemm_isa.h) are already AMX's B-tile layout, so one tdpbsud computes
// a 16-row × 16-column × sub-block product; AVX-512 folds it with the scales exactly like the
// scalar reference, so results are bit-identical to it and to the VNNI kernels. Compiled with
// AVX-512 + AMX flags; includes only plain-data headers (see isa_kernel.h for why).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/amx_tiles.h"
#include "cpu/gemm_isa.h"
#include "cpu/gemm_quantize_avx512.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

constexpr int kRows = kAvx512Panels.rows;  // weight rows per group: one output column each
constexpr int kTileRows = kAmxTileRows;    // activation rows per A tile
static_assert(kRows == 16 && kAvx512Panels.k_group == 4 && kTileRows == 16);

// Tile registers: C (16 × 16 int32) in 0 / 1, A (16 activation rows × sub bytes) in 2 / 3, B (sub/4
// k-groups × 16 rows × 4 bytes) in 4 / 5: two of each, so the product of the next sub-block runs on
// the AMX unit while AVX-512 folds the previous one.
void configure_int8_tiles(int sub) {
  const auto a_bytes = static_cast<uint16_t>(sub);
  const auto b_rows = static_cast<uint8_t>(sub / 4);
  const uint8_t rows[6] = {kTileRows, kTileRows, kTileRows, kTileRows, b_rows, b_rows};
  const uint16_t colsb[6] = {64, 64, a_bytes, a_bytes, 64, 64};
  configure_tiles(6, rows, colsb);
}

// C = A · B for one sub-block: A's rows are `sub` bytes apart, B's k-group rows 64. Even sub-blocks
// in tiles 0 / 2 / 4, odd in 1 / 3 / 5 (GCC's tile intrinsics paste the register number into the
// assembly: literals only).
inline void issue_even(const uint8_t* a, int sub, const uint8_t* b) {
  _tile_zero(0);
  _tile_loadd(2, a, sub);
  _tile_loadd(4, b, 64);
  _tile_dpbsud(0, 2, 4);
}

inline void issue_odd(const uint8_t* a, int sub, const uint8_t* b) {
  _tile_zero(1);
  _tile_loadd(3, a, sub);
  _tile_loadd(5, b, 64);
  _tile_dpbsud(1, 3, 5);
}

// Folds one sub-block's integer sums (16 rows of 16 int32 at c) into the float accumulators in the
// scalar reference's order: isum = Σq·a − offset·Σa, acc = fma(isum, scale·ad, acc), then
// fma(min, ad·Σa, acc).
template <bool HasMin>
inline void fold(const int32_t* c, const int32_t* corr, const float* ascale, const float* amin, __m512 scale,
                 __m512 min, __m512 (&facc)[kTileRows]) {
  for (int i = 0; i < kTileRows; ++i) {
    const __m512i isum = _mm512_add_epi32(_mm512_load_si512(c + 16 * i), _mm512_set1_epi32(corr[i]));
    facc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(scale, _mm512_set1_ps(ascale[i])), facc[i]);
    if constexpr (HasMin) facc[i] = _mm512_fmadd_ps(min, _mm512_set1_ps(amin[i]), facc[i]);
  }
}

// Sub-blocks unpacked per call: a piece of the k range whose nibble panels (two groups) are
// expanded to bytes into a stack buffer once and reused by every row tile.
constexpr int64_t kPieceBytes = 512 * kRows;  // 512 k of one group's bytes: 8 KiB

template <int Sub, bool HasMin, bool Nibbles>
void amx_kernel(const GemmActivations& acts, const GemmTile& tile) {
  constexpr int64_t kQBytes = kRows * Sub / (Nibbles ? 2 : 1);
  constexpr int64_t kSubBytes = kQBytes + 4 * kRows * (HasMin ? 2 : 1);
  constexpr int64_t kBBytes = kRows * Sub;  // one group's sub-block as bytes (a B tile)
  constexpr int64_t kPieceSb = kPieceBytes / kBBytes;
  alignas(64) uint8_t unpacked[2][kPieceBytes];
  alignas(64) int32_t sums[2][kTileRows * 16];  // C tiles 0 and 1 in memory
  __mmask16 valid[2];
  for (int g = 0; g < 2; ++g) valid[g] = lanes_below_16(tile.n_valid - 16 * g);
  const int64_t n_tiles = (tile.m + kTileRows - 1) / kTileRows;
  const int64_t piece_sb = Nibbles ? kPieceSb : tile.n_sb;  // byte panels are read in place
  configure_int8_tiles(Sub);
  for (int64_t p0 = 0; p0 < tile.n_sb; p0 += piece_sb) {
    const int64_t n = tile.n_sb - p0 < piece_sb ? tile.n_sb - p0 : piece_sb;
    if constexpr (Nibbles) {
      // Low nibbles hold k-groups [0, Sub/8), high nibbles [Sub/8, Sub/4): B-tile rows in that order.
      const __m512i low4 = _mm512_set1_epi8(0x0F);
      for (int64_t g = 0; g < tile.n_groups; ++g) {
        for (int64_t b = 0; b < n; ++b) {
          const uint8_t* src = tile.panel + g * tile.group_stride + (p0 + b) * kSubBytes;
          uint8_t* dst = unpacked[g] + b * kBBytes;
          for (int j = 0; j < Sub / 8; ++j) {
            const __m512i v = _mm512_load_si512(src + 64 * j);
            _mm512_store_si512(dst + 64 * j, _mm512_and_si512(v, low4));
            _mm512_store_si512(dst + 64 * (j + Sub / 8), _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
          }
        }
      }
      amx_reads_memory();  // the tile loads below read `unpacked`
    }
    const auto b_tile = [&](int64_t g, int64_t b) -> const uint8_t* {
      if constexpr (Nibbles) return unpacked[g] + b * kBBytes;
      return tile.panel + g * tile.group_stride + (p0 + b) * kSubBytes;
    };
    for (int64_t t = 0; t < n_tiles; ++t) {
      if (p0 == 0) prefetch_next_slice(tile, t, n_tiles);
      const int64_t rows = tile.m - t * kTileRows < kTileRows ? tile.m - t * kTileRows : kTileRows;
      const int64_t cell = (t * acts.n_sub + tile.sb0 + p0) * kTileRows;  // [tile][sub-block][row] of the piece
      const uint8_t* a = static_cast<const uint8_t*>(acts.q) + cell * Sub;
      const float* ascale = acts.scale + cell;
      const int32_t* corr = acts.corr + cell;
      const float* amin = HasMin ? acts.min_scale + cell : nullptr;
      const auto a_tile = [&](int64_t b) { return a + b * kTileRows * Sub; };
      for (int64_t g = 0; g < tile.n_groups; ++g) {
        float* y = tile.y + t * kTileRows * tile.y_stride + 16 * g;
        const bool load = tile.accumulate || p0 > 0;
        __m512 facc[kTileRows];
        for (int i = 0; i < kTileRows; ++i) {
          facc[i] = load && i < rows ? _mm512_maskz_loadu_ps(valid[g], y + i * tile.y_stride) : _mm512_setzero_ps();
        }
        const uint8_t* scales = tile.panel + g * tile.group_stride + p0 * kSubBytes + kQBytes;
        const auto fold_block = [&](int64_t b) {
          const __m512 scale = _mm512_load_ps(scales + b * kSubBytes);
          const __m512 min = HasMin ? _mm512_load_ps(scales + b * kSubBytes + 4 * kRows) : _mm512_setzero_ps();
          const int64_t at = b * kTileRows;
          fold<HasMin>(sums[b % 2], corr + at, ascale + at, HasMin ? amin + at : nullptr, scale, min, facc);
        };
        // A three-stage pipeline over the sub-blocks: while AVX-512 folds sub-block b − 1, the AMX
        // unit computes b + 1 and sub-block b's sums drain from tile to memory (even sub-blocks in
        // C tile 0 and sums[0], odd in 1). Waiting on a product or a tile store just issued stalls.
        issue_even(a_tile(0), Sub, b_tile(g, 0));
        for (int64_t b = 0; b < n; b += 2) {
          if (b + 1 < n) issue_odd(a_tile(b + 1), Sub, b_tile(g, b + 1));
          _tile_stored(0, sums[0], 64);
          if (b > 0) fold_block(b - 1);
          if (b + 1 >= n) {
            fold_block(b);
            break;
          }
          if (b + 2 < n) issue_even(a_tile(b + 2), Sub, b_tile(g, b + 2));
          _tile_stored(1, sums[1], 64);
          fold_block(b);
          if (b + 2 >= n) fold_block(b + 1);
        }
        for (int i = 0; i < rows; ++i) _mm512_mask_storeu_ps(y + i * tile.y_stride, valid[g], facc[i]);
      }
    }
  }
  _tile_release();
}

template <int Sub>
void kernel_for(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile) {
  if (format.nibbles) {
    return format.has_min ? amx_kernel<Sub, true, true>(acts, tile) : amx_kernel<Sub, false, true>(acts, tile);
  }
  return format.has_min ? amx_kernel<Sub, true, false>(acts, tile) : amx_kernel<Sub, false, false>(acts, tile);
}

}  // namespace

void gemm_amx_kernel(const PanelFormat& format, const GemmActivations& acts, const GemmTile& tile) {
  return format.sub == 32 ? kernel_for<32>(format, acts, tile) : kernel_for<16>(format, acts, tile);
}

// Rows [r0, r1) of x per sub-block into 16-row tiles whose rows hold their sub-block's bytes
// contiguously (ActLayout{16, sub, 1}: A-tile rows), with the reference's rounding and scales.
void gemm_amx_quantize(const PanelFormat& format, const float* x, int64_t k, int64_t r0, int64_t r1,
                       const GemmActivations& acts) {
  quantize_rows(format, x, k, r0, r1, kTileRows, acts, [&](int64_t cell, int64_t lane, int half, __m128i bytes) {
    uint8_t* q = static_cast<uint8_t*>(acts.q) + (cell + lane) * format.sub + 16 * half;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), bytes);
  });
}

}  // namespace ember
