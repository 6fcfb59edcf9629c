// RoPE's rotation of one pair of a head, shared by the rope kernels (ops_kernels.cu) and the fused
// RoPE + KV store (attention_kernels.cu), so both give the same bits.
#pragma once

#include <cstdint>

namespace ember::cuda {

// Pair i of `head` rotated in place by row `cs` of a cos_sin table (RopeTable::cos_sin's layout,
// n_rot = 2·half values): normal pairs (2i, 2i+1) with (cos_i, sin_i) at cs[2i, 2i+1]; neox pairs
// (i, i + half) with cos_i at cs[i], sin_i at cs[half + i]. _rn intrinsics keep a·c - b·s unfused,
// the CPU's float arithmetic exactly.
__device__ __forceinline__ void rope_pair(float* head, const float* cs, int64_t i, int64_t half, bool neox) {
  const int64_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
  const float c = neox ? cs[i] : cs[2 * i], s = neox ? cs[half + i] : cs[2 * i + 1];
  const float a = head[ia], b = head[ib];
  head[ia] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  head[ib] = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
}

}  // namespace ember::cuda
