// deepseek: DeepSeek MoE (deepseek-moe-16b, V1). Llama's attention (normal rope, 1/sqrt(head_dim));
// the first leading_dense_block_count layers have a dense FFN of feed_forward_length, the others
// expert_count experts of expert_feed_forward_length, their softmax probabilities taken as they are
// (no rescaling; llama.cpp's deepseek graph does not apply expert_weights_scale), plus
// expert_shared_count shared experts as one ungated SwiGLU of that many experts' width.
#include "model/arch/arch_reader.h"

namespace ember {

void read_deepseek_experts(const ArchReader& r, ModelConfig& c, bool norm_weights) {
  r.read_experts(c, norm_weights, /*width_from_key=*/true);
  const int32_t n_dense = r.count_or("leading_dense_block_count", 0, 0, c.n_layer);
  for (int32_t il = 0; il < n_dense; ++il) c.layers[static_cast<size_t>(il)].dense_ffn = true;
  const int32_t n_shared = r.count("expert_shared_count", 0, 64);
  c.moe.n_ff_shared = n_shared * c.moe.n_ff_expert;  // (n_ff_expert <= 2^20: no overflow)
}

void read_deepseek_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  read_deepseek_experts(r, c, /*norm_weights=*/false);
}

}  // namespace ember
