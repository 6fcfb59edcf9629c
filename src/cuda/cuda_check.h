// CUDA runtime error handling: a failed allocation is an Error the caller can report
// (kOutOfMemory with the numbers); any other failed runtime call or kernel launch is a broken
// invariant (a bad launch, a fault in a kernel) and aborts with the call, file and line.
#pragma once

#include <cuda_runtime_api.h>

namespace ember::detail {
// core/check.h's, declared here without fmt: fmt 9 does not compile in nvcc's C++20 host pass.
[[noreturn]] void check_failed(const char* condition, const char* file, int line, const char* message) noexcept;
}  // namespace ember::detail

namespace ember::cuda {

// Aborts with "file:line: CUDA error <name> (<string>) in <expr>" unless status is cudaSuccess.
void check_status(cudaError_t status, const char* expr, const char* file, int line);
// Aborts if the last kernel launch on this thread failed (launch configuration, no kernel image
// for this GPU); does not wait for the kernel.
void check_launch(const char* what, const char* file, int line);

}  // namespace ember::cuda

#define EMBER_CUDA_CHECK(expr) ::ember::cuda::check_status((expr), #expr, __FILE__, __LINE__)
#define EMBER_CUDA_CHECK_LAUNCH(what) ::ember::cuda::check_launch((what), __FILE__, __LINE__)

// EMBER_CHECK / EMBER_CHECK_MSG for .cu files (core/check.h cannot be included there).
#define EMBER_CUDA_EXPECT_MSG(cond, msg)                             \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::ember::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
#define EMBER_CUDA_EXPECT(cond) EMBER_CUDA_EXPECT_MSG(cond, "")
