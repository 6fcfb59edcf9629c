// Latent attention's per-head matrices (MlaConfig) from the older GGUF layout's merged attn_kv_b,
// for every backend: v_b[h] is a view of its rows, k_b[h] a transposed copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu/matmul.h"
#include "ember/tensor_view.h"
#include "model/model_config.h"

namespace ember {

// The type transposed_k_b() gives a copy of rows of `src`, nope_dim values wide: F32 and F16 keep
// theirs, other types are requantized to Q8_0 (F32 when nope_dim is not a whole number of blocks).
DType transposed_k_b_type(DType src, int64_t nope_dim);

// Head h's k_b from a merged attn_kv_b: its nope_dim rows of W_UK (each kv_lora_rank values),
// transposed into kv_lora_rank rows of nope_dim, in transposed_k_b_type (F32 and F16: exact, the
// values are only moved; others dequantized and requantized, what llama.cpp's quantizer would give a
// 128-wide matrix, so the copy costs about the file's bytes). The bytes go to `out`, which the
// returned matrix points into.
WeightMatrix transposed_k_b(const TensorView& kv_b, const MlaConfig& mla, int64_t h, std::vector<std::byte>& out);

// Head h's v_b in a merged attn_kv_b: its v_dim rows of W_UV (each kv_lora_rank values), a view.
WeightMatrix merged_v_b(const TensorView& kv_b, const MlaConfig& mla, int64_t h);

}  // namespace ember
