// Helpers shared by the CUDA tests: skip (with the reason) where no GPU is visible, device copies,
// and the error measure every kernel is judged by.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "cuda/device_buffer.h"

// Skips the test with a message where this machine has no usable CUDA device (CI has none; the
// lent GPU machine runs them through scripts/device-check.sh).
#define EMBER_REQUIRE_GPU()                                                                             \
  do {                                                                                                  \
    if (::ember::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device visible: GPU test skipped"; \
  } while (0)

namespace ember::cuda_test {

// ‖got − want‖₂ / ‖want‖₂ in double (0 when both are zero); NaN anywhere gives infinity.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(want[i])) return INFINITY;
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// A device buffer of n floats filled with NaN, so an element a kernel fails to write shows.
inline cuda::DeviceBuffer poisoned_floats(size_t n) {
  const std::vector<float> nan(n, NAN);
  return cuda::DeviceBuffer::from(nan);
}

}  // namespace ember::cuda_test
