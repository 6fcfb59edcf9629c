// Reference quantization of Q2_K ... Q6_K: ggml's error-minimizing searches for the sub-block
// scales and mins. Without importance: make_qkx2 / make_q3 / make_qx with ggml's heuristic weights
// (quantize_row_q*_K_ref); with importance: ggml's quantize_row_q*_K_impl, which weighs each
// element by importance · sqrt(sigma2 + x²), searches with make_qkx3 / make_qx and quantizes the
// sub-block scales themselves with make_qp / make_qx weighted by each sub-block's total weight.
// Float operations in ggml's order so that llama-quantize's blocks are reproduced bit for bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/block_k.h"
#include "quant/fp16.h"
#include "quant/quantize.h"
#include "quant/rounding.h"
#include "quant/scale_search.h"

namespace ember {
namespace {

// Symmetric quantization to -nmax..nmax-1 (stored +nmax) weighted by x^2: the absmax grid, then up
// to 5 passes moving single levels while that improves the least-squares fit. Returns the scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* levels) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) levels[i] = 0;
    return 0.0f;
  }
  const float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    levels[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(levels[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(levels[i]) * static_cast<float>(levels[i]);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != levels[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            levels[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(levels[i] + nmax);
  return sumlx / suml2;
}

// Q2_K/Q3_K: four 2-bit planes per 128 elements; plane p of byte l holds element j + l + 32p.
void pack_2bit_planes(const uint8_t* levels, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(levels[j + l] | (levels[j + l + 32] << 2) | (levels[j + l + 64] << 4) |
                                           (levels[j + l + 96] << 6));
    }
  }
}

// sigma2 of the K-quant weighted paths: `factor` · Σx² / 256 over the super-block.
float super_block_sigma2(const float* x, float factor) {
  return factor * sum_of_squares(x, kQK_K) / static_cast<float>(kQK_K);
}

// --- Q2_K ---

// The final levels 0..3 against the stored f16 super-scales and 4-bit sub-block scales and mins.
void requantize_q2_k(const float* x, const BlockQ2_K& y, uint8_t* levels) {
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * static_cast<float>(y.scales[j] & 0x0F);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y.dmin) * static_cast<float>(y.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int((x[16 * j + ii] + dm) / d);
      levels[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
    }
  }
}

// Without importance: make_qkx2 (weights |x|, absolute error) per 16 elements, then the scales and
// mins rounded to 4 bits against their maxima.
void quantize_q2_k_block(const float* x, BlockQ2_K& y, uint8_t* levels) {
  constexpr float kQ4Scale = 15.0f;  // scales and mins are 4-bit under f16 super-scales
  uint8_t levels_aux[16];
  float weights[16], mins[kQK_K / 16], scales[kQK_K / 16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] =
        make_qkx2_quants(16, 3, x + 16 * j, weights, levels + 16 * j, &mins[j], levels_aux, -0.5f, 0.1f, 15, true);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  if (max_scale > 0) {
    const float iscale = kQ4Scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    y.d = fp32_to_fp16(max_scale / kQ4Scale);
  } else {
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = 0;
    y.d = fp32_to_fp16(0.0f);
  }
  if (max_min > 0) {
    const float iscale = kQ4Scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j) {
      y.scales[j] = static_cast<uint8_t>(y.scales[j] | (nearest_int(iscale * mins[j]) << 4));
    }
    y.dmin = fp32_to_fp16(max_min / kQ4Scale);
  } else {
    y.dmin = fp32_to_fp16(0.0f);
  }
  requantize_q2_k(x, y, levels);
}

// With importance (ggml's quantize_row_q2_K_impl): make_qkx3 per 16 elements, then the 16 scales
// and the 16 mins each quantized to 4 bits by make_qp, weighted by the sub-blocks' total weights.
void quantize_q2_k_block_weighted(const float* x, const float* importance, BlockQ2_K& y, uint8_t* levels) {
  const float sigma2 = super_block_sigma2(x, 1.0f);
  uint8_t levels_aux[16], scale_levels[kQK_K / 16], min_levels[kQK_K / 16];
  float weights[16], sub_block_weight[kQK_K / 16], mins[kQK_K / 16], scales[kQK_K / 16];
  for (int j = 0; j < kQK_K / 16; ++j) {
    importance_weights(x + 16 * j, importance + 16 * j, sigma2, 16, weights);
    sub_block_weight[j] = sum_of(weights, 16);
    scales[j] =
        make_qkx3_quants(16, 3, x + 16 * j, weights, levels + 16 * j, &mins[j], levels_aux, -0.9f, 0.05f, 36, false);
  }
  const float d = make_qp_quants(kQK_K / 16, 15, scales, scale_levels, sub_block_weight);
  const float dmin = make_qp_quants(kQK_K / 16, 15, mins, min_levels, sub_block_weight);
  y.d = fp32_to_fp16(d);
  y.dmin = fp32_to_fp16(dmin);
  for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = static_cast<uint8_t>(scale_levels[j] | (min_levels[j] << 4));
  requantize_q2_k(x, y, levels);
}

// --- Q3_K ---

// Stores the 6-bit scale code l (0..63, the scale being l - 32) of sub-block j: low nibbles in
// scales[0..7], the top 2 bits in scales[8..11].
void set_q3_k_scale(int j, int l, uint8_t* scales) {
  if (j < 8) {
    scales[j] = static_cast<uint8_t>(l & 0x0F);
  } else {
    scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0x0F) << 4));
  }
  scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}

