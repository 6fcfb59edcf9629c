// Synthetic models: GGUF files with random weights (N(0, 0.02), norms 1) at the exact shapes of
// real models, with a real vocabulary where one fits, for benchmarks and tests at real sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "convert/model_quantizer.h"

namespace ember {

// Llama 3.x long-context RoPE scaling (rope_type "llama3").
struct Llama3RopeScaling {
  float factor = 32.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_context = 8192;
};

struct SynthPreset {
  std::string_view name;
  std::string_view arch;  // GGUF general.architecture
  int n_layer;
  int n_embd;
  int n_head;
  int n_head_kv;
  int n_ff;
  int n_vocab;
  int context_length;
  float rope_freq_base;
  float rms_norm_eps;
  bool qkv_bias;
  std::optional<Llama3RopeScaling> rope_scaling;
  std::string_view vocab_file;  // a vocab GGUF under ../shared/data whose token count is n_vocab
  std::string_view description;
  int n_expert = 0;  // > 0: every FFN is this many experts (qwen3moe), but the n_dense_lead first
  int n_expert_used = 0;
  int n_ff_expert = 0;  // each expert's width
  // deepseek2: multi-head latent attention (kv_lora_rank > 0; q straight from x, as V2-Lite), the
  // first n_dense_lead layers dense (n_ff), n_expert_shared shared experts of n_ff_expert each.
  int kv_lora_rank = 0;
  int nope_dim = 0;
  int rope_dim = 0;
  int v_dim = 0;
  int n_dense_lead = 0;
  int n_expert_shared = 0;
  int head_dim() const noexcept { return n_embd / n_head; }
};

std::span<const SynthPreset> synth_presets() noexcept;
const SynthPreset* find_synth_preset(std::string_view name) noexcept;  // case-insensitive

struct SynthOptions {
  FileType file_type = FileType::kF16;
  bool all_f32 = false;  // every tensor F32 (overrides file_type)
  uint64_t seed = 1;
  std::optional<std::string> vocab;  // vocab GGUF whose tokenizer.* keys are copied; nullopt: synthetic vocab
};

// Parameters of the preset (tied embeddings: token_embd once).
uint64_t synth_parameter_count(const SynthPreset& preset);

// The tensor plan of the synthetic model (its types follow file_type's llama.cpp mix).
QuantPlan synth_plan(const SynthPreset& preset, const SynthOptions& options);

// Writes the model to `out_path` (temporary file + rename). The weights depend only on the preset,
// the seed and the tensor, not on the thread count. Throws ember::Error (a vocab whose size does
// not match the preset, an unwritable path, ...).
void write_synth_model(const SynthPreset& preset, const SynthOptions& options, const std::string& out_path,
                       int n_threads, const QuantizeProgressFn& progress = {});

// Llama 3 RoPE frequency factors (the rope_freqs.weight tensor llama.cpp reads), head_dim/2 values.
std::vector<float> llama3_rope_factors(const Llama3RopeScaling& scaling, float freq_base, int head_dim);

}  // namespace ember
