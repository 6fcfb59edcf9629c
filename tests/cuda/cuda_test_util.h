// Helpers shared by the CUDA tests: skip (with the reason) where no GPU is visible, device copies,
// the error measure every kernel is judged by, and the scalar CPU reference.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_test_util.h"
#include "cuda/device_buffer.h"
#include "ember/dtype.h"

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

// A DType-parameterized test's name: the type's GGUF name.
inline std::string dtype_param_name(const ::testing::TestParamInfo<DType>& type) {
  return std::string(dtype_name(type.param));
}

// The reference the kernels are checked against: the scalar CPU kernels, one thread.
inline CpuBackend& scalar_cpu() {
  static CpuBackend backend(cpu_test::backend_options(1, Isa::kScalar));
  return backend;
}

// Waits for the device (the tests launch on the default stream) and fails on a kernel fault.
inline void sync_device() { ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess); }

}  // namespace ember::cuda_test