// The final levels against the stored scales (sub-blocks whose scale is 0 keep the levels of the
// search), then packed: the third bit of every level to hmask (bit p of byte m for element 32p + m),
// the low two bits to the 2-bit planes.
void finish_q3_k_block(const float* x, BlockQ3_K& y, int8_t* levels) {
  for (int j = 0; j < kQK_K / 16; ++j) {
    const int low = j < 8 ? y.scales[j] & 0x0F : y.scales[j - 8] >> 4;
    const int sc = (low | (((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = fp16_to_fp32(y.d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      levels[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
    }
  }
  std::memset(y.hmask, 0, sizeof y.hmask);
  uint8_t low_bits[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    int l = levels[j];
    if (l > 3) {
      y.hmask[j % 32] = static_cast<uint8_t>(y.hmask[j % 32] | (1 << (j / 32)));
      l -= 4;
    }
    low_bits[j] = static_cast<uint8_t>(l);
  }
  pack_2bit_planes(low_bits, y.qs);
}

// Without importance: make_q3 per 16 elements, the scales rounded to 6 bits against their extreme.
void quantize_q3_k_block(const float* x, BlockQ3_K& y, int8_t* levels) {
  float scales[kQK_K / 16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = make_q3_quants(16, 4, x + 16 * j, levels + 16 * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  std::memset(y.scales, 0, sizeof y.scales);
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) {
      set_q3_k_scale(j, std::max(-32, std::min(31, nearest_int(iscale * scales[j]))) + 32, y.scales);
    }
    y.d = fp32_to_fp16(1 / iscale);
  } else {
    y.d = fp32_to_fp16(0.0f);
  }
  finish_q3_k_block(x, y, levels);
}

// With importance (ggml's quantize_row_q3_K_impl): make_qx per 16 elements with the importance
// weights, then the 16 scales themselves quantized by make_qx, weighted by each sub-block's weight.
void quantize_q3_k_block_weighted(const float* x, const float* importance, BlockQ3_K& y, int8_t* levels) {
  const float sigma2 = super_block_sigma2(x, 2.0f);
  float weights[16], sub_block_weight[kQK_K / 16], scales[kQK_K / 16];
  for (int j = 0; j < kQK_K / 16; ++j) {
    importance_weights(x + 16 * j, importance + 16 * j, sigma2, 16, weights);
    sub_block_weight[j] = sum_of(weights, 16);
    scales[j] = make_qx_quants(16, 4, x + 16 * j, levels + 16 * j, weights);
  }
  std::memset(y.scales, 0, sizeof y.scales);
  int8_t scale_levels[kQK_K / 16];  // 0..63, i.e. the scale code l + 32
  const float d = make_qx_quants(kQK_K / 16, 32, scales, scale_levels, sub_block_weight);
  for (int j = 0; j < kQK_K / 16; ++j) set_q3_k_scale(j, scale_levels[j], y.scales);
  y.d = fp32_to_fp16(d);
  finish_q3_k_block(x, y, levels);
}

// --- Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins under two f16 super-scales ---

// Packs the 8 scale codes and 8 min codes the way scale_min_k4 reads them. Codes above 63 (only
// from degenerate weighted blocks) lose their high bits exactly as in ggml.
void pack_k_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* scales_out) {
  std::memset(scales_out, 0, kKScaleBytes);
  for (int j = 0; j < kQK_K / 32; ++j) {
    if (j < 4) {
      scales_out[j] = ls[j];
      scales_out[j + 4] = lm[j];
    } else {
      scales_out[j + 4] = static_cast<uint8_t>((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
      scales_out[j - 4] = static_cast<uint8_t>(scales_out[j - 4] | ((ls[j] >> 4) << 6));
      scales_out[j] = static_cast<uint8_t>(scales_out[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// The final levels 0..nmax against the packed scales and the f16 super-scales.
void requantize_k_levels(const float* x, int nmax, const uint8_t* scales, uint16_t d_bits, uint16_t dmin_bits,
                         uint8_t* levels) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, scales, &sc, &m);
    const float d = fp16_to_fp32(d_bits) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(dmin_bits) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      levels[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

// Without importance: make_qkx2_quants per sub-block (weights av_x + |x|), the scales and mins
// rounded to 6 bits against their maxima. Returns the levels (0..nmax) of the 256 elements.
void quantize_k_scales(const float* x, int nmax, float rmin, int nstep, uint8_t* scales_out, uint16_t* d_out,
                       uint16_t* dmin_out, uint8_t* levels) {
  float scales[kQK_K / 32], mins[kQK_K / 32], weights[32];
  uint8_t levels_aux[32], ls[kQK_K / 32], lm[kQK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float av_x = std::sqrt(sum_of_squares(x + 32 * j, 32) / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, levels + 32 * j, &mins[j], levels_aux, rmin, 0.1f,
                                 nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    ls[j] =
        static_cast<uint8_t>(std::min(63, static_cast<int>(static_cast<uint8_t>(nearest_int(inv_scale * scales[j])))));
    lm[j] = static_cast<uint8_t>(std::min(63, static_cast<int>(static_cast<uint8_t>(nearest_int(inv_min * mins[j])))));
  }
  pack_k_scales(ls, lm, scales_out);
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  requantize_k_levels(x, nmax, scales_out, *d_out, *dmin_out, levels);
}

// With importance (ggml's quantize_row_q4_K_impl / q5_K_impl): make_qkx3 per sub-block with the
// importance weights, then the 8 scales and the 8 mins each quantized to 6 bits by make_qp,
// weighted by the sub-blocks' total weights. ggml clamps the codes to 63 for Q5_K only
// (`clamp_codes`); they exceed 63 only for degenerate blocks.
void quantize_k_scales_weighted(const float* x, const float* importance, int nmax, bool clamp_codes,
                                uint8_t* scales_out, uint16_t* d_out, uint16_t* dmin_out, uint8_t* levels) {
  const float sigma2 = super_block_sigma2(x, 2.0f);
  float scales[kQK_K / 32], mins[kQK_K / 32], weights[32], sub_block_weight[kQK_K / 32];
  uint8_t levels_aux[32], ls[kQK_K / 32], lm[kQK_K / 32];
  for (int j = 0; j < kQK_K / 32; ++j) {
    importance_weights(x + 32 * j, importance + 32 * j, sigma2, 32, weights);
    sub_block_weight[j] = sum_of(weights, 32);
    scales[j] =
        make_qkx3_quants(32, nmax, x + 32 * j, weights, levels + 32 * j, &mins[j], levels_aux, -0.9f, 0.05f, 36, false);
  }
  const float d = make_qp_quants(kQK_K / 32, 63, scales, ls, sub_block_weight);
  const float dmin = make_qp_quants(kQK_K / 32, 63, mins, lm, sub_block_weight);
  if (clamp_codes) {
    for (int j = 0; j < kQK_K / 32; ++j) {
      ls[j] = std::min<uint8_t>(63, ls[j]);
      lm[j] = std::min<uint8_t>(63, lm[j]);
    }
  }
  pack_k_scales(ls, lm, scales_out);
  *d_out = fp32_to_fp16(d);
  *dmin_out = fp32_to_fp16(dmin);
  requantize_k_levels(x, nmax, scales_out, *d_out, *dmin_out, levels);
}

// --- Q6_K ---

// make_qx per 16 elements (weights x², or the importance itself, as ggml's q6_K_impl uses it),
// the 16 scales rounded to int8 against their extreme. `importance` is this super-block's or null.
void quantize_q6_k_block(const float* x, const float* importance, BlockQ6_K& y) {
  int8_t levels[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const float* weights = importance != nullptr ? importance + 16 * ib : nullptr;
    const float scale = make_qx_quants(16, 32, x + 16 * ib, levels + 16 * ib, weights);
    scales[ib] = scale;
    const float abs_scale = std::fabs(scale);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scale;
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  const float iscale = -128.0f / max_scale;
  y.d = fp32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    y.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * static_cast<float>(y.scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      levels[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
    }
  }
  uint8_t* ql = y.ql;
  uint8_t* qh = y.qh;
  for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = levels[j + l] & 0x0F, q2 = levels[j + l + 32] & 0x0F, q3 = levels[j + l + 64] & 0x0F,
                q4 = levels[j + l + 96] & 0x0F;
      ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2) |
                                   ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6));
    }
  }
}

}  // namespace

// Each super-block b of the row uses importance[256·b ...] when importance is given.

void quantize_row_q2_k(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ2_K*>(dst);
  uint8_t levels[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    if (importance != nullptr) {
      quantize_q2_k_block_weighted(x, importance + kQK_K * b, y[b], levels);
    } else {
      quantize_q2_k_block(x, y[b], levels);
    }
    pack_2bit_planes(levels, y[b].qs);
  }
}

void quantize_row_q3_k(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ3_K*>(dst);
  int8_t levels[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    if (importance != nullptr) {
      quantize_q3_k_block_weighted(x, importance + kQK_K * b, y[b], levels);
    } else {
      quantize_q3_k_block(x, y[b], levels);
    }
  }
}

void quantize_row_q4_k(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  uint8_t levels[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    if (importance != nullptr) {
      quantize_k_scales_weighted(x, importance + kQK_K * b, 15, false, y[b].scales, &y[b].d, &y[b].dmin, levels);
    } else {
      quantize_k_scales(x, 15, -1.0f, 20, y[b].scales, &y[b].d, &y[b].dmin, levels);
    }
    uint8_t* q = y[b].qs;
    for (int j = 0; j < kQK_K; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(levels[j + l] | (levels[j + l + 32] << 4));
    }
  }
}

void quantize_row_q5_k(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ5_K*>(dst);
  uint8_t levels[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    if (importance != nullptr) {
      quantize_k_scales_weighted(x, importance + kQK_K * b, 31, true, y[b].scales, &y[b].d, &y[b].dmin, levels);
    } else {
      quantize_k_scales(x, 31, -0.5f, 15, y[b].scales, &y[b].d, &y[b].dmin, levels);
    }
    uint8_t* qh = y[b].qh;
    uint8_t* ql = y[b].qs;
    std::memset(qh, 0, kQK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n64 = 0; n64 < kQK_K; n64 += 64, ql += 32) {
      for (int j = 0; j < 32; ++j) {
        int l1 = levels[n64 + j];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= m1;
        }
        int l2 = levels[n64 + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= m2;
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
    }
  }
}

void quantize_row_q6_k(const float* x, void* dst, int64_t n, const float* importance) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    quantize_q6_k_block(x, importance != nullptr ? importance + kQK_K * b : nullptr, y[b]);
  }
}

}  // namespace ember
