// Reference dot products of a weight row (packed blocks) with an activation row already quantized
// to the weight type's vec_dot_type: the spec the SIMD matmul kernels are tested against. The
// 32-element formats use integer sums per block scaled by both block scales, as ggml's scalar
// path does; the K/IQ4_XS formats dequantize one super-block at a time and accumulate in float.

#include "quant/vec_dot.h"
#include "quant/block_iq4.h"
#include "quant/block_k.h"
#include "quant/block_legacy.h"
#include "quant/dequantize.h"
#include "quant/fp16.h"

namespace ember {
namespace {

// Super-block formats against Q8_K: dequantize 256 weights, multiply by the activation's int8
// values, scale once by the activation's d.
float dot_super_blocks_q8_k(int64_t n, const void* x, size_t block_bytes, DequantizeRowFn dequant, const void* y) {
  const auto* xb = static_cast<const std::byte*>(x);
  const auto* yb = static_cast<const BlockQ8_K*>(y);
  float weights[kQK_K];
  float sum = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    dequant(xb + b * block_bytes, weights, kQK_K);
    float block_sum = 0;
    for (int j = 0; j < kQK_K; ++j) block_sum += weights[j] * static_cast<float>(yb[b].qs[j]);
    sum += block_sum * yb[b].d;
  }
  return sum;
}

// Plain (non-block) types: element products in float, accumulated in double as ggml does.
template <typename T, typename ToFloat>
float dot_plain(int64_t n, const void* x, const void* y, ToFloat to_float) {
  const auto* a = static_cast<const T*>(x);
  const auto* b = static_cast<const T*>(y);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_float(a[i]) * to_float(b[i]));
  return static_cast<float>(sum);
}

}  // namespace

float vec_dot_f32(int64_t n, const void* x, const void* y) {
  return dot_plain<float>(n, x, y, [](float v) { return v; });
}
float vec_dot_f16(int64_t n, const void* x, const void* y) { return dot_plain<uint16_t>(n, x, y, fp16_to_fp32); }
float vec_dot_bf16(int64_t n, const void* x, const void* y) { return dot_plain<uint16_t>(n, x, y, bf16_to_fp32); }

float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockQ4_0*>(x);
  const auto* yb = static_cast<const BlockQ8_0*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      sumi += ((xb[b].qs[j] & 0x0F) - 8) * yb[b].qs[j] + ((xb[b].qs[j] >> 4) - 8) * yb[b].qs[j + kQK4_0 / 2];
    }
    sum += static_cast<float>(sumi) * (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d));
  }
  return sum;
}

float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockQ4_1*>(x);
  const auto* yb = static_cast<const BlockQ8_1*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      sumi += (xb[b].qs[j] & 0x0F) * yb[b].qs[j] + (xb[b].qs[j] >> 4) * yb[b].qs[j + kQK4_1 / 2];
    }
    // x = d*q + m, so x.y = d_x d_y Σq·q_y + m_x Σy, and Q8_1 carries s = d_y Σq_y.
    sum += (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(xb[b].m) * fp16_to_fp32(yb[b].s);
  }
  return sum;
}

float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockQ5_0*>(x);
  const auto* yb = static_cast<const BlockQ8_0*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    const uint32_t qh = q5_high_bits(xb[b].qh);
    int sumi = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      sumi += (((xb[b].qs[j] & 0x0F) | h0) - 16) * yb[b].qs[j] +
              (((xb[b].qs[j] >> 4) | h1) - 16) * yb[b].qs[j + kQK5_0 / 2];
    }
    sum += (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d)) * static_cast<float>(sumi);
  }
  return sum;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockQ5_1*>(x);
  const auto* yb = static_cast<const BlockQ8_1*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    const uint32_t qh = q5_high_bits(xb[b].qh);
    int sumi = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      sumi += ((xb[b].qs[j] & 0x0F) | h0) * yb[b].qs[j] + ((xb[b].qs[j] >> 4) | h1) * yb[b].qs[j + kQK5_1 / 2];
    }
    sum += (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(xb[b].m) * fp16_to_fp32(yb[b].s);
  }
  return sum;
}

float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockQ8_0*>(x);
  const auto* yb = static_cast<const BlockQ8_0*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += xb[b].qs[j] * yb[b].qs[j];
    sum += static_cast<float>(sumi) * (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d));
  }
  return sum;
}

float vec_dot_iq4_nl_q8_0(int64_t n, const void* x, const void* y) {
  const auto* xb = static_cast<const BlockIQ4_NL*>(x);
  const auto* yb = static_cast<const BlockQ8_0*>(y);
  float sum = 0;
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      sumi += kIQ4Values[xb[b].qs[j] & 0x0F] * yb[b].qs[j] + kIQ4Values[xb[b].qs[j] >> 4] * yb[b].qs[j + kQK4_NL / 2];
    }
    sum += (fp16_to_fp32(xb[b].d) * fp16_to_fp32(yb[b].d)) * static_cast<float>(sumi);
  }
  return sum;
}

float vec_dot_q2_k_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockQ2_K), dequantize_row_q2_k, y);
}
float vec_dot_q3_k_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockQ3_K), dequantize_row_q3_k, y);
}
float vec_dot_q4_k_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockQ4_K), dequantize_row_q4_k, y);
}
float vec_dot_q5_k_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockQ5_K), dequantize_row_q5_k, y);
}
float vec_dot_q6_k_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockQ6_K), dequantize_row_q6_k, y);
}
float vec_dot_iq4_xs_q8_k(int64_t n, const void* x, const void* y) {
  return dot_super_blocks_q8_k(n, x, sizeof(BlockIQ4_XS), dequantize_row_iq4_xs, y);
}

}  // namespace ember
