// gemma2: Gemma 2. The Gemma family's block (read_gemma_family) with RMS norms after attention and after
// the FFN, attention scores and logits soft-capped by tanh, and local (sliding-window) attention on
// every other layer, from the first.
// The 27B model scales queries by 1/sqrt(n_embd / n_head) rather than 1/sqrt(head_dim).
#include <cmath>

#include "model/arch/arch_reader.h"

namespace ember {

void read_gemma2_config(const ArchReader& r, ModelConfig& c) {
  read_gemma_family(r, c);
  c.post_norms = true;
  c.attn_softcap = r.positive_or("attn_logit_softcapping", 50.0f);
  c.final_softcap = r.positive_or("final_logit_softcapping", 30.0f);
  const int32_t window = r.count_or("attention.sliding_window", 4096, 1, INT32_MAX);
  // Every other layer is local, starting with the first.
  for (size_t i = 0; i < c.layers.size(); i += 2) c.layers[i].sliding_window = window;
  const bool is_27b = c.n_layer == 46;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(is_27b ? c.n_embd / c.n_head : c.head_dim));
}

}  // namespace ember
