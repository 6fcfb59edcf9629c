// IsaKernel: one entry an ISA translation unit exports. This header is all such a unit may share
// with the rest of the tree besides block layouts: anything inline it includes could be emitted
// there with AVX instructions and picked by the linker for every caller (an ODR hazard that would
// crash scalar code on older CPUs), so it holds plain data and function-pointer types only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

struct IsaKernel {
  uint32_t dtype;  // DType id
  // Activation row -> blocks of this (dot) type; nullptr to keep the scalar one.
  void (*quantize_row)(const float* x, void* dst, int64_t n, const float* importance);
  // Weight row of this type . activation row of its vec_dot_type; nullptr to keep the scalar one.
  float (*vec_dot)(int64_t n, const void* x, const void* y);
  // The same weight row . two activation rows (out[0], out[1]), each bit for bit vec_dot's: the
  // block is unpacked once for both (the GEMV of 2-3 row steps); nullptr: two vec_dot calls.
  void (*vec_dot_2)(int64_t n, const void* x, const void* y0, const void* y1, float* out) = nullptr;
};

// The entries of each ISA translation unit, `*count` of them. An ISA's table applies its units in
// this order (avx2 ones first, then for avx512 its own), later entries overriding earlier ones.
const IsaKernel* avx2_kernels(size_t* count);            // kernels_avx2.cpp: Q8_0/Q8_1 acts, Q8_0, Q4_0
const IsaKernel* avx2_legacy2_kernels(size_t* count);    // kernels_avx2_legacy2.cpp: other 32-elt, F32, F16, BF16
const IsaKernel* avx2_k_kernels(size_t* count);          // kernels_avx2_k.cpp: Q8_K acts, K-quants, IQ4_XS
const IsaKernel* avx512_kernels(size_t* count);          // kernels_avx512.cpp: F32, F16, BF16
const IsaKernel* avx512_legacy2_kernels(size_t* count);  // kernels_avx512_legacy2.cpp: 32-element formats
const IsaKernel* avx512_k_kernels(size_t* count);        // kernels_avx512_k.cpp: K-quants, IQ4_XS

}  // namespace ember
