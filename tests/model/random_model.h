// Small random models of every architecture, written with the project's GGUF writer: what the
// forward pass is compared against the float64 reference on (DESIGN.md §10).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ember/dtype.h"
#include "gguf/gguf_writer.h"

namespace ember::test {

struct RandomModelSpec {
  std::string arch = "llama";
  int64_t n_vocab = 96;
  int64_t n_embd = 64;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t head_dim = 0;  // 0: n_embd / n_head (written as key_length otherwise)
  int64_t n_ff = 96;
  int64_t n_rot = 0;  // 0: head_dim (written as rope.dimension_count otherwise)
  int64_t context_length = 512;
  float rope_freq_base = 10000.0f;  // Gemma 3's local layers use 10000 whatever this says
  DType weight_type = DType::kF32;  // the matmul weights (and the output matrix)
  DType embd_type = DType::kF32;    // token embeddings
  bool tied_output = false;         // Gemma ties whatever this says
  bool qkv_bias = false;            // attn_{q,k,v}.bias (always for qwen2)
  bool rope_freqs = false;          // a rope_freqs.weight tensor of frequency divisors (llama3)
  // Mixture of experts: n_expert > 0 makes every FFN experts (llama: Mixtral's layout); qwen2moe,
  // qwen3moe, granitemoe and deepseek always have them (4 when this is 0). The qwen ones' experts are
  // n_ff_expert wide (0: n_ff), written as expert_feed_forward_length; llama's and granitemoe's are
  // n_ff (no such key). qwen2moe's shared expert (gated) is n_ff_shared wide (0: n_ff); granitemoe has
  // one (not gated) only when n_ff_shared > 0.
  int64_t n_expert = 0;
  int64_t n_expert_used = 2;
  int64_t n_ff_expert = 0;
  int64_t n_ff_shared = 0;
  // deepseek: its first n_dense_lead layers dense (leading_dense_block_count), n_expert_shared shared
  // experts of n_ff_expert each (expert_shared_count), experts n_ff_expert wide (0: n_ff).
  int64_t n_dense_lead = 1;
  int64_t n_expert_shared = 1;
  // deepseek2's multi-head latent attention (head_dim, n_head_kv ignored): a latent of kv_lora_rank,
  // rope dims n_rot (0: 64), per head nope_dim q/k dims without rope and v_dim value dims; q
  // through a rank-q_lora_rank pair when > 0, else attn_q.
  int64_t kv_lora_rank = 256;
  int64_t q_lora_rank = 0;
  int64_t nope_dim = 64;  // < kv_lora_rank, as in the real models (128 < 512)
  int64_t v_dim = 128;
  bool merged_kv_b = false;     // the layout before April 2025: attn_kv_b, the heads' sizes in key/value_length
  bool selection_bias = false;  // an exp_probs_b.bias per expert layer (DeepSeek V3); the routing keys go in extra_keys
  uint64_t seed = 1;
  // Extra metadata (rope scaling, windows, soft-caps, ...), written after the common keys.
  std::function<void(GgufWriter&)> extra_keys;
  // A tensor's type other than the one chosen above (mixed-type files), by name; null: none.
  std::function<DType(const std::string& name, DType chosen)> tensor_type;
};

// The GGUF file as bytes (8-byte aligned storage, as GgufFile::parse wants). A matrix whose rows
// the type's blocks do not divide is Q8_0 (F16 when 32 does not either). Weights are uniform
// random with unit-variance outputs, norms in [0.5, 1.5], biases in [-0.5, 0.5]; never zeros. MoE
// routers stay F32 whatever weight_type says (as llama.cpp's quantizer keeps them).
// Embeddings are uniform in [-1, 1], or scaled like the output matrix they double as when tied.
std::vector<std::byte> write_random_model(const RandomModelSpec& spec);

}  // namespace ember::test
