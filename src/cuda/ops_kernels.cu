// The CUDA row ops of cuda_kernels.h (rms_norm, GLUs, add, scale, softcap, RoPE, get_rows, argmax),
// each with the semantics of its CPU scalar namesake (cpu/ops_scalar.cpp, the spec).
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "cuda/activations.h"
#include "cuda/block_values.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/rope_pair.h"
#include "cuda/unroll.h"
#include "cuda/warp_sum.h"

namespace ember::cuda {
namespace {

// Elementwise kernels: 256-thread blocks, grid-stride loops over at most kMaxBlocks blocks per grid
// dimension (x, and y for rows capped at CUDA's 65535), so any n fits the launch limits; 8192 blocks
// of 256 are several waves on any GPU, so the cap costs nothing.
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;
// One block per row for the reductions (rms_norm, argmax); multiples of 32 (whole warps).
constexpr int kNormThreads = 256;
constexpr int kArgmaxThreads = 1024;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks)); }

// Grid over [n_rows][n_cols]: x over columns, y over rows (kernels loop over both).
dim3 grid_2d(int64_t n_rows, int64_t n_cols) {
  return dim3(blocks_for(n_cols), static_cast<unsigned>(std::min(n_rows, kMaxGridY)));
}

// The element index of this thread in a 1D grid-stride loop, and the loop's stride.
__device__ int64_t first_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- block reductions ----------------------------------------------------------------------------

// The sum over the block, returned to every thread (each warp reduces the same per-warp partials in
// the same order, so all agree). Every thread must call it; `partial` is __shared__ float[32],
// written once per kernel.
__device__ float block_sum(float v, float* partial) {
  v = warp_sum(v);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < blockDim.x / 32 ? partial[lane] : 0.0f;
  return warp_sum(v);
}

// argmax's order: the larger value wins, equal values the lower index; a NaN loses to every number
// and wins over a later NaN (as cpu argmax: NaN never chosen unless all are, then the first). A
// strict total order on distinct indices, so any reduction tree gives the same winner.
__device__ bool beats(float va, int32_t ia, float vb, int32_t ib) {
  if (va != va) return vb != vb && ia < ib;
  if (vb != vb) return true;
  return va > vb || (va == vb && ia < ib);
}

struct Candidate {
  float value;
  int32_t index;
};
struct BetterCandidate {
  __device__ Candidate operator()(Candidate own, Candidate partner) const {
    return beats(partner.value, partner.index, own.value, own.index) ? partner : own;
  }
};

__device__ void warp_best(float& v, int32_t& i) {
  const Candidate best = warp_butterfly(Candidate{v, i}, BetterCandidate{});
  v = best.value;
  i = best.index;
}

// ---- kernels -------------------------------------------------------------------------------------

// One block per row of n: scale = 1/sqrt(mean(x²) + eps) (float sum of squares, the final scalar in
// double then rounded once, as the CPU), y = (x·scale)·w. y may be x: every read of the row happens
// before block_sum's barrier, every write after it.
__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t n, float eps) {
  __shared__ float partial[32];
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * n;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * n;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i] * xr[i];
  sum = block_sum(sum, partial);
  const auto scale = static_cast<float>(1.0 / sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? xr[i] * scale * w[i] : xr[i] * scale;
}

struct Silu {
  __device__ float operator()(float x) const { return silu(x); }
};
struct GeluTanh {
  __device__ float operator()(float x) const { return gelu_tanh(x); }
};

// y[r][c] = act(g[r·stride + c]) · u[r·stride + c], y rows n apart. Grid: x over c, y over rows.
template <typename Act>
__global__ void glu_kernel(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n) {
  const Act act;
  for (int64_t r = blockIdx.y; r < n_rows; r += gridDim.y) {
    for (int64_t c = first_index(); c < n; c += grid_stride())
      y[r * n + c] = act(g[r * stride + c]) * u[r * stride + c];
  }
}

