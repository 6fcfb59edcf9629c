// phi3: Phi-3 / Phi-3.5 (mini, medium). Llama's block with neox rope, q / k / v fused in one
// tensor and gate / up in another (bound with the weights), a sliding window on every layer where
// the file gives one, and longrope scaling: per-dimension frequency factors for short and long
// contexts (rope_factors_short / rope_factors_long) with an attention factor.
#include <cmath>

#include "model/arch/arch_reader.h"

namespace ember {

void read_phi3_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  const int64_t n_factors = c.rope.n_rot / 2;
  std::vector<float> short_factors = r.factors("rope_factors_short.weight", n_factors);
  c.rope_factors_long = r.factors("rope_factors_long.weight", n_factors);
  if (!short_factors.empty()) c.rope.freq_factors = std::move(short_factors);
  if (!c.rope_factors_long.empty()) {
    // As llama.cpp: attn_factor from the file, else Phi-3's sqrt(1 + ln(scale) / ln(n_ctx_orig)).
    const double scale = static_cast<double>(c.context_length) / static_cast<double>(c.rope.n_ctx_orig);
    const float fallback =
        scale <= 1.0 ? 1.0f : static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(c.rope.n_ctx_orig)));
    c.rope.attn_factor = r.positive_or("rope.scaling.attn_factor", fallback);
  }
  const int32_t window = r.count_or("attention.sliding_window", 0, 0, INT32_MAX);
  for (LayerConfig& layer : c.layers) layer.sliding_window = window;
}

}  // namespace ember
