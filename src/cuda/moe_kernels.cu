// The mixture-of-experts kernels of cuda_kernels.h: the router's choice (softmax or sigmoid, biased
// and grouped top-k) and the weighted sum of each row's experts; the experts' matmuls are
// gemv_experts (matmul_kernels.cu).
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
  float score;  // what ranks it (biased, -inf outside the chosen groups)
  int32_t e;
  float p;  // its probability (the weight)
};
struct RanksFirst {
  __device__ ExpertCandidate operator()(ExpertCandidate own, ExpertCandidate partner) const {
    return ranks_before(partner.score, partner.e, own.score, own.e) ? partner : own;
  }
};

// The best candidate of the warp among `n` indices scored by score(i), skipping the `skip` ones
// (the same result in every lane).
template <class Score, class Skip>
__device__ ExpertCandidate warp_best(int lane, int32_t begin, int32_t end, const Score& score, const Skip& skip) {
  ExpertCandidate best{-INFINITY, -1, 0.0f};
  for (int32_t e = begin + lane; e < end; e += 32) {
    if (skip(e)) continue;
    const ExpertCandidate c = score(e);
    if (ranks_before(c.score, c.e, best.score, best.e)) best = c;
  }
  return warp_butterfly(best, RanksFirst{});
}

// One warp per row: the row's probabilities (softmax as the CPU's exp(z - max) / Σ, or a sigmoid
// per logit), then, with groups, the n_group_used groups whose two best biased probabilities sum
// highest, then k rounds of a warp argmax over the biased probabilities not yet taken within those
// groups (ranks_before). logits and probs may be the same buffer: each lane reads its logits before
// writing the same entries.
__global__ void route_experts_kernel(const float* logits, int64_t n_rows, const ExpertRoute r, float* probs,
                                     int32_t* __restrict__ experts, float* __restrict__ weights) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRouteWarps + threadIdx.x / 32;
  if (row >= n_rows) return;  // whole warps leave together
  const int32_t n_expert = r.n_expert;
  const float* z = logits + row * n_expert;
  float* p = probs + row * n_expert;
  if (r.sigmoid) {
    for (int32_t e = lane; e < n_expert; e += 32) p[e] = 1.0f / (1.0f + expf(-z[e]));
  } else {
    float max = -INFINITY;
    for (int32_t e = lane; e < n_expert; e += 32) max = fmaxf(max, z[e]);
    max = warp_max(max);
    float sum = 0.0f;
    for (int32_t e = lane; e < n_expert; e += 32) sum += (p[e] = expf(z[e] - max));
    sum = warp_sum(sum);
    const float inv = 1.0f / sum;
    for (int32_t e = lane; e < n_expert; e += 32) p[e] *= inv;
  }
  __syncwarp();  // every lane's p, read by the others below
  const auto biased = [&](int32_t e) { return r.bias != nullptr ? p[e] + r.bias[e] : p[e]; };
  // The chosen groups as a bit mask (every group when not grouped); the same in every lane.
  uint32_t allowed = ~0u;
  int32_t per_group = n_expert;
  if (r.n_group > 1) {
    per_group = n_expert / r.n_group;
    float group_score[kMaxExpertGroups];
    for (int32_t g = 0; g < r.n_group; ++g) {
      const auto score = [&](int32_t e) { return ExpertCandidate{biased(e), e, 0.0f}; };
      const int32_t begin = g * per_group, end = begin + per_group;
      const ExpertCandidate first = warp_best(lane, begin, end, score, [](int32_t) { return false; });
      const ExpertCandidate second = warp_best(lane, begin, end, score, [&](int32_t e) { return e == first.e; });
      group_score[g] = first.score + second.score;
    }
    allowed = 0;
    for (int32_t i = 0; i < r.n_group_used; ++i) {  // the best group not yet taken (the lower among equals)
      int32_t best = -1;
      for (int32_t g = 0; g < r.n_group; ++g) {
        if ((allowed >> g & 1u) == 0 && (best < 0 || ranks_before(group_score[g], g, group_score[best], best))) {
          best = g;
        }
      }
      allowed |= 1u << best;
    }
  }
  int32_t chosen[kMaxExpertsUsed];  // the same in every lane: each round's winner is the warp's
  float chosen_p[kMaxExpertsUsed];
  float chosen_sum = 0.0f;
  const auto score = [&](int32_t e) {
    return ExpertCandidate{(allowed >> (e / per_group) & 1u) != 0 ? biased(e) : -INFINITY, e, p[e]};
  };
  for (int32_t i = 0; i < r.k; ++i) {
    const auto taken = [&](int32_t e) {
      bool t = false;
      for (int32_t j = 0; j < i; ++j) t = t || chosen[j] == e;
      return t;
    };
    const ExpertCandidate winner = warp_best(lane, 0, n_expert, score, taken);
    chosen[i] = winner.e;
    chosen_p[i] = winner.p;
    chosen_sum += winner.p;
  }
  if (lane == 0) {
    // 2^-14: the CPU's clamp (std::max's: a NaN sum stays NaN).
    const float divisor = !r.normalize ? 1.0f : chosen_sum < 6.103515625e-5f ? 6.103515625e-5f : chosen_sum;
    const float scale = r.scale != 0.0f && r.scale != 1.0f ? r.scale : 1.0f;
    for (int32_t i = 0; i < r.k; ++i) {
      experts[row * r.k + i] = chosen[i];
      weights[row * r.k + i] = r.normalize ? chosen_p[i] / divisor * scale : chosen_p[i] * scale;
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

void route_experts(const float* logits, int64_t n_rows, const ExpertRoute& route, float* probs, int32_t* experts,
                   float* weights, cudaStream_t stream) {
  const ExpertRoute& r = route;
  EMBER_CUDA_EXPECT(n_rows >= 0 && r.n_expert >= 1 && r.k >= 1 && r.k <= r.n_expert && r.k <= kMaxExpertsUsed);
  EMBER_CUDA_EXPECT(r.n_group <= 1 || (r.n_group <= kMaxExpertGroups && r.n_expert % r.n_group == 0 &&
                                       r.n_expert / r.n_group >= 2 && r.n_group_used >= 1 &&
                                       r.n_group_used < r.n_group && r.k <= r.n_group_used * (r.n_expert / r.n_group)));
  if (n_rows == 0) return;
  const auto blocks = static_cast<unsigned>((n_rows + kRouteWarps - 1) / kRouteWarps);
  EMBER_CUDA_LAUNCH(blocks, 32 * kRouteWarps, 0, stream, route_experts_kernel)
  (logits, n_rows, r, probs, experts, weights);
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
