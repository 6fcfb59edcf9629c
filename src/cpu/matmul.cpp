// matmul: activation quantization, then output rows in parallel tiles over the vec_dot kernels.
#include "cpu/matmul.h"

#include <algorithm>
#include <array>

#include "core/check.h"

namespace ember {

namespace {

// What one matrix of a matmul needs: its kernel, row sizes and where its quantized activations are.
struct MatmulPlan {
  VecDotFn dot = nullptr;
  VecDot2Fn dot_2 = nullptr;  // two activation rows at once, where the ISA has it
  size_t w_row_bytes = 0;
  size_t a_row_bytes = 0;
  DType act_type = DType::kF32;
  size_t act_offset = 0;  // into MatmulScratch::activations
  int64_t tile = 1;       // output rows per task
  int64_t n_tiles = 0;
};

MatmulPlan plan_matrix(const CpuKernels& kernels, const WeightMatrix& w, int n_threads) {
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
  MatmulPlan p;
  p.dot = dot;
  p.dot_2 = kernels.vec_dot_2_for(w.dtype);
  p.w_row_bytes = *w_row_bytes;
  p.a_row_bytes = *a_row_bytes;
  p.act_type = act_type;
  // Output rows in tiles: enough tiles to balance the threads, each big enough to amortize the
  // dispatch. Every weight row is read once and used for all m activation rows.
  p.tile = std::max<int64_t>(1, std::min<int64_t>(64, w.n_out / (8 * n_threads)));
  p.n_tiles = w.n_out > 0 ? (w.n_out + p.tile - 1) / p.tile : 0;
  return p;
}

constexpr size_t kMaxMatrices = 4;

}  // namespace

void matmul(const CpuKernels& kernels, ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t m, float* y,
            MatmulScratch& scratch) {
  float* const ys[] = {y};
  matmul_many(kernels, pool, {&w, 1}, x, m, ys, scratch);
}

void matmul_many(const CpuKernels& kernels, ThreadPool& pool, std::span<const WeightMatrix> ws, const float* x,
                 int64_t m, std::span<float* const> ys, MatmulScratch& scratch) {
  EMBER_CHECK_MSG(ws.size() == ys.size() && ws.size() <= kMaxMatrices, "matmul_many: 1-4 matrices, one output each");
  std::array<MatmulPlan, kMaxMatrices> plans{};
  size_t act_bytes = 0;
  int64_t n_tasks = 0;
  for (size_t j = 0; j < ws.size(); ++j) {
    EMBER_CHECK_MSG(ws[j].k == ws[0].k, "matmul_many: matrices of different k");
    plans[j] = plan_matrix(kernels, ws[j], pool.n_threads());
    // Matrices with the same dot type share one quantized copy of X.
    size_t same = 0;
    while (same < j && plans[same].act_type != plans[j].act_type) ++same;
    if (same < j) {
      plans[j].act_offset = plans[same].act_offset;
    } else {
      plans[j].act_offset = act_bytes;
      act_bytes += static_cast<size_t>(m) * plans[j].a_row_bytes;
    }
    n_tasks += plans[j].n_tiles;
  }
  if (m <= 0 || n_tasks == 0) return;
  if (scratch.activations.size() < act_bytes) scratch.activations.resize(act_bytes);  // sized by reserve()

  // Activations, one quantized row each per distinct dot type (F32/F16/BF16 weights use their own
  // type as dot type).
  for (size_t j = 0; j < ws.size(); ++j) {
    const MatmulPlan& p = plans[j];
    const auto earlier = plans.begin() + static_cast<int64_t>(j);
    if (std::any_of(plans.begin(), earlier, [&](const MatmulPlan& q) { return q.act_type == p.act_type; })) {
      continue;  // quantized already for an earlier matrix
    }
    const QuantizeRowFn quantize_row = kernels.quantize_row_for(p.act_type);
    std::byte* acts = scratch.activations.data() + p.act_offset;
    pool.parallel_for(m, [&](int64_t i, int) {
      quantize_row(x + i * ws[0].k, acts + static_cast<size_t>(i) * p.a_row_bytes, ws[0].k, nullptr);
    });
  }

  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    size_t j = 0;
    while (task >= plans[j].n_tiles) task -= plans[j++].n_tiles;
    const MatmulPlan& p = plans[j];
    const WeightMatrix& w = ws[j];
    float* y = ys[j];
    const auto* weights = static_cast<const std::byte*>(w.data);
    const std::byte* acts = scratch.activations.data() + p.act_offset;
    const int64_t end = std::min(w.n_out, (task + 1) * p.tile);
    for (int64_t r = task * p.tile; r < end; ++r) {
      const std::byte* w_row = weights + static_cast<size_t>(r) * p.w_row_bytes;
      int64_t i = 0;
      if (p.dot_2 != nullptr) {  // pairs of rows share each block's unpacking; the same bits
        for (; i + 1 < m; i += 2) {
          float two[2];
          p.dot_2(w.k, w_row, acts + static_cast<size_t>(i) * p.a_row_bytes,
                  acts + static_cast<size_t>(i + 1) * p.a_row_bytes, two);
          y[i * w.n_out + r] = two[0];
          y[(i + 1) * w.n_out + r] = two[1];
        }
      }
      for (; i < m; ++i) y[i * w.n_out + r] = p.dot(w.k, w_row, acts + static_cast<size_t>(i) * p.a_row_bytes);
    }
  });
}

}  // namespace ember
