// Helpers shared by the reference quantizers (rounding, extremes), with ggml's exact semantics.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ember {

// Sub-blocks whose largest magnitude is below this quantize to zero (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round half to even by adding 1.5 * 2^23 and reading the mantissa, as ggml does (valid for
// |v| < 2^22; the scale searches never go beyond that for finite input).
inline int nearest_int(float v) noexcept {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// ggml's `(int8_t)(v)` / `(uint8_t)(v)` truncations made defined: for normal input v lies well
// inside (lo - 1, hi + 1); only NaN/Inf (non-finite input, or 1/scale overflowing on denormal
// blocks) fall outside, and give 0 as x86's cvttss2si + byte truncation does in llama.cpp.
inline int trunc_or_zero(float v, float lo, float hi) noexcept {
  return v > lo - 1.0f && v < hi + 1.0f ? static_cast<int>(v) : 0;
}

// `(int8_t)(v)` as ggml writes it, defined for every input.
inline int trunc_to_int8(float v) noexcept { return trunc_or_zero(v, -128.0f, 127.0f); }

// roundf() then an int8 conversion, defined for every input (out of range or NaN gives 0).
inline int round_or_zero(float v) noexcept {
  const float r = std::round(v);
  return r >= -128.0f && r <= 127.0f ? static_cast<int>(r) : 0;
}

// The value of largest magnitude, with its sign (the first one on ties).
inline float signed_absmax(const float* x, int n) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

}  // namespace ember
