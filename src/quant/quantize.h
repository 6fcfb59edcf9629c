// Reference quantization, one function per block format: `n` floats (a multiple of the block size)
// to packed blocks at `dst`, with ggml's algorithms bit for bit.
//
// `importance` is nullptr (ggml's path without an importance matrix: what llama-quantize does
// without --imatrix) or `n` non-negative per-column weights aligned with x (an imatrix row). With
// importance, `n` must be exactly one row: ggml computes per-row statistics (the Q4_0 ... Q5_1
// paths use the mean square of the whole row), and the weighted search favours the columns with
// the most weight. F32/F16/BF16 and Q8_0/Q8_1/Q8_K ignore importance, as ggml does.
#pragma once

#include <cstdint>

namespace ember {

void quantize_row_f32(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_f16(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_bf16(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q4_0(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q4_1(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q5_0(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q5_1(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q8_0(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q8_1(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q8_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q2_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q3_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q4_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q5_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q6_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_iq4_nl(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_iq4_xs(const float* x, void* dst, int64_t n, const float* importance);

}  // namespace ember
