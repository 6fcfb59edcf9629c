// deepseek2: DeepSeek V2 / V2-Lite / V3 / R1 and models converted like them (Kimi K2, ...). Multi-head
// latent attention (MlaConfig) in the layout llama.cpp's converter writes since April 2025 (attn_k_b /
// attn_v_b, attention.key_length_mla / value_length_mla) or the earlier one (attn_kv_b); DeepSeek's experts
// (read_deepseek_experts) with the file's gating, norm, weight scale, selection bias and expert groups. The attention
// scale and YaRN magnitude follow llama.cpp's deepseek2 graph: the rope itself is not rescaled (when the file has
// yarn_log_multiplier), and q·k is scaled by mscale² / sqrt(key_length_mla).
#include <cmath>

#include "model/arch/arch_reader.h"

namespace ember {
namespace {

void read_latent_attention(const ArchReader& r, ModelConfig& c) {
  const std::string& name = r.file().name();
  MlaConfig& mla = c.mla;
  // Two layouts, as llama.cpp loads them: the MLA conversion's (since April 2025: attn_k_b /
  // attn_v_b, the cache's row sizes in key_length / value_length and the heads' in the _mla keys),
  // and the earlier one (attn_kv_b; key_length / value_length are the heads' sizes, n_head kv heads).
  const bool mla_keys = r.file().contains(r.key("attention.key_length_mla"));
  mla.merged_kv_b = !mla_keys && r.has_tensor("blk.0.attn_kv_b.weight");
  if (!mla_keys && !mla.merged_kv_b) {
    fail(ErrorCode::kUnsupported,
         "{}: a deepseek2 file with neither {} nor attn_kv_b (an unmerged llama.cpp conversion's layout); "
         "convert the model again with a current llama.cpp",
         name, r.key("attention.key_length_mla"));
  }
  mla.kv_lora_rank = r.count("attention.kv_lora_rank", 1, 1 << 16);
  // "Lite" models project q straight from x (llama.cpp decides by the tensor too).
  mla.q_lora_rank = r.has_tensor("blk.0.attn_q.weight") ? 0 : r.count("attention.q_lora_rank", 1, 1 << 16);
  const int32_t key_mla = mla_keys ? r.count("attention.key_length_mla", 2, 1 << 16) : c.head_dim;
  mla.v_dim = mla_keys ? r.count("attention.value_length_mla", 1, 1 << 16) : c.head_dim_v;
  const int32_t n_rot = static_cast<int32_t>(c.rope.n_rot);
  mla.nope_dim = key_mla - n_rot;
  const bool rows_fit =
      mla.merged_kv_b ? c.n_head_kv == c.n_head
                      : c.n_head_kv == 1 && c.head_dim == mla.kv_lora_rank + n_rot && c.head_dim_v == mla.kv_lora_rank;
  if (mla.nope_dim <= 0 || !rows_fit) {
    fail(ErrorCode::kFormat,
         "{}: latent attention sizes do not fit: key_length {}, value_length {}, kv_lora_rank {}, rope {}, "
         "key_length_mla {}, head_count_kv {} ({})",
         name, c.head_dim, c.head_dim_v, mla.kv_lora_rank, n_rot, key_mla, c.n_head_kv,
         mla.merged_kv_b ? "head_count without the _mla keys" : "1");
  }
  // ember runs both the same way: one cached row [latent | k_pe] per token as a single kv head, the
  // value row the key row.
  c.n_head_kv = 1;
  c.head_dim = c.head_dim_v = mla.kv_lora_rank + n_rot;

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
