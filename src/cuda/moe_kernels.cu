// The mixture-of-experts kernels of cuda_kernels.h: the router's choice (softmax, top-k) and the
// weighted sum of each row's experts; the experts' matmuls are gemv_experts (matmul_kernels.cu).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"
#include "cuda/launch.h"
#include "cuda/warp_sum.h"

namespace ember::cuda {
namespace {

// route_experts: one warp per row, kRouteWarps rows per block.
constexpr int kRouteWarps = 4;
// combine_experts: 256 threads over a row's columns, rows on grid.y.
constexpr int kCombineThreads = 256;
constexpr int64_t kMaxCombineBlocks = 1024;

// Whether expert (va, ea) ranks before (vb, eb): the larger probability, a NaN as -inf, then the
// lower expert; an empty candidate (e < 0) ranks last. A strict total order on distinct experts,
// so the lanes' scans and the butterfly agree on every round's winner whatever the values (a row
// of NaN, from a +inf or NaN logit, picks experts 0..k-1 as the CPU's select_experts does).
__device__ bool ranks_before(float va, int32_t ea, float vb, int32_t eb) {
  if (ea < 0 || eb < 0) return eb < 0 && ea >= 0;
  const float a = va == va ? va : -INFINITY, b = vb == vb ? vb : -INFINITY;
  return a > b || (a == b && ea < eb);
}

struct ExpertCandidate {
  float p;
  int32_t e;
};
struct RanksFirst {
  __device__ ExpertCandidate operator()(ExpertCandidate own, ExpertCandidate partner) const {
    return ranks_before(partner.p, partner.e, own.p, own.e) ? partner : own;
  }
};

// The row's softmax (as the CPU's: exp(z - max) / Σ), then k rounds of a warp argmax over the
// probabilities not yet taken (ranks_before). logits and probs may be the same buffer: each lane
// reads its logits before writing the same entries.
__global__ void route_experts_kernel(const float* logits, int64_t n_rows, int32_t n_expert, int32_t k, int normalize,
                                     float* probs, int32_t* __restrict__ experts, float* __restrict__ weights) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRouteWarps + threadIdx.x / 32;
  if (row >= n_rows) return;  // whole warps leave together
  const float* z = logits + row * n_expert;
  float* p = probs + row * n_expert;
  float max = -INFINITY;
  for (int32_t e = lane; e < n_expert; e += 32) max = fmaxf(max, z[e]);
  max = warp_max(max);
  float sum = 0.0f;
  for (int32_t e = lane; e < n_expert; e += 32) sum += (p[e] = expf(z[e] - max));
  sum = warp_sum(sum);
  const float inv = 1.0f / sum;
  for (int32_t e = lane; e < n_expert; e += 32) p[e] *= inv;
  int32_t chosen[kMaxExpertsUsed];  // the same in every lane: each round's winner is the warp's
  float chosen_p[kMaxExpertsUsed];
  float chosen_sum = 0.0f;
  for (int32_t i = 0; i < k; ++i) {
    float best = -INFINITY;
    int32_t best_e = -1;
    for (int32_t e = lane; e < n_expert; e += 32) {
      bool taken = false;
      for (int32_t j = 0; j < i; ++j) taken = taken || chosen[j] == e;
      if (!taken && ranks_before(p[e], e, best, best_e)) {
        best = p[e];
        best_e = e;
      }
    }
    const ExpertCandidate winner = warp_butterfly(ExpertCandidate{best, best_e}, RanksFirst{});
    best = winner.p;
    best_e = winner.e;
    chosen[i] = best_e;
    chosen_p[i] = best;
    chosen_sum += best;
  }
  if (lane == 0) {
    const bool rescale = normalize != 0 && chosen_sum > 0.0f;
    for (int32_t i = 0; i < k; ++i) {
      experts[row * k + i] = chosen[i];
      weights[row * k + i] = rescale ? chosen_p[i] / chosen_sum : chosen_p[i];
    }
  }
}

// out[r][c] = Σ over r's k entries in increasing expert order of weight · y[position(entry)][c],
// then + the shared expert's row (times sigmoid of its gate logit where gated).
__global__ void combine_experts_kernel(const float* __restrict__ y, const int32_t* __restrict__ positions,
                                       const int32_t* __restrict__ experts, const float* __restrict__ weights,
                                       int64_t n_rows, int32_t k, int64_t n_cols, const float* __restrict__ shared,
                                       const float* __restrict__ shared_gate, float* __restrict__ out) {
  for (int64_t r = blockIdx.y; r < n_rows; r += gridDim.y) {
    // The row's entries in increasing expert order (k is small: an insertion sort in registers).
    int32_t order[kMaxExpertsUsed];
    for (int32_t i = 0; i < k; ++i) {
      int32_t at = i;
      while (at > 0 && experts[r * k + order[at - 1]] > experts[r * k + i]) {
        order[at] = order[at - 1];
        --at;
      }
      order[at] = i;
    }
    float gate = 1.0f;
    if (shared_gate != nullptr) gate = 1.0f / (1.0f + expf(-shared_gate[r]));
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < n_cols;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      float sum = 0.0f;
      for (int32_t i = 0; i < k; ++i) {
        const int64_t entry = r * k + order[i];
        const int64_t at = positions != nullptr ? positions[entry] : entry;
        sum += weights[entry] * y[at * n_cols + c];
      }
      if (shared != nullptr)
        sum = shared_gate != nullptr ? sum + gate * shared[r * n_cols + c] : sum + shared[r * n_cols + c];
      out[r * n_cols + c] = sum;
    }
  }
}

}  // namespace

void route_experts(const float* logits, int64_t n_rows, int32_t n_expert, int32_t k, bool normalize, float* probs,
                   int32_t* experts, float* weights, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && n_expert >= 1 && k >= 1 && k <= n_expert && k <= kMaxExpertsUsed);
  if (n_rows == 0) return;
  const auto blocks = static_cast<unsigned>((n_rows + kRouteWarps - 1) / kRouteWarps);
  EMBER_CUDA_LAUNCH(blocks, 32 * kRouteWarps, 0, stream, route_experts_kernel)
  (logits, n_rows, n_expert, k, normalize ? 1 : 0, probs, experts, weights);
  EMBER_CUDA_CHECK_LAUNCH("route_experts");
}

void combine_experts(const float* y, const int32_t* positions, const int32_t* experts, const float* weights,
                     int64_t n_rows, int32_t k, int64_t n_cols, const float* shared, const float* shared_gate,
                     float* out, cudaStream_t stream) {
  EMBER_CUDA_EXPECT(n_rows >= 0 && k >= 1 && k <= kMaxExpertsUsed && n_cols >= 0);
  EMBER_CUDA_EXPECT(shared_gate == nullptr || shared != nullptr);
  if (n_rows == 0 || n_cols == 0) return;
  const dim3 grid(static_cast<unsigned>(std::min((n_cols + kCombineThreads - 1) / kCombineThreads, kMaxCombineBlocks)),
                  static_cast<unsigned>(std::min(n_rows, kMaxGridY)));
  EMBER_CUDA_LAUNCH(grid, kCombineThreads, 0, stream, combine_experts_kernel)
  (y, positions, experts, weights, n_rows, k, n_cols, shared, shared_gate, out);
  EMBER_CUDA_CHECK_LAUNCH("combine_experts");
}

}  // namespace ember::cuda
