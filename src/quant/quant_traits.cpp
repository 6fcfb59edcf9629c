// The kQuantTraits table and the checked quantize() / quantize_rows() / dequantize() entry points.
#include "quant/quant_traits.h"

#include <cmath>
#include <cstddef>

#include "core/check.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"
#include "quant/vec_dot.h"

namespace ember {
namespace {

constexpr QuantTraits kQuantTraits[] = {
    {DType::kF32, dequantize_row_f32, quantize_row_f32, vec_dot_f32, DType::kF32},
    {DType::kF16, dequantize_row_f16, quantize_row_f16, vec_dot_f16, DType::kF16},
    {DType::kQ4_0, dequantize_row_q4_0, quantize_row_q4_0, vec_dot_q4_0_q8_0, DType::kQ8_0},
    {DType::kQ4_1, dequantize_row_q4_1, quantize_row_q4_1, vec_dot_q4_1_q8_1, DType::kQ8_1},
    {DType::kQ5_0, dequantize_row_q5_0, quantize_row_q5_0, vec_dot_q5_0_q8_0, DType::kQ8_0},
    {DType::kQ5_1, dequantize_row_q5_1, quantize_row_q5_1, vec_dot_q5_1_q8_1, DType::kQ8_1},
    {DType::kQ8_0, dequantize_row_q8_0, quantize_row_q8_0, vec_dot_q8_0_q8_0, DType::kQ8_0},
    {DType::kQ8_1, dequantize_row_q8_1, quantize_row_q8_1, nullptr, DType::kQ8_1},
    {DType::kQ2_K, dequantize_row_q2_k, quantize_row_q2_k, vec_dot_q2_k_q8_k, DType::kQ8_K},
    {DType::kQ3_K, dequantize_row_q3_k, quantize_row_q3_k, vec_dot_q3_k_q8_k, DType::kQ8_K},
    {DType::kQ4_K, dequantize_row_q4_k, quantize_row_q4_k, vec_dot_q4_k_q8_k, DType::kQ8_K},
    {DType::kQ5_K, dequantize_row_q5_k, quantize_row_q5_k, vec_dot_q5_k_q8_k, DType::kQ8_K},
    {DType::kQ6_K, dequantize_row_q6_k, quantize_row_q6_k, vec_dot_q6_k_q8_k, DType::kQ8_K},
    {DType::kQ8_K, dequantize_row_q8_k, quantize_row_q8_k, nullptr, DType::kQ8_K},
    {DType::kIQ4_NL, dequantize_row_iq4_nl, quantize_row_iq4_nl, vec_dot_iq4_nl_q8_0, DType::kQ8_0},
    {DType::kIQ4_XS, dequantize_row_iq4_xs, quantize_row_iq4_xs, vec_dot_iq4_xs_q8_k, DType::kQ8_K},
    {DType::kBF16, dequantize_row_bf16, quantize_row_bf16, vec_dot_bf16, DType::kBF16},
};

}  // namespace

std::span<const QuantTraits> quant_traits_table() noexcept { return kQuantTraits; }

const QuantTraits* find_quant_traits(DType dtype) noexcept {
  for (const QuantTraits& t : kQuantTraits) {
    if (t.dtype == dtype) return &t;
  }
  return nullptr;
}

namespace {

void check_whole_blocks(DType dtype, int64_t n) {
  const uint32_t block = dtype_traits(dtype).block_size;
  if (n < 0 || n % block != 0) {
    fail(ErrorCode::kInvalidArgument, "{} elements of type {} are not whole blocks of {}", n, dtype_name(dtype), block);
  }
}

const QuantTraits& quantizer_for(DType dtype) {
  const QuantTraits* traits = find_quant_traits(dtype);
  if (traits == nullptr || traits->from_float == nullptr) {
    fail(ErrorCode::kUnsupported, "no quantization kernel for type {} yet", dtype_name(dtype));
  }
  return *traits;
}

// Importance weights must be finite and >= 0: a negative weight would reward error, and NaN/Inf
// turn every weighted sum of the block into NaN.
void check_importance(const float* importance, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if (!(importance[j] >= 0.0f) || std::isinf(importance[j])) {
      fail(ErrorCode::kInvalidArgument, "importance[{}] = {} is not a finite non-negative weight", j, importance[j]);
    }
  }
}

}  // namespace

void quantize(DType dtype, const float* x, void* dst, int64_t n) {
  const QuantTraits& traits = quantizer_for(dtype);
  check_whole_blocks(dtype, n);
  traits.from_float(x, dst, n, nullptr);
}

void quantize_rows(DType dtype, const float* x, void* dst, int64_t n_rows, int64_t row_len, const float* importance) {
  const QuantTraits& traits = quantizer_for(dtype);
  if (n_rows < 0) fail(ErrorCode::kInvalidArgument, "negative row count {}", n_rows);
  check_whole_blocks(dtype, row_len);
  if (importance != nullptr) check_importance(importance, row_len);
  // Row by row: with importance the weighted paths need exactly one row per call (per-row sigma2).
  const uint64_t row_bytes = *dtype_bytes_for(dtype, static_cast<uint64_t>(row_len));
  auto* out = static_cast<std::byte*>(dst);
  for (int64_t r = 0; r < n_rows; ++r) {
    traits.from_float(x + r * row_len, out + static_cast<uint64_t>(r) * row_bytes, row_len, importance);
  }
}

void dequantize(DType dtype, const void* src, float* y, int64_t n) {
  const QuantTraits* traits = find_quant_traits(dtype);
  if (traits == nullptr) fail(ErrorCode::kUnsupported, "no dequantization kernel for type {}", dtype_name(dtype));
  check_whole_blocks(dtype, n);
  traits->to_float(src, y, n);
}

}  // namespace ember
