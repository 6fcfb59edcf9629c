// phi3: Phi-3 / Phi-3.5 (mini, medium). Llama's block with neox rope, q / k / v fused in one
// tensor and gate / up in another (bound with the weights), and longrope scaling: per-dimension
// frequency factors for short and long contexts (rope_factors_short / rope_factors_long) with the
// attention factor the converter writes (rope.scaling.attn_factor, read for every architecture).
#include "model/arch/arch_reader.h"

namespace ember {

void read_phi3_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  const int64_t n_factors = c.rope.n_rot / 2;
  std::vector<float> short_factors = r.factors("rope_factors_short.weight", n_factors);
  c.rope_factors_long = r.factors("rope_factors_long.weight", n_factors);
  if (!short_factors.empty()) c.rope.freq_factors = std::move(short_factors);
  // llama.cpp disables Phi-3's sliding window (the converter writes 2047 for the 4k models, but
  // the models attend to their whole context): attention.sliding_window is not read.
}

}  // namespace ember
