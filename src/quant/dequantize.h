// Reference dequantization, one function per block format: `n` elements (a multiple of the block
// size) from packed blocks at `src` to floats at `y`. These are the spec the SIMD kernels match.
#pragma once

#include <cstdint>

namespace ember {

// Converts `n` elements (a multiple of the block size) of packed blocks to floats.
using DequantizeRowFn = void (*)(const void* src, float* y, int64_t n);

void dequantize_row_f32(const void* src, float* y, int64_t n);
void dequantize_row_f16(const void* src, float* y, int64_t n);
void dequantize_row_bf16(const void* src, float* y, int64_t n);
void dequantize_row_q4_0(const void* src, float* y, int64_t n);
void dequantize_row_q4_1(const void* src, float* y, int64_t n);
void dequantize_row_q5_0(const void* src, float* y, int64_t n);
void dequantize_row_q5_1(const void* src, float* y, int64_t n);
void dequantize_row_q8_0(const void* src, float* y, int64_t n);
void dequantize_row_q8_1(const void* src, float* y, int64_t n);
void dequantize_row_q2_k(const void* src, float* y, int64_t n);
void dequantize_row_q3_k(const void* src, float* y, int64_t n);
void dequantize_row_q4_k(const void* src, float* y, int64_t n);
void dequantize_row_q5_k(const void* src, float* y, int64_t n);
void dequantize_row_q6_k(const void* src, float* y, int64_t n);
void dequantize_row_q8_k(const void* src, float* y, int64_t n);
void dequantize_row_iq4_nl(const void* src, float* y, int64_t n);
void dequantize_row_iq4_xs(const void* src, float* y, int64_t n);

}  // namespace ember
