// The AMX tile configuration shared by the AMX translation units (gemm_amx.cpp,
// gemm_amx_f16.cpp): internal linkage only, included only by units compiled with AMX flags (see
// isa_kernel.h for why).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ember {
namespace {

// ldtilecfg's 64-byte operand (palette 1): per tile register its rows and bytes per row.
struct TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// GCC 12's tile-load intrinsics are volatile asm without a memory clobber: a compiler barrier
// after filling a buffer that only tile loads read keeps those stores from being dropped or sunk.
inline void amx_reads_memory() { asm volatile("" ::: "memory"); }

// Configures tile registers [0, n) with rows[i] rows of colsb[i] bytes (the rest unused). Tile
// configuration is per thread: every kernel call configures, and releases when done.
inline void configure_tiles(int n, const uint8_t* rows, const uint16_t* colsb) {
  alignas(64) TileConfig config;
  std::memset(&config, 0, sizeof config);
  config.palette_id = 1;
  for (int t = 0; t < n; ++t) config.rows[t] = rows[t], config.colsb[t] = colsb[t];
  amx_reads_memory();
  _tile_loadconfig(&config);
}

}  // namespace
}  // namespace ember
