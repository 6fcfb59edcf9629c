// deepseek2: DeepSeek V2 / V2-Lite / V3 / R1 and models converted like them (Kimi K2, ...). Multi-head
// latent attention (MlaConfig) in the layout llama.cpp's converter writes since April 2025 (attn_k_b /
// attn_v_b, attention.key_length_mla / value_length_mla); DeepSeek's experts (read_deepseek_experts)
// with the file's gating, norm, weight scale, selection bias and expert groups. The attention scale
// and YaRN magnitude follow llama.cpp's deepseek2 graph: the rope itself is not rescaled (when the
// file has yarn_log_multiplier), and q·k is scaled by mscale² / sqrt(key_length_mla).
#include <cmath>

#include "model/arch/arch_reader.h"

namespace ember {
namespace {

void read_latent_attention(const ArchReader& r, ModelConfig& c) {
  const std::string& name = r.file().name();
  if (!r.file().contains(r.key("attention.key_length_mla")) || r.has_tensor("blk.0.attn_kv_b.weight")) {
    fail(ErrorCode::kUnsupported,
         "{}: a deepseek2 file in the layout before llama.cpp's multi-head latent attention (attn_kv_b, no {}); "
         "convert the model again with a llama.cpp from after April 2025",
         name, r.key("attention.key_length_mla"));
  }
  MlaConfig& mla = c.mla;
  mla.kv_lora_rank = r.count("attention.kv_lora_rank", 1, 1 << 16);
  // "Lite" models project q straight from x (llama.cpp decides by the tensor too).
  mla.q_lora_rank = r.has_tensor("blk.0.attn_q.weight") ? 0 : r.count("attention.q_lora_rank", 1, 1 << 16);
  const int32_t key_mla = r.count("attention.key_length_mla", 2, 1 << 16);
  mla.v_dim = r.count("attention.value_length_mla", 1, 1 << 16);
  const int32_t n_rot = static_cast<int32_t>(c.rope.n_rot);
  mla.nope_dim = key_mla - n_rot;
  if (mla.nope_dim <= 0 || c.n_head_kv != 1 || c.head_dim != mla.kv_lora_rank + n_rot ||
      c.head_dim_v != mla.kv_lora_rank) {
    fail(ErrorCode::kFormat,
         "{}: latent attention sizes do not fit: key_length {} (kv_lora_rank {} + rope {}), value_length {}, "
         "key_length_mla {}, head_count_kv {} (1)",
         name, c.head_dim, mla.kv_lora_rank, n_rot, c.head_dim_v, key_mla, c.n_head_kv);
  }
  c.head_dim_v = c.head_dim;  // the cached value row is the key row: [latent | k_pe], the latent used

  // llama.cpp's YaRN for deepseek2: s = the scaling factor; the file stores 0.1 · mscale_all_dim.
  RopeParams& rope = c.rope;
  const double log_s = std::log(1.0 / static_cast<double>(rope.freq_scale));
  // (llama.cpp tests the value: 0 is as absent.)
  const std::optional<float> key_mul = r.optional_float("rope.scaling.yarn_log_multiplier");
  const std::optional<float> log_mul = key_mul && *key_mul != 0.0f ? key_mul : std::nullopt;
  if (rope.ext_factor != 0.0f) {
    rope.beta_fast = 32.0f;  // (deepseek2 reads no beta keys)
    rope.beta_slow = 1.0f;
    const double yarn_factor = log_mul || log_s <= 0.0 ? 1.0 : 1.0 + 0.1 * log_s;
    rope.attn_factor = static_cast<float>(rope.attn_factor * yarn_factor / (1.0 + 0.1 * log_s));
  }
  const double m = log_mul ? *log_mul / 0.1 : 0.0;
  const double mscale = rope.attn_factor * (1.0 + 0.1 * log_s) * (1.0 + 0.1 * m * log_s);
  c.attn_scale = static_cast<float>(mscale * mscale / std::sqrt(static_cast<double>(key_mla)));
}

void read_deepseek2_routing(const ArchReader& r, ModelConfig& c) {
  MoeConfig& moe = c.moe;
  const std::optional<float> scale = r.optional_float("expert_weights_scale");
  if (scale && *scale < 0.0f) {
    fail(ErrorCode::kFormat, "{}: {} = {} is negative", r.file().name(), r.key("expert_weights_scale"), *scale);
  }
  moe.weights_scale = scale.value_or(0.0f);
  // No key: softmax, but sigmoid for GLM-4.7-Flash's shapes (llama.cpp's rule for its early files).
  const bool glm_flash = (c.n_layer == 47 || c.n_layer == 48) && c.n_vocab == 154880;
  const int32_t gating = r.count_or("expert_gating_func", glm_flash ? 2 : 1, 0, 1000);
  if (gating > 2) {
    fail(ErrorCode::kUnsupported, "{}: {} = {} is not softmax (1) or sigmoid (2)", r.file().name(),
         r.key("expert_gating_func"), gating);
  }
  moe.gating = gating == 2 ? ExpertGating::kSigmoid : ExpertGating::kSoftmax;  // (0: none given, softmax)
  int32_t first_moe = 0;
  while (first_moe < c.n_layer && !c.layer_has_experts(first_moe)) ++first_moe;
  moe.selection_bias = r.has_tensor("blk." + std::to_string(first_moe) + ".exp_probs_b.bias");
  moe.n_group = r.count_or("expert_group_count", 0, 0, moe.n_expert);
  moe.n_group_used = r.count_or("expert_group_used_count", 0, 0, moe.n_expert);
  if (moe.n_group > 1 &&
      (moe.n_expert % moe.n_group != 0 || moe.n_expert / moe.n_group < 2 || moe.n_group_used < 1 ||
       moe.n_group_used >= moe.n_group || moe.n_used > moe.n_group_used * (moe.n_expert / moe.n_group))) {
    fail(ErrorCode::kFormat,
         "{}: {} experts in {} groups, {} groups used, {} experts per token: the groups must split the experts "
         "evenly (two at least each) and leave enough to choose from",
         r.file().name(), moe.n_expert, moe.n_group, moe.n_group_used, moe.n_used);
  }
}

}  // namespace

void read_deepseek2_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  // Mistral Large 3 converts to deepseek2 with a per-position query temperature ember lacks.
  if (r.optional_float("attention.temperature_scale").value_or(0.0f) != 0.0f) {
    fail(ErrorCode::kUnsupported, "{}: {} (a per-position query temperature, Mistral Large 3's) is not supported yet",
         r.file().name(), r.key("attention.temperature_scale"));
  }
  read_latent_attention(r, c);
  const bool norm = r.file().get_optional<bool>(r.key("expert_weights_norm")).value_or(false);
  read_deepseek_experts(r, c, norm);
  read_deepseek2_routing(r, c);
}

}  // namespace ember
