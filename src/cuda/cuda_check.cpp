// CUDA runtime error handling (see cuda_check.h).
#include "cuda/cuda_check.h"

#include <cstdio>
#include <cstdlib>

namespace ember::cuda {

void check_status(cudaError_t status, const char* expr, const char* file, int line) {
  if (status == cudaSuccess) return;
  std::fprintf(stderr, "%s:%d: CUDA error %s (%s) in %s\n", file, line, cudaGetErrorName(status),
               cudaGetErrorString(status), expr);
  std::abort();
}

void check_launch(const char* what, const char* file, int line) { check_status(cudaGetLastError(), what, file, line); }

}  // namespace ember::cuda
