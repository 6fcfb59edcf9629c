// Reference quantization of IQ4_NL and IQ4_XS: per 32-element block, a scale fitted by weighted
// least squares over 15 candidate grids against the non-linear IQ4 levels (ggml's
// quantize_row_iq4_nl_impl). The weights are x², or with importance importance · sqrt(sigma2 + x²)
// (sigma2: twice the mean square of the super-block); llama-quantize's blocks are reproduced bit
// for bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/block_iq4.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace ember {
namespace {

constexpr int kTries = 7;  // candidate grids: values[0] + t for t in -7..7

// Index of the IQ4 level closest to x; an exact tie goes to the upper level, as in ggml.
int best_index(float x) {
  const int8_t* v = kIQ4Values;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < v[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - static_cast<float>(v[hi - 1]) < static_cast<float>(v[hi]) - x ? hi - 1 : hi;
}

// Quantizes one super-block of `n` elements in blocks of 32. For n == 32 (IQ4_NL) the block scale
// goes to *dh directly; otherwise (IQ4_XS) the block scales become 6-bit values under *dh.
// `importance`: the super-block's n importance values, or nullptr.
void quantize_iq4_impl(int n, const float* x, const float* importance, uint16_t* dh, uint8_t* q4, uint16_t* scales_h,
                       uint8_t* scales_l) {
  constexpr int kBlock = 32;
  float scales[kQK_K / kBlock], weight[kBlock];
  uint8_t levels[kQK_K];
  std::memset(q4, 0, static_cast<size_t>(n) / 2);
  *dh = fp32_to_fp16(0.0f);
  const float sigma2 = importance != nullptr ? sum_of_squares(x, n) * (2.0f / static_cast<float>(n)) : 0.0f;
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < n / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* block_levels = levels + ib * kBlock;
    if (importance != nullptr) {
      importance_weights(xb, importance + ib * kBlock, sigma2, kBlock, weight);
    } else {
      for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    }
    const float max = signed_absmax(xb, kBlock);
    if (std::fabs(max) < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / static_cast<float>(kIQ4Values[0]);
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const int l = best_index(id * xb[j]);
      block_levels[j] = static_cast<uint8_t>(l);
      const float q = kIQ4Values[l];
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;  // sumq2 = 0: all weights of the block are 0 (importance)
    float best = d * sumqx;
    for (int itry = -kTries; itry <= kTries; ++itry) {
      id = static_cast<float>(itry + kIQ4Values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        const float q = kIQ4Values[best_index(id * xb[j])];
        sumqx += weight[j] * q * xb[j];
        sumq2 += weight[j] * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }
  if (n > kBlock) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = fp32_to_fp16(d);
    const float id = d != 0.0f ? 1 / d : 0.0f;
    for (int ib = 0; ib < n / kBlock; ++ib) {
      int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.0f;
      for (int j = 0; j < kBlock; ++j)
        levels[ib * kBlock + j] = static_cast<uint8_t>(best_index(idl * x[ib * kBlock + j]));
      l += 32;
      const auto low = static_cast<uint8_t>(l & 0x0F), high = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) {
        scales_l[ib / 2] = low;
      } else {
        scales_l[ib / 2] = static_cast<uint8_t>(scales_l[ib / 2] | (low << 4));
      }
      *scales_h = static_cast<uint16_t>(*scales_h | (high << (2 * (ib % 8))));
    }
  } else {
    *dh = fp32_to_fp16(scales[0]);
    const float id = scales[0] != 0.0f ? 1 / scales[0] : 0.0f;
    for (int j = 0; j < n; ++j) levels[j] = static_cast<uint8_t>(best_index(id * x[j]));
  }
  for (int i = 0; i < n / 32; ++i) {
    for (int j = 0; j < 16; ++j)
      q4[16 * i + j] = static_cast<uint8_t>(levels[32 * i + j] | (levels[32 * i + 16 + j] << 4));
  }
}

}  // namespace

void quantize_row_iq4_nl(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    const float* block_importance = importance != nullptr ? importance + b * kQK4_NL : nullptr;
    quantize_iq4_impl(kQK4_NL, x + b * kQK4_NL, block_importance, &y[b].d, y[b].qs, nullptr, nullptr);
  }
}

void quantize_row_iq4_xs(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockIQ4_XS*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* block_importance = importance != nullptr ? importance + b * kQK_K : nullptr;
    quantize_iq4_impl(kQK_K, x + b * kQK_K, block_importance, &y[b].d, y[b].qs, &y[b].scales_h, y[b].scales_l);
  }
}

}  // namespace ember
