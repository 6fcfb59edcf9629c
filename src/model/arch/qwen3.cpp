// qwen3: Qwen 3 (dense). Qwen 2's block without q / k / v biases, with an RMS norm of every q and k
// head before rope (QK-norm); head size from attention.key_length (128, not n_embd / n_head).
#include "model/arch/arch_reader.h"

namespace ember {

void read_qwen3_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  c.attn_qk_norm = true;
}

}  // namespace ember
