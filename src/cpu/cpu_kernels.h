// CPU kernel tables, one per ISA (DESIGN.md §4): `scalar` (the reference, always present), `avx2`
// (AVX2 + FMA + F16C) and `avx512` (F/BW/VL/DQ + VNNI + BF16), each compiled in its own translation
// unit with its own flags. The best table the CPU supports is picked once; EMBER_ISA forces one.
#pragma once

#include <array>
#include <span>
#include <string_view>
#include <vector>

#include "core/cpu_features.h"
#include "quant/quant_traits.h"

namespace ember {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view isa_name(Isa isa) noexcept;

// Indexed by DType id (ids are below 40).
inline constexpr size_t kDTypeSlots = 40;

// One weight row . two activation rows, out[i] = vec_dot(n, x, y_i) bit for bit (isa_kernel.h).
using VecDot2Fn = void (*)(int64_t n, const void* x, const void* y0, const void* y1, float* out);

struct CpuKernels {
  Isa isa = Isa::kScalar;
  // Activation rows to their dot type (Q8_0, Q8_K, ...): `quantize_row[dot type]`.
  std::array<QuantizeRowFn, kDTypeSlots> quantize_row{};
  // One weight row of type `t` with one activation row of t's vec_dot_type: `vec_dot[t]`.
  std::array<VecDotFn, kDTypeSlots> vec_dot{};
  // The same with two activation rows where the ISA has such a kernel (else nullptr; never in the
  // scalar table, whose reference is two vec_dot calls).
  std::array<VecDot2Fn, kDTypeSlots> vec_dot_2{};

  QuantizeRowFn quantize_row_for(DType t) const noexcept { return quantize_row[static_cast<size_t>(t)]; }
  VecDotFn vec_dot_for(DType t) const noexcept { return vec_dot[static_cast<size_t>(t)]; }
  VecDot2Fn vec_dot_2_for(DType t) const noexcept { return vec_dot_2[static_cast<size_t>(t)]; }
};

// Whether `features` can run the table of `isa`.
bool isa_supported(Isa isa, const CpuFeatures& features) noexcept;
// Every ISA this machine supports, scalar first (tests run all of them).
std::vector<Isa> supported_isas();

// The table of `isa`: the scalar entries, overridden by the ISA's own kernels where it has them.
// Precondition: isa_supported(isa, cpu_features()).
const CpuKernels& cpu_kernels(Isa isa);

// EMBER_ISA (scalar|avx2|avx512) when set, else the best supported ISA. Throws
// Error(kInvalidArgument) for an unknown name and Error(kUnsupported) for an ISA this CPU lacks.
Isa select_isa();

// The scalar entries (the reference kernels of src/quant).
void fill_scalar_kernels(CpuKernels& table);

}  // namespace ember
