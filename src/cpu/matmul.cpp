// matmul: activation quantization, then output rows in parallel tiles over the vec_dot kernels.
#include "cpu/matmul.h"

#include <algorithm>

#include "core/check.h"

namespace ember {

void matmul(const CpuKernels& kernels, ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t m, float* y,
            MatmulScratch& scratch) {
  const VecDotFn dot = kernels.vec_dot_for(w.dtype);
  const QuantTraits* traits = find_quant_traits(w.dtype);
  if (dot == nullptr || traits == nullptr) {
    fail(ErrorCode::kInvalidArgument, "matmul: no kernels for weight type {}", dtype_name(w.dtype));
  }
  const DType act_type = traits->vec_dot_type;
  const auto w_row_bytes = dtype_bytes_for(w.dtype, static_cast<uint64_t>(w.k));
  const auto a_row_bytes = dtype_bytes_for(act_type, static_cast<uint64_t>(w.k));
  if (!w_row_bytes || !a_row_bytes || w.k % dtype_traits(w.dtype).block_size != 0 ||
      w.k % dtype_traits(act_type).block_size != 0) {
    fail(ErrorCode::kInvalidArgument, "matmul: rows of {} do not fit {} / {} blocks", w.k, dtype_name(w.dtype),
         dtype_name(act_type));
  }
  if (m <= 0 || w.n_out <= 0) return;

  // Activations, one quantized row each (F32/F16/BF16 weights use their own type as dot type).
  scratch.activations.resize(static_cast<size_t>(m) * *a_row_bytes);
  const QuantizeRowFn quantize_row = kernels.quantize_row_for(act_type);
  pool.parallel_for(m, [&](int64_t i, int) {
    quantize_row(x + i * w.k, scratch.activations.data() + static_cast<size_t>(i) * *a_row_bytes, w.k, nullptr);
  });

  // Output rows in tiles: enough tiles to balance the threads, each big enough to amortize the
  // dispatch. Every weight row is read once and used for all m activation rows.
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(64, w.n_out / (8 * pool.n_threads())));
  const int64_t n_tiles = (w.n_out + tile - 1) / tile;
  const auto* weights = static_cast<const std::byte*>(w.data);
  const std::byte* acts = scratch.activations.data();
  pool.parallel_for(n_tiles, [&](int64_t t, int) {
    const int64_t end = std::min(w.n_out, (t + 1) * tile);
    for (int64_t r = t * tile; r < end; ++r) {
      const std::byte* w_row = weights + static_cast<size_t>(r) * *w_row_bytes;
      for (int64_t i = 0; i < m; ++i)
        y[i * w.n_out + r] = dot(w.k, w_row, acts + static_cast<size_t>(i) * *a_row_bytes);
    }
  });
}

}  // namespace ember