// y[r][c] = a[r][c] + b[r·b_stride + c] (b_stride 0: one bias row). Grid: x over c, y over rows.
__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride) {
  for (int64_t r = blockIdx.y; r < n_rows; r += gridDim.y) {
    for (int64_t c = first_index(); c < n_cols; c += grid_stride())
      y[r * n_cols + c] = a[r * n_cols + c] + b[r * b_stride + c];
  }
}

__global__ void scale_kernel(const float* x, float* y, int64_t n, float s) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = s * x[i];
}

// cap·tanh(x·(1/cap)) with 1/cap rounded on the host, as the CPU's scale, tanh, scale.
__global__ void softcap_kernel(float* x, int64_t n, float cap, float inv_cap) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] = cap * tanhf(x[i] * inv_cap);
}

// One thread per rotated pair p = (t·n_head + h)·half + i, rotated by cos_sin row t (rope_pair.h).
// Dims n_rot..head_dim of each head are never touched.
// Up to two tensors (q and k) rotated by one launch: token t's heads [0, n_head[0]) of x[0], then
// [0, n_head[1]) of x[1].
struct RopeArgs {
  float* x[2];
  int64_t token_stride[2];
  int64_t n_head[2];
};

__global__ void rope_kernel(const RopeArgs args, int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox,
                            const float* cos_sin) {
  const int64_t half = n_rot / 2, heads = args.n_head[0] + args.n_head[1], n_pairs = n_tokens * heads * half;
  for (int64_t p = first_index(); p < n_pairs; p += grid_stride()) {
    const int64_t i = p % half, th = p / half, t = th / heads;
    // Constant indices into the parameter arrays (a runtime index would copy them to local memory).
    const int64_t hh = th % heads;
    const bool second = hh >= args.n_head[0];
    const int64_t h = second ? hh - args.n_head[0] : hh;
    float* v =
        (second ? args.x[1] : args.x[0]) + t * (second ? args.token_stride[1] : args.token_stride[0]) + h * head_dim;
    rope_pair(v, cos_sin + t * n_rot, i, half, neox);
  }
}

// ---- get_rows: the plain types element by element; the block types 8 values at a time through
// block_values.h (the CPU dequantizer's float operations in its order: bit for bit) ---------------

// The values of a plain type one at a time, of a block type 8 at a time: group g of a row to
// out[0, kGroup).
template <DType T>
struct PlainValues {
  static constexpr int64_t kGroup = 1;
  __device__ static void store(const uint8_t* row, int64_t g, float* out) { *out = plain_value<T>(row, g); }
};
template <class Type>  // a block_values.h decoder
struct BlockValues {
  static constexpr int64_t kGroup = 8;
  __device__ static void store(const uint8_t* row, int64_t g, float* out) {
    const int64_t e = 8 * g;
    float v[8];
    Type::values8(row + (e / Type::kBlockElems) * Type::kBlockBytes, static_cast<int>(e % Type::kBlockElems), v);
    EMBER_UNROLL
    for (int n = 0; n < 8; ++n) out[n] = v[n];
  }
};

// dst[r][c] = element c of source row ids[r] (rows row_bytes apart), Values::kGroup elements per
// thread. Grid: x over the groups, y over r. An id out of range is a caller bug: trap (the next
// CUDA call reports the fault) rather than read wild.
template <class Values>
__global__ void get_rows_kernel(const uint8_t* src, int64_t n_src_rows, uint64_t row_bytes, int64_t n_cols,
                                const int32_t* ids, int64_t n_ids, float* dst) {
  for (int64_t r = blockIdx.y; r < n_ids; r += gridDim.y) {
    const int32_t id = ids[r];
    if (id < 0 || id >= n_src_rows) __trap();
    const uint8_t* row = src + static_cast<uint64_t>(id) * row_bytes;
    for (int64_t g = first_index(); g < n_cols / Values::kGroup; g += grid_stride()) {
      Values::store(row, g, dst + r * n_cols + Values::kGroup * g);
    }
  }
}

