// One Q8_0 block (32 values) quantized by a warp, one value per lane, bit for bit as the CPU's
// quantize_row_q8_0: the KV store's Q8_0 pools and the int8 GEMM's activations.
#pragma once

#include <cstdint>

#include "cuda/warp_sum.h"

namespace ember::cuda {

struct Q8_0Lane {
  int8_t q;     // this lane's value
  float scale;  // the block's d (before its rounding to f16), the same in every lane
};

// d = absmax / 127 over the warp's 32 values, NaNs skipped; q = x / d rounded half away from zero,
// 0 where that is out of range (NaN). Every lane of the warp must call it.
__device__ __forceinline__ Q8_0Lane quantize_q8_0_lane(float x) {
  float amax = x == x ? fabsf(x) : 0.0f;
  amax = warp_max(amax);
  const float scale = amax / 127.0f;
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  const float q = roundf(x * inv);
  return {static_cast<int8_t>(q >= -128.0f && q <= 127.0f ? q : 0.0f), scale};
}

}  // namespace ember::cuda
