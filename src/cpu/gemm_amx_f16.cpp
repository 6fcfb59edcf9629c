// F16 weights on AMX-BF16 tiles: each weight and activation split into two bf16 terms (hi, and lo =
// the rest), and Σ w·x computed as the four products of (w_hi + w_lo)(x_hi + x_lo) in the tiles' fp32
// accumulators (each product of two bf16 is exact in fp32). The weights split exactly (an f16 has
// 11 significant bits: hi keeps 8, lo the other 3); the activations keep 16 of their 24 significant
// bits (x_hi = x rounded to bf16, x_lo = the rest rounded to bf16: |x − x_hi − x_lo| ≤ 2^-17 |x|).
// So each product is within ~2^-17 ≈ 7.6e-6 of exact, the accumulation in fp32 as for the FMA kernel
// (llama.cpp's F16 path rounds the activations to f16: ~2.4e-4). Values beyond bf16's range (|x| ≥
// ~3.39e38) or infinite give NaN where the FMA kernel gives ±inf, and the tile instructions flush
// subnormal bf16 inputs: neither occurs in real activations. Compiled with AVX-512 + AMX flags;
// includes only plain-data headers.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/amx_tiles.h"
#include "cpu/gemm_isa.h"
#include "cpu/gemm_simd.h"

namespace ember {
namespace {

constexpr int kRows = kF16Panels.rows;  // weight rows per group: one output column each
constexpr int kTileRows = kAmxTileRows;
constexpr int kSub = 32;                              // k per sub-block (a tile row: 32 bf16)
constexpr int64_t kTileBytes = kTileRows * kSub * 2;  // one 16 × 32 bf16 tile: 1 KiB
constexpr int64_t kPanelSubBytes = kSub * kRows * 2;  // one group's F16 sub-block: [32 k][16 rows]
static_assert(kRows == 16 && kF16Panels.k_group == 1 && kAmxF16Acts.elem_bytes == 4);

// Tile registers, all 16 rows × 64 bytes: C (16 × 16 fp32) in 0-3 for a 2 × 2 block of two row
// tiles × two groups (four independent accumulation chains keep the AMX unit busy); the two row
// tiles' activations (hi, then lo) in 4 / 5; the two groups' weights (hi, lo, hi again) in 6 / 7.
void configure_bf16_tiles() {
  const uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
  const uint16_t colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
  configure_tiles(8, rows, colsb);
}

// C0..C3 += A(4 / 5) · B(6 / 7): the 2 × 2 block's four products.
inline void block_products() {
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

// 16 floats → bf16 hi (round to nearest even) and lo = bf16(x − hi) (x − hi is exact in fp32).
inline void split_bf16(__m512 x, __m256i& hi, __m256i& lo) {
  hi = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
  const __m512 hi_f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
  lo = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(x, hi_f)));
}

// One group's F16 sub-block ([32 k][16 rows]) → two B tiles ([16 k-pairs][16 rows][2] bf16), hi and
// lo. Weights split by truncation: hi = the top 16 bits of the f32, lo = w − hi, exact (an f16 has 11
// significant bits, hi keeps 8) and so a bf16 with zero low bits. In 32-bit lanes, the bf16 of an
// even k goes in the low half and that of the next k in the high half: no permutes needed.
inline void split_weights(const uint8_t* panel, uint8_t* hi_tile, uint8_t* lo_tile) {
  const __m512i top = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  for (int p = 0; p < kSub / 2; ++p) {
    const __m512i pair = _mm512_load_si512(panel + 64 * p);  // k = 2p, then k = 2p + 1, 16 rows each
    const __m512 even = _mm512_cvtph_ps(_mm512_castsi512_si256(pair));
    const __m512 odd = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(pair, 1));
    const __m512i even_hi = _mm512_and_si512(_mm512_castps_si512(even), top);
    const __m512i odd_hi = _mm512_and_si512(_mm512_castps_si512(odd), top);
    const __m512i even_lo = _mm512_castps_si512(_mm512_sub_ps(even, _mm512_castsi512_ps(even_hi)));
    const __m512i odd_lo = _mm512_castps_si512(_mm512_sub_ps(odd, _mm512_castsi512_ps(odd_hi)));
    _mm512_store_si512(hi_tile + 64 * p, _mm512_or_si512(_mm512_srli_epi32(even_hi, 16), odd_hi));
    _mm512_store_si512(lo_tile + 64 * p, _mm512_or_si512(_mm512_srli_epi32(even_lo, 16), odd_lo));
  }
}

// Sub-blocks per piece: the weights of two groups split into bf16 tiles once per call and piece
// (8 sub-blocks × 2 groups × hi / lo = 32 KiB: the driver's float k-chunk, or a piece of a task's
// whole k when its rows are few) and reused by every row tile.
constexpr int64_t kPieceSb = 8;

}  // namespace

