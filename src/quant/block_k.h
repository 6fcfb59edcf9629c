// Block layouts of the 256-element "K" super-block formats (Q2_K ... Q8_K), bit-identical to ggml.
#pragma once

#include <cstdint>

namespace ember {

inline constexpr int kQK_K = 256;
inline constexpr int kKScaleBytes = 12;  // 8 six-bit scales + 8 six-bit mins, packed

struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // per 16 elements: scale in the low nibble, min in the high nibble
  uint8_t qs[kQK_K / 4];       // 2-bit quants
  uint16_t d;                  // super-block scale of the scales (f16)
  uint16_t dmin;               // super-block scale of the mins (f16)
};
static_assert(sizeof(BlockQ2_K) == 84);

struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];  // high bit of each quant
  uint8_t qs[kQK_K / 4];     // low 2 bits
  uint8_t scales[12];        // 16 six-bit scales, packed
  uint16_t d;                // super-block scale (f16)
};
static_assert(sizeof(BlockQ3_K) == 110);

struct BlockQ4_K {
  uint16_t d;                    // f16
  uint16_t dmin;                 // f16
  uint8_t scales[kKScaleBytes];  // 8 scales + 8 mins, 6 bits each
  uint8_t qs[kQK_K / 2];         // 4-bit quants
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q4_K/Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. Sub-blocks
// 0-3 keep them in the low 6 bits of bytes j and j+4; 4-7 split them into a nibble of byte j+4
// and the top 2 bits of bytes j-4 and j.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) noexcept {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];  // 5th bits
  uint8_t qs[kQK_K / 2];  // low 4 bits
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 8-bit scales
  uint16_t d;                 // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// The activation-side type of the K-quant dot products (never stored in model files).
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of each group of 16 quants
};
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace ember
