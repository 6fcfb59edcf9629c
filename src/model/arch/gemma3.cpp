// gemma3: Gemma 3 (text). The Gemma family's block (read_gemma_family) with RMS norms after attention
// and after the FFN, q / k head norms, five local (sliding-window) layers to each global one, and the
// local layers' own rope (base 10000, no scaling). The 27B model scales queries by 1/sqrt(n_embd / n_head).
#include <cmath>

#include "model/arch/arch_reader.h"

namespace ember {

void read_gemma3_config(const ArchReader& r, ModelConfig& c) {
  read_gemma_family(r, c);
  c.post_norms = true;
  c.attn_qk_norm = true;
  c.final_softcap = r.positive_or("final_logit_softcapping", 0.0f);
  // Five local layers, then one global: layer i is global when (i + 1) % 6 == 0. A file without a
  // window (the converter omits it for sliding_window_pattern 1) or with 0 has global layers only.
  const int32_t window = r.count_or("attention.sliding_window", 0, 0, INT32_MAX);
  if (window > 0) {
    c.rope_local = c.rope;
    c.rope_local.freq_base = 10000.0f;
    c.rope_local.freq_scale = 1.0f;
    c.rope_local.freq_factors.clear();
    for (size_t i = 0; i < c.layers.size(); ++i) {
      if ((i + 1) % 6 != 0) c.layers[i] = {.sliding_window = window, .uses_local_rope = true};
    }
  }
  const bool is_27b = c.n_layer == 62;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(is_27b ? c.n_embd / c.n_head : c.head_dim));
}

}  // namespace ember
