// Reference quantization of F16/BF16 and the 32-element formats, and of Q8_K: without importance
// the deterministic round-to-nearest algorithms of ggml, with importance (Q4_0, Q4_1, Q5_0, Q5_1)
// ggml's weighted scale searches; both reproduce llama.cpp's blocks bit for bit. Float operations
// in ggml's order; no FMA contraction (-ffp-contract=off). F16/BF16/Q8_* ignore importance, as ggml.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/block_k.h"
#include "quant/block_legacy.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace ember {
namespace {

void min_max(const float* x, int n, float* min, float* max) {
  *min = INFINITY;
  *max = -INFINITY;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

// Q5_0/Q5_1: the low 4 bits of element j go to the nibbles of qs (j < 16 low, j >= 16 high),
// the 5th bit to bit j of qh.
void pack_q5(const int (&levels)[32], uint8_t (&qs)[16], uint8_t (&qh)[4]) {
  uint32_t high = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((levels[j] & 0x0F) | ((levels[j + 16] & 0x0F) << 4));
    high |= static_cast<uint32_t>((levels[j] & 0x10) >> 4) << j;
    high |= static_cast<uint32_t>((levels[j + 16] & 0x10) >> 4) << (j + 16);
  }
  std::memcpy(qh, &high, sizeof high);
}

// Q8_0/Q8_1: 32 values to int8 with d = absmax / 127 (rounded half away from zero); returns d.
float quantize_q8_block(const float* x, int8_t (&qs)[32]) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(round_or_zero(x[j] * id));
  return d;
}

// --- Importance-weighted paths (ggml's quantize_row_q4_0_impl ... q5_1_impl) ---
// Each element weighs importance · sqrt(sigma2 + x²), sigma2 being the mean square of the whole row
// (so `n` must be one row); the block scale (and min) come from a weighted least-squares search.

float row_sigma2(const float* x, int64_t n) { return n > 0 ? sum_of_squares(x, n) / static_cast<float>(n) : 0.0f; }

// Q4_0/Q5_0: symmetric levels 0..2·nmax-1 from make_qx_quants; d = its scale, stored as is.
template <typename Block, int kNmax, typename Pack>
void quantize_symmetric_weighted(const float* x, Block* y, int64_t n, const float* importance, Pack pack) {
  const float sigma2 = row_sigma2(x, n);
  float weights[32];
  int8_t levels[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    importance_weights(x + 32 * b, importance + 32 * b, sigma2, 32, weights);
    const float d = make_qx_quants(32, kNmax, x + 32 * b, levels, weights);
    y[b].d = fp32_to_fp16(d);
    pack(levels, y[b]);
  }
}

// Q4_1/Q5_1: levels 0..nmax with a min from make_qkx3_quants (ggml's parameters -0.9, 0.05, 36).
template <typename Block, int kNmax, typename Pack>
void quantize_asymmetric_weighted(const float* x, Block* y, int64_t n, const float* importance, Pack pack) {
  const float sigma2 = row_sigma2(x, n);
  float weights[32];
  uint8_t levels[32], levels_aux[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    importance_weights(x + 32 * b, importance + 32 * b, sigma2, 32, weights);
    float neg_min;
    const float d =
        make_qkx3_quants(32, kNmax, x + 32 * b, weights, levels, &neg_min, levels_aux, -0.9f, 0.05f, 36, false);
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(-neg_min);
    pack(levels, y[b]);
  }
}

template <typename Level, typename Block>
void pack_q4_nibbles(const Level* levels, Block& y) {
  for (int j = 0; j < 16; ++j) y.qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + 16] << 4));
}

template <typename Level, typename Block>
void pack_q5_levels(const Level* levels, Block& y) {
  int as_int[32];
  for (int j = 0; j < 32; ++j) as_int[j] = levels[j];
  pack_q5(as_int, y.qs, y.qh);
}

}  // namespace

void quantize_row_f32(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  std::copy_n(x, n, static_cast<float*>(dst));
}

void quantize_row_f16(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

void quantize_row_q4_0(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  if (importance != nullptr) {
    quantize_symmetric_weighted<BlockQ4_0, 8>(x, y, n, importance, pack_q4_nibbles<int8_t, BlockQ4_0>);
    return;
  }
  for (int64_t b = 0; b < n / kQK4_0; ++b, x += kQK4_0) {
    const float d = signed_absmax(x, kQK4_0) / -8;  // the extreme maps to -8, the 16th level
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int q0 = std::min(15, trunc_to_int8(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_to_int8(x[j + kQK4_0 / 2] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  if (importance != nullptr) {
    quantize_asymmetric_weighted<BlockQ4_1, 15>(x, y, n, importance, pack_q4_nibbles<uint8_t, BlockQ4_1>);
    return;
  }
  for (int64_t b = 0; b < n / kQK4_1; ++b, x += kQK4_1) {
    float min, max;
    min_max(x, kQK4_1, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const int q0 = std::min(15, trunc_to_int8((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, trunc_to_int8((x[j + kQK4_1 / 2] - min) * id + 0.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q5_0(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  if (importance != nullptr) {
    quantize_symmetric_weighted<BlockQ5_0, 16>(x, y, n, importance, pack_q5_levels<int8_t, BlockQ5_0>);
    return;
  }
  for (int64_t b = 0; b < n / kQK5_0; ++b, x += kQK5_0) {
    const float d = signed_absmax(x, kQK5_0) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int levels[kQK5_0];
    for (int j = 0; j < kQK5_0; ++j) levels[j] = std::min(31, trunc_to_int8(x[j] * id + 16.5f));
    pack_q5(levels, y[b].qs, y[b].qh);
  }
}

void quantize_row_q5_1(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  if (importance != nullptr) {
    quantize_asymmetric_weighted<BlockQ5_1, 31>(x, y, n, importance, pack_q5_levels<uint8_t, BlockQ5_1>);
    return;
  }
  for (int64_t b = 0; b < n / kQK5_1; ++b, x += kQK5_1) {
    float min, max;
    min_max(x, kQK5_1, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    int levels[kQK5_1];
    for (int j = 0; j < kQK5_1; ++j) levels[j] = static_cast<uint8_t>(trunc_or_zero((x[j] - min) * id + 0.5f, 0, 255));
    pack_q5(levels, y[b].qs, y[b].qh);
  }
}

void quantize_row_q8_0(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    y[b].d = fp32_to_fp16(quantize_q8_block(x, y[b].qs));
  }
}

void quantize_row_q8_1(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b, x += kQK8_1) {
    const float d = quantize_q8_block(x, y[b].qs);
    y[b].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) sum += y[b].qs[j];
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_k(const float* x, void* dst, int64_t n, const float* /*importance*/) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    const float iscale = -127.0f / max;  // the extreme maps to -127 (its sign flipped into the scale)
    for (int j = 0; j < kQK_K; ++j) y[b].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[b].qs[16 * g + j];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

}  // namespace ember
