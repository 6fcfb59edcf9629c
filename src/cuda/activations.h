// The GLU activations as device functions, shared by the glu kernels (ops_kernels.cu) and the
// gate/up GEMV that applies them in its store (matmul_kernels.cu), so both compute the same bits.
// Include from .cu files only.
#pragma once

#include <cmath>

namespace ember::cuda {

// x·sigmoid(x); for x << 0 exp overflows to inf and the quotient is -0 (the limit).
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

// gelu tanh approximation 0.5·x·(1 + tanh(u)) written as x·sigmoid(2u), u = √(2/π)(x + 0.044715x³),
// as the CPU's gelu_d (no cancellation for negative x).
__device__ __forceinline__ float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * u));
}

}  // namespace ember::cuda
