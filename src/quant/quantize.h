// Reference quantization, one function per block format: `n` floats (a multiple of the block size)
// to packed blocks at `dst`. Round-to-nearest algorithms of ggml without importance weights.
#pragma once

#include <cstdint>

namespace ember {

void quantize_row_f32(const float* x, void* dst, int64_t n);
void quantize_row_f16(const float* x, void* dst, int64_t n);
void quantize_row_bf16(const float* x, void* dst, int64_t n);
void quantize_row_q4_0(const float* x, void* dst, int64_t n);
void quantize_row_q4_1(const float* x, void* dst, int64_t n);
void quantize_row_q5_0(const float* x, void* dst, int64_t n);
void quantize_row_q5_1(const float* x, void* dst, int64_t n);
void quantize_row_q8_0(const float* x, void* dst, int64_t n);
void quantize_row_q8_1(const float* x, void* dst, int64_t n);
void quantize_row_q8_k(const float* x, void* dst, int64_t n);
void quantize_row_q2_k(const float* x, void* dst, int64_t n);
void quantize_row_q3_k(const float* x, void* dst, int64_t n);
void quantize_row_q4_k(const float* x, void* dst, int64_t n);
void quantize_row_q5_k(const float* x, void* dst, int64_t n);
void quantize_row_q6_k(const float* x, void* dst, int64_t n);
void quantize_row_iq4_nl(const float* x, void* dst, int64_t n);
void quantize_row_iq4_xs(const float* x, void* dst, int64_t n);

}  // namespace ember
