// The special float values the sampler and logit tests feed in (a masked logit, a broken model's).
#pragma once

#include <limits>

namespace ember::test {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace ember::test
