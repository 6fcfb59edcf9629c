// What the per-architecture config readers share: typed access to "<arch>.<key>" metadata with
// errors that name the key, and the hyper-parameters every Llama-like model has.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"
#include "model/model_config.h"

namespace ember {

class ArchReader {
 public:
  // Metadata from the first part of `model`, tensors from any part.
  ArchReader(const GgufModelFiles& model, std::string_view arch)
      : model_(model), file_(model.metadata_file()), arch_(arch) {}

  const GgufFile& file() const noexcept { return file_; }
  bool has_tensor(std::string_view name) const noexcept { return model_.find_tensor(name) != nullptr; }
  std::string key(std::string_view suffix) const;

  // "<arch>.<suffix>" as an integer in [min, max]; required, or `fallback` when absent.
  int32_t count(std::string_view suffix, int64_t min, int64_t max) const;
  int32_t count_or(std::string_view suffix, int32_t fallback, int64_t min, int64_t max) const;
  // "<arch>.<suffix>" as a finite float > 0; required, or `fallback` when absent.
  float positive(std::string_view suffix) const;
  float positive_or(std::string_view suffix, float fallback) const;
  std::optional<float> optional_float(std::string_view suffix) const;
  std::optional<std::string_view> optional_string(std::string_view suffix) const;

  // Dimensions, heads, norm epsilon, rope (base, dims, linear / yarn / llama3 scaling from the
  // keys and the rope_freqs tensor), context length, vocabulary size and tied output: what Llama,
  // Qwen and most others share. Architecture readers then set their traits.
  void read_common(ModelConfig& config, std::string_view norm_eps_key = "attention.layer_norm_rms_epsilon") const;

  // The mixture-of-experts keys into config.moe: expert_count (up to 512), expert_used_count; each
  // expert's width from expert_feed_forward_length (0 or absent: llama.cpp's n_ff / n_used) when
  // `width_from_key`, else n_ff (Mixtral: llama.cpp reads no width key for llama files).
  // `norm_weights` is the architecture's rule (llama.cpp's graph of it).
  void read_experts(ModelConfig& config, bool norm_weights, bool width_from_key) const;

  // An F32 tensor of n finite values > 0 (rope frequency factors), or empty when the file has none.
  std::vector<float> factors(std::string_view tensor, int64_t n) const;

 private:
  const GgufModelFiles& model_;
  const GgufFile& file_;
  std::string arch_;
};

// The Gemma family's shared traits: GeGLU (tanh GELU), embeddings scaled by sqrt(n_embd), neox rope.
void read_gemma_family(const ArchReader& r, ModelConfig& config);

// DeepSeek's experts (deepseek, deepseek2): read_experts with the width from its key, the leading
// dense layers (leading_dense_block_count, default 0) and expert_shared_count shared experts.
void read_deepseek_experts(const ArchReader& r, ModelConfig& config, bool norm_weights);

#define EMBER_ARCH(id, gguf_name, reader) void reader(const ArchReader& r, ModelConfig& config);
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH

}  // namespace ember