void gemm_amx_f16_kernel(PanelKind, const GemmActivations& acts, const GemmTile& tile) {
  alignas(64) uint8_t weights[2][kPieceSb][2][kTileBytes];  // [group][sub-block][hi, lo]
  alignas(64) float sums[4][kTileRows * 16];                // C tiles 0-3: [row tile][group]
  __mmask16 valid[2];
  for (int g = 0; g < 2; ++g) valid[g] = lanes_below_16(tile.n_valid - 16 * g);
  const int64_t n_tiles = (tile.m + kTileRows - 1) / kTileRows;
  // A single group reads its own weights twice (the second group's products are discarded).
  const int64_t g1 = tile.n_groups > 1 ? 1 : 0;
  configure_bf16_tiles();
  for (int64_t p0 = 0; p0 < tile.n_sb; p0 += kPieceSb) {
    const int64_t n = tile.n_sb - p0 < kPieceSb ? tile.n_sb - p0 : kPieceSb;
    for (int64_t g = 0; g < tile.n_groups; ++g) {
      for (int64_t b = 0; b < n; ++b) {
        split_weights(tile.panel + g * tile.group_stride + (p0 + b) * kPanelSubBytes, weights[g][b][0],
                      weights[g][b][1]);
      }
    }
    amx_reads_memory();  // the tile loads below read `weights`
    // Row tiles in pairs (an odd last one pairs with itself; its copy's products are discarded).
    for (int64_t t0 = 0; t0 < n_tiles; t0 += 2) {
      if (p0 == 0) prefetch_next_slice(tile, t0 / 2, (n_tiles + 1) / 2);
      const int64_t ts[2] = {t0, t0 + 1 < n_tiles ? t0 + 1 : t0};
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t b = 0; b < n; ++b) {
        // [tile][sub-block] cells of 2 KiB: the 16 rows' hi values, then their lo values.
        const auto cell = [&](int h) {
          return static_cast<const uint8_t*>(acts.q) + (ts[h] * acts.n_sub + tile.sb0 + p0 + b) * 2 * kTileBytes;
        };
        const uint8_t* a0 = cell(0);
        const uint8_t* a1 = cell(1);
        // (w_hi + w_lo)(x_hi + x_lo) in four products over the same 10 tile loads per sub-block.
        _tile_loadd(4, a0, 64);  // x_hi · w_hi
        _tile_loadd(5, a1, 64);
        _tile_loadd(6, weights[0][b][0], 64);
        _tile_loadd(7, weights[g1][b][0], 64);
        block_products();
        _tile_loadd(6, weights[0][b][1], 64);  // x_hi · w_lo
        _tile_loadd(7, weights[g1][b][1], 64);
        block_products();
        _tile_loadd(4, a0 + kTileBytes, 64);  // x_lo · w_lo
        _tile_loadd(5, a1 + kTileBytes, 64);
        block_products();
        _tile_loadd(6, weights[0][b][0], 64);  // x_lo · w_hi
        _tile_loadd(7, weights[g1][b][0], 64);
        block_products();
      }
      _tile_stored(0, sums[0], 64);
      _tile_stored(1, sums[1], 64);
      _tile_stored(2, sums[2], 64);
      _tile_stored(3, sums[3], 64);
      const bool add = tile.accumulate || p0 > 0;
      for (int h = 0; h < 2 && (h == 0 || ts[1] != ts[0]); ++h) {
        const int64_t rows = tile.m - ts[h] * kTileRows < kTileRows ? tile.m - ts[h] * kTileRows : kTileRows;
        for (int64_t g = 0; g < tile.n_groups; ++g) {
          float* y = tile.y + ts[h] * kTileRows * tile.y_stride + 16 * g;
          const float* c = sums[2 * h + g];
          for (int64_t i = 0; i < rows; ++i) {
            __m512 v = _mm512_load_ps(c + 16 * i);
            if (add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(valid[g], y + i * tile.y_stride), v);
            _mm512_mask_storeu_ps(y + i * tile.y_stride, valid[g], v);
          }
        }
      }
    }
  }
  _tile_release();
}

// Rows [r0, r1) of x into 16-row tiles per 32-k sub-block: the rows' bf16 hi values (A-tile rows of
// 32), then their lo values (ActLayout kAmxF16Acts: 4 bytes per element).
void gemm_amx_f16_acts(PanelKind, const float* x, int64_t k, int64_t r0, int64_t r1, void* q) {
  const int64_t n_sub = k / kSub;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r / kTileRows, lane = r % kTileRows;
    for (int64_t s = 0; s < n_sub; ++s) {
      uint8_t* cell = static_cast<uint8_t*>(q) + (t * n_sub + s) * 2 * kTileBytes + lane * 64;
      for (int half = 0; half < 2; ++half) {
        __m256i hi, lo;
        split_bf16(_mm512_loadu_ps(x + r * k + s * kSub + 16 * half), hi, lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(cell + 32 * half), hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(cell + kTileBytes + 32 * half), lo);
      }
    }
  }
}

}  // namespace ember
