// kQuantTraits: one row per supported tensor type with its reference kernels. Tests iterate the
// table, so a type added here is covered by every table-driven test on day one.
#pragma once

#include <cstdint>
#include <span>

#include "ember/dtype.h"
#include "quant/dequantize.h"
#include "quant/vec_dot.h"

namespace ember {

// Converts `n` floats (a multiple of the block size) to packed blocks; `importance` is nullptr or
// `n` per-column weights, and then `n` is exactly one row (see quant/quantize.h).
using QuantizeRowFn = void (*)(const float* x, void* dst, int64_t n, const float* importance);

struct QuantTraits {
  DType dtype;
  DequantizeRowFn to_float;
  QuantizeRowFn from_float;  // nullptr for a type without a quantizer
  VecDotFn vec_dot;          // weights of this type . activations of vec_dot_type; nullptr when the
  DType vec_dot_type;        // type is only an activation format (Q8_1, Q8_K)
};

// Every type ember can dequantize, in DType id order.
std::span<const QuantTraits> quant_traits_table() noexcept;

// The row for `dtype`, or nullptr when ember has no kernels for it (e.g. IQ2_XXS today).
const QuantTraits* find_quant_traits(DType dtype) noexcept;

// Quantizes `n` floats to `dtype` without importance; throws Error(kUnsupported) for a type without
// a quantizer and Error(kInvalidArgument) when n is not a multiple of the block size.
void quantize(DType dtype, const float* x, void* dst, int64_t n);

// Quantizes `n_rows` rows of `row_len` floats (contiguous) to `dtype`, each row to
// dtype_bytes_for(dtype, row_len) bytes at dst. `importance` is nullptr (the same result as
// quantize()) or `row_len` non-negative per-column weights shared by all rows (an imatrix entry);
// types without a weighted path ignore it. Throws Error(kUnsupported) for a type without a quantizer
// and Error(kInvalidArgument) for negative sizes, a row_len that is not whole blocks, or an
// importance value that is negative, NaN or infinite.
void quantize_rows(DType dtype, const float* x, void* dst, int64_t n_rows, int64_t row_len,
                   const float* importance = nullptr);

// Dequantizes `n` elements of `dtype`; throws Error(kUnsupported) for a type without kernels and
// Error(kInvalidArgument) when n is not a multiple of the block size.
void dequantize(DType dtype, const void* src, float* y, int64_t n);

}  // namespace ember
