// Block layouts of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1), bit-identical to ggml.
#pragma once

#include <cstdint>
#include <cstring>

namespace ember {

inline constexpr int kQK4_0 = 32, kQK4_1 = 32, kQK5_0 = 32, kQK5_1 = 32, kQK8_0 = 32, kQK8_1 = 32;

// f16 fields are stored as raw uint16_t bits; convert with fp16_to_fp32.
struct BlockQ4_0 {
  uint16_t d;              // scale
  uint8_t qs[kQK4_0 / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;  // scale
  uint16_t m;  // min
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // 5th bit of element j at bit j (little-endian uint32)
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ8_1 {
  uint16_t d;  // scale
  uint16_t s;  // d * sum(qs)
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36);

// The 5th bits of a Q5 block's 32 elements (qh read as little-endian uint32): bit j for element j.
inline uint32_t q5_high_bits(const uint8_t (&qh)[4]) noexcept {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof bits);
  return bits;
}

}  // namespace ember
