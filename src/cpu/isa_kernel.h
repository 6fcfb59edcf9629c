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
};

// The entries of each ISA's translation unit, `*count` of them.
const IsaKernel* avx2_kernels(size_t* count);
const IsaKernel* avx512_kernels(size_t* count);

}  // namespace ember