template <class Values>
void launch_get_rows(const void* src, int64_t n_src_rows, uint64_t row_bytes, int64_t n_cols, const int32_t* ids,
                     int64_t n_ids, float* dst, cudaStream_t stream) {
  EMBER_CUDA_LAUNCH(grid_2d(n_ids, n_cols / Values::kGroup), kThreads, 0, stream, get_rows_kernel<Values>)
  (static_cast<const uint8_t*>(src), n_src_rows, row_bytes, n_cols, ids, n_ids, dst);
}

// One block per row: each thread scans i = tid, tid + blockDim, ... (increasing, so a tie keeps the
// first), then warps, then the per-warp winners. n = 0 gives -1 (cpu argmax). kGreedy: a winner
// that is not a number above -inf (every value -inf or NaN) gives -1 (Batch::kToken's rule).
// (__launch_bounds__: the 1024 threads need at most 64 registers each; the compiler keeps to it.)
template <bool kGreedy>
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const float* x, int64_t n, int32_t* out) {
  __shared__ float best_v[32];
  __shared__ int32_t best_i[32];
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * n;
  float v = __int_as_float(0x7fc00000);  // NaN with index INT32_MAX: loses to every element
  int32_t i = INT32_MAX;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    if (beats(xr[j], static_cast<int32_t>(j), v, i)) {
      v = xr[j];
      i = static_cast<int32_t>(j);
    }
  }
  warp_best(v, i);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    best_v[warp] = v;
    best_i[warp] = i;
  }
  __syncthreads();
  if (warp != 0) return;
  v = lane < blockDim.x / 32 ? best_v[lane] : __int_as_float(0x7fc00000);
  i = lane < blockDim.x / 32 ? best_i[lane] : INT32_MAX;
  warp_best(v, i);
  if (lane == 0) out[blockIdx.x] = n > 0 ? (kGreedy && !(v > -INFINITY) ? -1 : i) : -1;
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps,
              cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_rows <= INT32_MAX && n >= 0);
  if (n_rows == 0 || n == 0) return;
  EMBER_CUDA_LAUNCH(static_cast<unsigned>(n_rows), kNormThreads, 0, stream, rms_norm_kernel)(x, weight, y, n, eps);
  EMBER_CUDA_CHECK_LAUNCH("rms_norm");
}

void swiglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n >= 0 && (n_rows <= 1 || stride >= n));
  if (n_rows == 0 || n == 0) return;
  EMBER_CUDA_LAUNCH(grid_2d(n_rows, n), kThreads, 0, stream, glu_kernel<Silu>)(g, u, stride, y, n_rows, n);
  EMBER_CUDA_CHECK_LAUNCH("swiglu");
}

void geglu(const float* g, const float* u, int64_t stride, float* y, int64_t n_rows, int64_t n, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n >= 0 && (n_rows <= 1 || stride >= n));
  if (n_rows == 0 || n == 0) return;
  EMBER_CUDA_LAUNCH(grid_2d(n_rows, n), kThreads, 0, stream, glu_kernel<GeluTanh>)(g, u, stride, y, n_rows, n);
  EMBER_CUDA_CHECK_LAUNCH("geglu");
}

void add(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride,
         cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_cols >= 0 && b_stride >= 0);
  if (n_rows == 0 || n_cols == 0) return;
  EMBER_CUDA_LAUNCH(grid_2d(n_rows, n_cols), kThreads, 0, stream, add_kernel)(a, b, y, n_rows, n_cols, b_stride);
  EMBER_CUDA_CHECK_LAUNCH("add");
}

void scale(const float* x, float* y, int64_t n, float s, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n >= 0);
  if (n == 0) return;
  EMBER_CUDA_LAUNCH(blocks_for(n), kThreads, 0, stream, scale_kernel)(x, y, n, s);
  EMBER_CUDA_CHECK_LAUNCH("scale");
}

void softcap(float* x, int64_t n, float cap, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(cap > 0.0f);
  EMBER_CUDA_EXPECT(n >= 0);
  if (n == 0) return;
  EMBER_CUDA_LAUNCH(blocks_for(n), kThreads, 0, stream, softcap_kernel)(x, n, cap, 1.0f / cap);
  EMBER_CUDA_CHECK_LAUNCH("softcap");
}

