// Reference dot products: `n` weights (packed blocks at x) with `n` activations already quantized
// to the weight type's vec_dot_type (at y). The spec for the SIMD matmul kernels.
#pragma once

#include <cstdint>

namespace ember {

// Dot product of n weights at x with n activations (of the weight type's vec_dot_type) at y.
using VecDotFn = float (*)(int64_t n, const void* x, const void* y);

float vec_dot_f32(int64_t n, const void* x, const void* y);
float vec_dot_f16(int64_t n, const void* x, const void* y);
float vec_dot_bf16(int64_t n, const void* x, const void* y);
float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y);
float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y);
float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y);
float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y);
float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y);
float vec_dot_iq4_nl_q8_0(int64_t n, const void* x, const void* y);
float vec_dot_q2_k_q8_k(int64_t n, const void* x, const void* y);
float vec_dot_q3_k_q8_k(int64_t n, const void* x, const void* y);
float vec_dot_q4_k_q8_k(int64_t n, const void* x, const void* y);
float vec_dot_q5_k_q8_k(int64_t n, const void* x, const void* y);
float vec_dot_q6_k_q8_k(int64_t n, const void* x, const void* y);
float vec_dot_iq4_xs_q8_k(int64_t n, const void* x, const void* y);

}  // namespace ember
