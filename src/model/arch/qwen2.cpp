// qwen2: Qwen 1.5 / 2 / 2.5. Llama's block with biases on q / k / v and neox rope.
#include "model/arch/arch_reader.h"

namespace ember {

void read_qwen2_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  c.attn_qkv_bias = true;
}

}  // namespace ember
