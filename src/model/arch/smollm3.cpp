// smollm3: SmolLM3. Llama's block (normal rope, optional q / k / v biases) in which every fourth
// layer (3, 7, 11, ...) uses no positional encoding at all ("NoPE"): its q and k are not rotated.
// The step is fixed at 4 (llama.cpp's n_no_rope_layer_step; no GGUF key holds it).
#include "model/arch/arch_reader.h"

namespace ember {

void read_smollm3_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.attn_qkv_bias = r.has_tensor("blk.0.attn_q.bias");
  constexpr size_t kNoRopeStep = 4;
  for (size_t i = 0; i < c.layers.size(); ++i) c.layers[i].skips_rope = (i + 1) % kNoRopeStep == 0;
}

}  // namespace ember
