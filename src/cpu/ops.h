// CpuOps: the CPU backend's elementwise and row ops (norms, RoPE, softmax, activations, GLUs,
// add/mul/scale, get_rows, argmax, top-k), one table per ISA like the matmul kernels (DESIGN.md §4).
// The signatures, shapes and semantics of every entry are documented in cpu/ops_isa.h.
#pragma once

#include <array>

#include "cpu/cpu_kernels.h"
#include "cpu/ops_isa.h"

namespace ember {

struct CpuOps : OpsFns {
  Isa isa = Isa::kScalar;
  // Row dequantizers by DType id: QuantTraits::to_float, replaced by the ISA's bit-identical SIMD
  // version where it has one (F16, BF16, Q8_0, Q4_0); nullptr for types without kernels.
  std::array<ToFloatFn, kDTypeSlots> to_float{};

  ToFloatFn to_float_for(DType t) const noexcept { return to_float[static_cast<size_t>(t)]; }
};

// The ops table of `isa`, built on first use: the scalar reference entries (the spec), overridden
// by avx2's, then (for avx512) by avx512's. Precondition: isa_supported(isa, cpu_features()); pick
// `isa` with select_isa() (EMBER_ISA) and test with supported_isas().
const CpuOps& cpu_ops(Isa isa);

// Gathers rows of an embedding matrix: dst[i] = to_float(src row ids[i]) for i < n_ids. src is
// [n_src_rows] rows of n_cols elements of `type` (dtype_bytes_for(type, n_cols) bytes each, at the
// type's alignment); dst is [n_ids][n_cols] floats. Preconditions (EMBER_CHECK): the table has a
// to_float for `type`, n_cols is whole blocks, every id is in [0, n_src_rows).
void get_rows(const CpuOps& ops, DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids,
              int64_t n_ids, float* dst);

}  // namespace ember
