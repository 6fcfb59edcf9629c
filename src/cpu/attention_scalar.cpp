// The scalar attention tile kernel: the spec the SIMD kernels are tested against. One token at a
// time, online softmax in float, K/V read through the block table like the SIMD kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/attention_kernel.h"
#include "quant/fp16.h"

namespace ember {
namespace {

constexpr int kBlockTokens = 16;
constexpr uint32_t kDTypeF16 = 1;
constexpr uint32_t kDTypeQ8_0 = 8;
constexpr int kQ8Values = 32;  // a Q8_0 block: f16 scale d, then 32 int8 q; value = q·d
constexpr int kQ8Bytes = 34;

// One row of head_dim values as floats.
void load_row(const uint8_t* row, uint32_t dtype, int head_dim, float* out) {
  if (dtype == kDTypeQ8_0) {
    for (int b = 0; b < head_dim / kQ8Values; ++b) {
      const uint8_t* block = row + b * kQ8Bytes;
      uint16_t h;
      std::memcpy(&h, block, sizeof h);
      const float d = fp16_to_fp32(h);
      for (int j = 0; j < kQ8Values; ++j) {
        out[b * kQ8Values + j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
      }
    }
  } else if (dtype == kDTypeF16) {
    for (int d = 0; d < head_dim; ++d) {
      uint16_t h;
      std::memcpy(&h, row + 2 * d, sizeof h);
      out[d] = fp16_to_fp32(h);
    }
  } else {
    std::memcpy(out, row, sizeof(float) * static_cast<size_t>(head_dim));
  }
}

// q·k in four partial sums (independent chains; the order differs from the SIMD kernels anyway).
float dot(const float* q, const float* k, int n) {
  float s[4] = {0, 0, 0, 0};
  int d = 0;
  for (; d + 4 <= n; d += 4) {
    for (int j = 0; j < 4; ++j) s[j] += q[d + j] * k[d + j];
  }
  for (; d < n; ++d) s[0] += q[d] * k[d];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

void attention_tile_scalar(const AttnTileArgs& a) {
  const int dp = a.head_dim_pad;
  float* k = a.scratch;  // the current token's K and V rows as floats
  float* v = a.scratch + dp;
  for (int i = 0; i < a.n_q; ++i) {
    const float* q = a.q + static_cast<int64_t>(i) * dp;
    float* acc = a.acc + static_cast<int64_t>(i) * dp;
    float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
    std::fill(acc, acc + dp, 0.0f);
    const int first = std::max(a.lo[i], a.begin), last = std::min(a.hi[i], a.end - 1);
    for (int j = first; j <= last; ++j) {
      const int64_t block = a.block_table[j / kBlockTokens];
      const int slot = j % kBlockTokens;
      load_row(a.k_base + block * a.k_block_stride + slot * a.k_row_bytes, a.k_dtype, a.head_dim, k);
      load_row(a.v_base + block * a.v_block_stride + slot * a.v_row_bytes, a.v_dtype, a.head_dim, v);
      float s = dot(q, k, a.head_dim);
      if (a.softcap > 0.0f) s = a.softcap * std::tanh(s / a.softcap);
      if (a.slope != nullptr) s += a.slope[i] * static_cast<float>(j - a.pos[i]);
      // Online softmax: rescale what was accumulated when the running max grows.
      if (s > m) {
        const float corr = std::exp(m - s);  // 0 for the first visible token
        l *= corr;
        for (int d = 0; d < a.head_dim; ++d) acc[d] *= corr;
        m = s;
      }
      const float p = std::exp(s - m);
      l += p;
      for (int d = 0; d < a.head_dim; ++d) acc[d] += p * v[d];
    }
    a.m[i] = m;
    a.l[i] = l;
  }
}

void exp_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace

AttentionIsaKernel attention_scalar_kernel() { return {attention_tile_scalar, exp_scalar, 1}; }

}  // namespace ember
