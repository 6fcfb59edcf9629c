// OpsTable: the elementwise / row ops one ISA translation unit exports (the contract and shapes of
// every op). Like isa_kernel.h this header holds plain data and function-pointer types only, so
// the ISA units (ops_avx2.cpp, ops_avx512.cpp) can include it without emitting AVX code for any
// inline function another unit could link to.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

namespace detail {
[[noreturn]] void check_failed(const char* condition, const char* file, int line, const char* message) noexcept;
}  // namespace detail

// EMBER_CHECK for the ops' argument checks (core/check.h pulls in fmt, whose inline code ISA units
// must not include). Bad shapes are caller bugs: checked once per call, outside the loops.
#define EMBER_OPS_CHECK(cond)                                       \
  do {                                                              \
    if (!(cond)) [[unlikely]]                                       \
      ::ember::detail::check_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)

// Conventions for every op: pointers need float (4-byte) alignment only; sizes are element counts;
// an output may be the very same array as an input (in place) but must not partially overlap one;
// n = 0 does nothing. Ops are single-threaded over one call: the backend splits rows or tokens
// across its ThreadPool. They never allocate, never throw, and assume finite inputs (NaN/inf in
// gives unspecified values out; softmax takes -inf entries, as attention masks write, if one entry
// is finite). Shape preconditions are EMBER_OPS_CHECKed.

// y[i] = x[i] / sqrt(mean(x²) + eps) · w[i]. x, w, y: [n]; w = nullptr means no weight.
using RmsNormFn = void (*)(const float* x, const float* w, float* y, int64_t n, float eps);

// The Q8_0 blocks of rms_norm(x, w, eps) written straight to dst (n/32 blocks of 34 bytes, 2-byte
// aligned). n is a multiple of 32. Byte-identical to the same table's rms_norm followed by
// quantize_row[Q8_0] (the activation quantizer of the matmuls), without the float row in memory.
using RmsNormQ8_0Fn = void (*)(const float* x, const float* w, void* dst, int64_t n, float eps);

// y[i] = (x[i] - mean) / sqrt(var + eps) · w[i] + b[i] with var the biased variance of the row.
// x, w, b, y: [n]; w and b may each be nullptr (weight 1, bias 0).
using LayerNormFn = void (*)(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

// Rotary embedding in place. x holds n_tokens rows, token_stride floats apart (>= n_head·head_dim;
// a fused QKV row passes its Q or K part); each row starts with n_head heads of head_dim floats.
// The first n_rot dims of each head are rotated (n_rot even, <= head_dim; the rest untouched):
//   normal (neox = false): pairs (x[2i], x[2i+1]);  neox: pairs (x[i], x[i + n_rot/2]); i < n_rot/2,
//   (a, b) -> (a·cos - b·sin, a·sin + b·cos).
// cos_sin: [n_tokens][n_rot], the per-token row RopeTable::cos_sin writes (mscale folded in):
//   normal: cos_0, sin_0, cos_1, sin_1, ...;  neox: cos_0 .. cos_{n_rot/2-1}, sin_0 .. sin_{n_rot/2-1}.
using RopeFn = void (*)(float* x, int64_t n_tokens, int64_t token_stride, int64_t n_head, int64_t head_dim,
                        int64_t n_rot, bool neox, const float* cos_sin);

// y = softmax(z) over the row with z[i] = scale·x[i], then soft-capped when softcap > 0:
// z[i] = softcap·tanh(z[i] / softcap) (Gemma 2). Masked entries x[i] = -inf stay -inf (probability
// 0) through the cap; at least one entry must be finite. x, y: [n].
using SoftmaxFn = void (*)(const float* x, float* y, int64_t n, float scale, float softcap);

// Elementwise y[i] = f(x[i]): exp, tanh, silu (x·sigmoid(x)), gelu (tanh approximation, as
// llama.cpp and Gemma), gelu_erf (exact, 0.5·x·erfc(-x/√2)). x, y: [n].
using UnaryFn = void (*)(const float* x, float* y, int64_t n);

// Gated linear units y[i] = act(g[i]) · u[i] (swiglu: silu, geglu: gelu tanh, geglu_erf: gelu erf).
// g, u, y: [n]; a fused [gate|up] row of 2n floats passes g = row, u = row + n.
using GluFn = void (*)(const float* g, const float* u, float* y, int64_t n);

// y = a ∘ b (add or mul) over n_rows rows of n_cols: a and y are [n_rows][n_cols] contiguous; b's
// rows are b_stride floats apart, and b_stride = 0 broadcasts its one row to every row of a.
using BinaryFn = void (*)(const float* a, const float* b, float* y, int64_t n_rows, int64_t n_cols, int64_t b_stride);

// y[i] = s · x[i]. x, y: [n].
using ScaleFn = void (*)(const float* x, float* y, int64_t n, float s);

// The index of the largest x[i] (the lowest such index on ties), NaNs never chosen (0 when every
// element is NaN); -1 when n = 0.
using ArgmaxFn = int64_t (*)(const float* x, int64_t n);

// The k largest of x[0..n) (0 <= k <= n <= INT32_MAX) as values[k] and indices[k], sorted by value
// descending, equal values by lower index first. The row is never sorted: it is compared against the
// k-th best so far (SIMD) and only elements that beat it enter a k-heap held in values/indices (no
// other memory), which is sorted at the end: O(n + m log k + k log k) for m heap entries.
using TopKFn = void (*)(const float* x, int64_t n, int64_t k, float* values, int32_t* indices);

// One row of `dtype` blocks (n elements, a multiple of the block size) to floats: the ISA's version
// of QuantTraits::to_float, equal to it bit for bit.
using ToFloatFn = void (*)(const void* src, float* y, int64_t n);
struct IsaToFloat {
  uint32_t dtype;  // DType id
  ToFloatFn to_float;
};

// Every single-function op of the table: X(type, name). ops.cpp merges tables field by field.
#define EMBER_CPU_OPS(X)          \
  X(RmsNormFn, rms_norm)          \
  X(RmsNormQ8_0Fn, rms_norm_q8_0) \
  X(LayerNormFn, layer_norm)      \
  X(RopeFn, rope)                 \
  X(SoftmaxFn, softmax)           \
  X(UnaryFn, exp)                 \
  X(UnaryFn, tanh)                \
  X(UnaryFn, silu)                \
  X(UnaryFn, gelu)                \
  X(UnaryFn, gelu_erf)            \
  X(GluFn, swiglu)                \
  X(GluFn, geglu)                 \
  X(GluFn, geglu_erf)             \
  X(BinaryFn, add)                \
  X(BinaryFn, mul)                \
  X(ScaleFn, scale)               \
  X(ArgmaxFn, argmax)             \
  X(TopKFn, top_k)

// The single-function ops, one field each; nullptr in an ISA unit's table keeps the entry below it
// (scalar, then avx2).
struct OpsFns {
#define EMBER_OPS_FIELD(type, name) type name;
  EMBER_CPU_OPS(EMBER_OPS_FIELD)
#undef EMBER_OPS_FIELD
};

// What one unit exports.
struct OpsTable {
  OpsFns fns;
  const IsaToFloat* to_float;  // n_to_float row converters by dtype (the scalar unit: none)
  size_t n_to_float;
};

const OpsTable& scalar_ops();
const OpsTable& avx2_ops();
const OpsTable& avx512_ops();

}  // namespace ember