namespace {

void launch_rope(const RopeArgs& a, int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin,
                 cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_tokens >= 0 && head_dim >= 0);
  EMBER_CUDA_EXPECT(n_rot >= 0 && n_rot % 2 == 0 && n_rot <= head_dim);
  for (int i = 0; i < 2; ++i) {
    EMBER_CUDA_EXPECT(a.n_head[i] >= 0);
    EMBER_CUDA_EXPECT(n_tokens <= 1 || a.n_head[i] == 0 || a.token_stride[i] >= a.n_head[i] * head_dim);
  }
  const int64_t n_pairs = n_tokens * (a.n_head[0] + a.n_head[1]) * (n_rot / 2);
  if (n_pairs == 0) return;
  EMBER_CUDA_LAUNCH(blocks_for(n_pairs), kThreads, 0, stream, rope_kernel)(a, n_tokens, head_dim, n_rot, neox, cos_sin);
  EMBER_CUDA_CHECK_LAUNCH("rope");
}

}  // namespace

void rope(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim, int64_t n_rot, bool neox,
          const float* cos_sin, cudaStream_t stream) {
  launch_rope({{x, nullptr}, {token_stride, 0}, {n_head, 0}}, n_tokens, head_dim, n_rot, neox, cos_sin, stream);
}

void rope_qk(float* q, int64_t q_stride, int64_t n_head_q, float* k, int64_t k_stride, int64_t n_head_k,
             int64_t n_tokens, int64_t head_dim, int64_t n_rot, bool neox, const float* cos_sin, cudaStream_t stream) {
  launch_rope({{q, k}, {q_stride, k_stride}, {n_head_q, n_head_k}}, n_tokens, head_dim, n_rot, neox, cos_sin, stream);
}

void get_rows(DType type, const void* src, int64_t n_src_rows, int64_t n_cols, const int32_t* ids, int64_t n_ids,
              float* dst, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_cols >= 0 && n_ids >= 0 && n_src_rows >= 0);
  const std::optional<uint64_t> row_bytes = dtype_bytes_for(type, static_cast<uint64_t>(n_cols));
  EMBER_CUDA_EXPECT(row_bytes.has_value());  // n_cols whole blocks
  if (n_ids == 0 || n_cols == 0) return;
  const uint64_t rb = *row_bytes;
  switch (type) {
    case DType::kF32:
      launch_get_rows<PlainValues<DType::kF32>>(src, n_src_rows, rb, n_cols, ids, n_ids, dst, stream);
      break;
    case DType::kF16:
      launch_get_rows<PlainValues<DType::kF16>>(src, n_src_rows, rb, n_cols, ids, n_ids, dst, stream);
      break;
    case DType::kBF16:
      launch_get_rows<PlainValues<DType::kBF16>>(src, n_src_rows, rb, n_cols, ids, n_ids, dst, stream);
      break;
    default: {
      const bool blocks = with_block_values(type, [&]<class Type>(Type) {
        launch_get_rows<BlockValues<Type>>(src, n_src_rows, rb, n_cols, ids, n_ids, dst, stream);
      });
      EMBER_CUDA_EXPECT(blocks);  // a type of matmul_supports
    }
  }
  EMBER_CUDA_CHECK_LAUNCH("get_rows");
}

void argmax_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_rows <= INT32_MAX && n >= 0 && n <= INT32_MAX);
  if (n_rows == 0) return;
  EMBER_CUDA_LAUNCH(static_cast<unsigned>(n_rows), kArgmaxThreads, 0, stream, argmax_kernel<false>)(x, n, out);
  EMBER_CUDA_CHECK_LAUNCH("argmax_rows");
}

void greedy_rows(const float* x, int64_t n_rows, int64_t n, int32_t* out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_rows <= INT32_MAX && n >= 0 && n <= INT32_MAX);
  if (n_rows == 0) return;
  EMBER_CUDA_LAUNCH(static_cast<unsigned>(n_rows), kArgmaxThreads, 0, stream, argmax_kernel<true>)(x, n, out);
  EMBER_CUDA_CHECK_LAUNCH("greedy_rows");
}

}  // namespace ember::cuda
