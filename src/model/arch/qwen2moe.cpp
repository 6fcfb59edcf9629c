// qwen2moe: Qwen 1.5 / 2 MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B). Qwen 2's attention (q / k / v
// biases, neox rope); every layer's FFN is experts, mixed by their probabilities as they are, plus a
// shared expert on every token scaled by sigmoid(x·ffn_gate_inp_shexp) (llama.cpp's qwen2moe graph).
#include "model/arch/arch_reader.h"

namespace ember {

void read_qwen2moe_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  c.attn_qkv_bias = true;
  r.read_experts(c, /*norm_weights=*/false, /*width_from_key=*/true);
  c.moe.n_ff_shared = r.count_or("expert_shared_feed_forward_length", 0, 0, 1 << 20);
  if (c.moe.n_ff_shared == 0) c.moe.n_ff_shared = c.n_ff;  // llama.cpp: 0 or absent is n_ff
  c.moe.shared_gated = true;
}

}  // namespace ember
