// qwen3moe: Qwen 3 MoE (Qwen3-30B-A3B, Qwen3-235B-A22B). Qwen 3's attention (QK-norm, neox rope, no
// biases); every layer's FFN is experts, the chosen ones' probabilities renormalized (llama.cpp's
// qwen3moe graph).
#include "model/arch/arch_reader.h"

namespace ember {

void read_qwen3moe_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  c.attn_qk_norm = true;
  r.read_experts(c, /*norm_weights=*/true, /*width_from_key=*/true);
}

}  // namespace ember
