// Quantized matrix multiplication Y = X · Wᵀ on the CPU kernel tables. The GEMV path serves 1..8
// activation rows (decode, batched decode, speculative verification): activations are quantized
// once per row to the weight type's dot type, then output rows are split across threads, each
// weight row read once and dotted with every activation row while it is in L1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "cpu/cpu_kernels.h"

namespace ember {

// Weights: `n_out` rows of `k` elements of `wtype`, packed blocks, rows contiguous.
struct WeightMatrix {
  const void* data;
  DType dtype;
  int64_t n_out;
  int64_t k;
};

// Per-call scratch owned by the caller (sized on first use, then reused: no allocation per step).
struct MatmulScratch {
  std::vector<std::byte> activations;
};

// Y (m rows of n_out floats) = X (m rows of k floats) · Wᵀ. Throws Error(kInvalidArgument) when k
// is not a multiple of the blocks involved or the type has no kernels.
void matmul(const CpuKernels& kernels, ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t m, float* y,
            MatmulScratch& scratch);

// Several matrices of the same k applied to the same X (q / k / v, gate / up): X quantized once per
// dot type, and every matrix's output rows in one parallel job (one dispatch and one barrier
// instead of one per matrix). ys[j] is m rows of ws[j].n_out floats. Same errors as matmul().
void matmul_many(const CpuKernels& kernels, ThreadPool& pool, std::span<const WeightMatrix> ws, const float* x,
                 int64_t m, std::span<float* const> ys, MatmulScratch& scratch);

}  // namespace ember
