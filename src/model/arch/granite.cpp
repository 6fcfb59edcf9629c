// granite: IBM Granite 3.x (dense). Llama's block (normal rope, optional q / k / v biases) with four
// multipliers from the file: embeddings times embedding_scale, queries times attention.scale (instead
// of 1/sqrt(head_dim)), each attention and FFN output times residual_scale before its residual add,
// and the logits divided by logit_scale. A 0 or absent multiplier is none, as in llama.cpp; a file
// whose rope.scaling.finetuned is false uses no rope at all (llama.cpp's switch for Granite).
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

}  // namespace

void read_granite_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  if (r.count_or("expert_count", 0, 0, INT32_MAX) > 0) {
    fail(ErrorCode::kUnsupported, "{}: a granite file with experts (Granite MoE) is not supported yet",
         r.file().name());
  }
  c.attn_qkv_bias = r.has_tensor("blk.0.attn_q.bias");
  c.logit_scale = r.positive("logit_scale");  // required, as llama.cpp reads it
  c.residual_scale = multiplier_or_none(r, "residual_scale");
  c.embedding_scale = multiplier_or_none(r, "embedding_scale");
  c.attn_scale = multiplier_or_none(r, "attention.scale");
  if (!r.file().get_optional<bool>(r.key("rope.scaling.finetuned")).value_or(true)) {
    for (LayerConfig& layer : c.layers) layer.skips_rope = true;
  }
}

}  // namespace ember
