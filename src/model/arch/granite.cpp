// granite / granitemoe: IBM Granite 3.x, dense and mixture of experts. Llama's block (normal rope,
// optional q / k / v biases) with four multipliers from the file: embeddings times embedding_scale,
// queries times attention.scale (instead of 1/sqrt(head_dim)), each attention and FFN output times
// residual_scale before its residual add, and the logits divided by logit_scale. A 0 or absent
// multiplier is none, as in llama.cpp; a file whose rope.scaling.finetuned is false uses no rope at
// all (llama.cpp's switch for Granite). Granite MoE's experts are feed_forward_length wide, their
// chosen probabilities renormalized, plus (expert_shared_feed_forward_length > 0: GraniteMoeShared
// checkpoints, which convert to granitemoe too) a shared expert added as is (llama.cpp's granite
// graph, which both architectures share).
#include "core/check.h"
#include "model/arch/arch_reader.h"

namespace ember {
namespace {

// "<arch>.<suffix>" as a finite float >= 0; 0 when absent.
float multiplier_or_none(const ArchReader& r, std::string_view suffix) {
  const float value = r.optional_float(suffix).value_or(0.0f);
  if (value < 0.0f) fail(ErrorCode::kFormat, "{}: {} = {} is negative", r.file().name(), r.key(suffix), value);
  return value;
}

void read_granite_family(const ArchReader& r, ModelConfig& c, bool experts) {
  r.read_common(c);
  c.attn_qkv_bias = r.has_tensor("blk.0.attn_q.bias");
  c.logit_scale = r.positive("logit_scale");  // required, as llama.cpp reads it
  c.residual_scale = multiplier_or_none(r, "residual_scale");
  c.embedding_scale = multiplier_or_none(r, "embedding_scale");
  c.attn_scale = multiplier_or_none(r, "attention.scale");
  if (!r.file().get_optional<bool>(r.key("rope.scaling.finetuned")).value_or(true)) {
    for (LayerConfig& layer : c.layers) layer.skips_rope = true;
  }
  if (!experts) return;
  r.read_experts(c, /*norm_weights=*/true, /*width_from_key=*/false);
  c.moe.n_ff_shared = r.count_or("expert_shared_feed_forward_length", 0, 0, 1 << 20);
}

}  // namespace

// One loader for both, as in llama.cpp: experts when expert_count > 0 (a granitemoe conversion of a
// GraniteMoeShared checkpoint without experts is dense), whatever the architecture's name says.
void read_granite_config(const ArchReader& r, ModelConfig& c) {
  read_granite_family(r, c, r.count_or("expert_count", 0, 0, INT32_MAX) > 0);
}

void read_granitemoe_config(const ArchReader& r, ModelConfig& c) { read_granite_config(r, c); }

}  // namespace ember
