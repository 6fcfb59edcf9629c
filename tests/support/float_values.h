// Float values tests feed in: the special ones (a masked logit, a broken model's) and uniform
// random draws that are never zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace ember::test {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// n values uniform in offset ± sigma·√3, never exactly zero (a zero would hide a missed element).
// Cheaper than a normal distribution (the attention tests draw millions). With offset 0 no draw
// is ever redrawn: the values are (r + 0.5)·unit for an integer r.
inline std::vector<float> uniform_values(size_t n, std::mt19937& rng, float sigma, float offset = 0.0f) {
  std::vector<float> v(n);
  const float unit = sigma * 1.7320508f / 2147483648.0f;
  for (float& x : v) {
    do {
      x = offset + (static_cast<float>(static_cast<int32_t>(rng())) + 0.5f) * unit;
    } while (x == 0.0f);
  }
  return v;
}

}  // namespace ember::test
