// Helpers shared by the reference quantizers (rounding, extremes), with ggml's exact semantics.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ember {

// Sub-blocks whose largest magnitude is below this quantize to zero (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round half to even by adding 1.5 * 2^23 and reading the mantissa (valid for |v| < 2^22); the
// quantizers use this instead of lrintf so that results never depend on the rounding mode.
inline int nearest_int(float v) noexcept {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
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
