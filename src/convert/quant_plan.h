// Quantization plan: the type each tensor of a model gets for a FileType — llama.cpp's per-tensor
// mixes (Q4_K_M keeps attn_v/ffn_down at Q6_K in part of the layers, ...), reproduced so that
// `ember quantize` writes the files users know, plus the fallbacks for rows that do not fit a block.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "convert/file_type.h"
#include "ember/dtype.h"

namespace ember {

struct QuantizeOptions {
  FileType file_type = FileType::kQ4_K_M;
  bool pure = false;                          // every quantizable tensor gets the base type
  std::optional<DType> output_type;           // output.weight (and tied token_embd) override
  std::optional<DType> token_embedding_type;  // token_embd.weight override
  bool allow_requantize = false;              // accept already-quantized input tensors
};

// What the mixes need to know about the model (from its GGUF metadata).
struct ModelFacts {
  std::string arch;  // general.architecture
  int n_layer = 0;   // {arch}.block_count (0: unknown, counted from the tensor names)
  int n_head = 0;    // {arch}.attention.head_count, layer 0's when per layer (0: unknown)
  int n_head_kv = 0;
  int n_expert = 0;  // {arch}.expert_count (0: dense)
  int n_gqa() const noexcept { return n_head > 0 && n_head_kv > 0 ? n_head / n_head_kv : 1; }
};

struct TensorSource {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the row length
};

struct TensorPlan {
  std::string name;
  std::vector<int64_t> shape;
  DType from;
  DType to;  // == from: copied unchanged
  uint64_t from_bytes = 0;
  uint64_t to_bytes = 0;
  uint64_t n_elements = 0;
  std::string note;  // why a tensor did not get the type the mix asked for (empty when it did)
  bool converted() const noexcept { return to != from; }
  // Values per row: shape[0], or 1 for a 0-dimensional tensor (one value).
  int64_t row_length() const noexcept { return shape.empty() ? 1 : shape[0]; }
};

struct QuantPlan {
  std::vector<TensorPlan> tensors;  // in source order
  uint64_t from_bytes = 0;
  uint64_t to_bytes = 0;
  uint64_t n_elements = 0;
  int n_fallback = 0;  // tensors whose row length forced another type
};

// The plan for `tensors` (in file order). Throws Error(kInvalidArgument) for an input that cannot be
// quantized as asked: an already-quantized tensor without allow_requantize, a type ember cannot
// read, an override type without a quantizer.
QuantPlan plan_quantization(std::span<const TensorSource> tensors, const ModelFacts& model,
                            const QuantizeOptions& options);

// The general.quantization_version ggml's block layouts have (GGML_QNT_VERSION).
inline constexpr uint32_t kQuantizationVersion = 2;

// "2048 x 512": a shape in ggml order for messages.
std::string shape_text(std::span<const int64_t> shape);
// Dimensions not counting trailing 1s (ggml_n_dims): a [256, 1] tensor is a vector.
size_t effective_n_dims(std::span<const int64_t> shape);

// Whether llama.cpp would quantize a tensor of this name and rank at all (norms, 1-D tensors,
// position embeddings, MoE routers... stay as they are).
bool is_quantizable_tensor(std::string_view name, size_t n_dims);

}  // namespace ember
