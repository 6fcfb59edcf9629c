// warp_sum: the butterfly sum over a warp, the one reduction order every kernel shares (so sums of
// the same values give the same bits in every kernel).
#pragma once

namespace ember::cuda {

// Every lane ends with the sum of the 32 lanes' values (the same in every lane).
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  return v;
}

}  // namespace ember::cuda
