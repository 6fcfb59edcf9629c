// Block layouts of the non-linear 4-bit formats (IQ4_NL, IQ4_XS), bit-identical to ggml.
#pragma once

#include <cstdint>

#include "quant/block_k.h"

namespace ember {

inline constexpr int kQK4_NL = 32;

// The 16 levels both formats index with their 4-bit codes.
inline constexpr int8_t kIQ4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct BlockIQ4_NL {
  uint16_t d;               // f16
  uint8_t qs[kQK4_NL / 2];  // same nibble order as Q4_0
};
static_assert(sizeof(BlockIQ4_NL) == 18);

struct BlockIQ4_XS {
  uint16_t d;                    // f16
  uint16_t scales_h;             // high 2 bits of the 8 six-bit sub-block scales
  uint8_t scales_l[kQK_K / 64];  // low 4 bits, two per byte
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

}  // namespace ember
