// gemma: Gemma 1 (2B, 7B, CodeGemma). The Gemma family's block (read_gemma_family) without the
// later generations' norms after attention and the FFN, soft-caps and local layers: every layer
// attends to the whole context, and queries are scaled by 1/sqrt(head_dim).
#include "model/arch/arch_reader.h"

namespace ember {

void read_gemma_config(const ArchReader& r, ModelConfig& c) { read_gemma_family(r, c); }

}  // namespace ember
