// llama: Llama 1/2/3.x, Mistral (sliding window), Mixtral (experts), SmolLM 1/2, TinyLlama, and
// llama2.c conversions.
// RMSNorm, SwiGLU, GQA, "normal" rope (llama.cpp's converter permutes Q/K rows to pair dims
// (2i, 2i+1)), llama3 frequency factors from rope_freqs.
#include "model/arch/arch_reader.h"

namespace ember {

void read_llama_config(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  // Some llama-architecture files carry q / k / v biases (llama.cpp loads them when present).
  c.attn_qkv_bias = r.has_tensor("blk.0.attn_q.bias");
  // Mistral v0.1 style: every layer attends to a window of past positions (as the model was
  // trained; llama.cpp ignores this key for llama files and attends to everything).
  const int32_t window = r.count_or("attention.sliding_window", 0, 0, INT32_MAX);
  for (LayerConfig& layer : c.layers) layer.sliding_window = window;
  // Mixtral: experts of feed_forward_length, their chosen probabilities renormalized (llama.cpp's
  // llama graph); an expert_count of 0 is a dense model.
  if (r.count_or("expert_count", 0, 0, INT32_MAX) > 0) {
    r.read_experts(c, /*norm_weights=*/true, /*width_from_key=*/false);
  }
}

}  // namespace ember
