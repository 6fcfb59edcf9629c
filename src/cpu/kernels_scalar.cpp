// The scalar kernel table: the reference kernels of src/quant, the spec every SIMD kernel is
// tested against.
#include "cpu/cpu_kernels.h"

namespace ember {

void fill_scalar_kernels(CpuKernels& table) {
  for (const QuantTraits& t : quant_traits_table()) {
    const auto i = static_cast<size_t>(t.dtype);
    table.quantize_row[i] = t.from_float;
    table.vec_dot[i] = t.vec_dot;
  }
}

}  // namespace ember
