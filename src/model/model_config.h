// ModelConfig: a transformer's dimensions and traits, read from GGUF metadata (DESIGN.md §3). The
// supported architectures differ only in traits; each maps its GGUF keys in one file under arch/
// and has one line in arch/arch_list.inc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/rope.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"

namespace ember {

enum class Arch {
#define EMBER_ARCH(id, gguf_name, reader) id,
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
};

std::string_view arch_name(Arch arch) noexcept;
// The general.architecture values ember runs, comma separated (for error messages).
std::string supported_architectures();

enum class NormKind { kRms, kLayer };
enum class FfnKind { kSwiGlu, kGeGlu };

// How a router's logits become probabilities (llama.cpp's expert_gating_func: 1 softmax, 2 sigmoid).
enum class ExpertGating { kSoftmax, kSigmoid };

// Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE, Granite MoE, DeepSeek): every layer's FFN (but
// DeepSeek's leading dense ones) is n_expert SwiGLU experts of n_ff_expert; a router (softmax or
// sigmoid of its n_expert logits) picks n_used of them per token and mixes their outputs by their
// probabilities.
struct MoeConfig {
  int32_t n_expert = 0;     // 0: a dense FFN
  int32_t n_used = 0;       // experts per token, 1..n_expert
  int32_t n_ff_expert = 0;  // each expert's hidden width
  // The chosen probabilities rescaled to sum to 1 (Mixtral, Qwen3-MoE, Granite MoE), else as is.
  bool norm_weights = false;
  int32_t n_ff_shared = 0;    // a shared expert of this width on every token (Qwen2-MoE, Granite MoE); 0: none
  bool shared_gated = false;  // its output times sigmoid(x·ffn_gate_inp_shexp) (Qwen2-MoE), else added as is
  ExpertGating gating = ExpertGating::kSoftmax;
  // The chosen weights times this, after any rescaling (DeepSeek's routed_scaling_factor); 0 or 1: none.
  float weights_scale = 0.0f;
  // Each expert layer has a bias (exp_probs_b [n_expert]) added to the probabilities for the choice
  // only; the weights are the unbiased probabilities (DeepSeek V3).
  bool selection_bias = false;
  // Group-limited choice (DeepSeek V3): the experts are n_group equal groups; a row chooses among the
  // n_group_used groups whose two best (biased) probabilities sum highest. n_group <= 1: no groups.
  int32_t n_group = 0;
  int32_t n_group_used = 0;
};

// Multi-head latent attention (DeepSeek V2/V3, kv_lora_rank > 0): a token's keys and values are one
// latent of kv_lora_rank values (normed) plus one rope key of rope.n_rot shared by every head. ember
// runs the absorbed form: head h's query [q_nope (nope_dim) | q_pe (n_rot)] becomes
// [k_b[h]·q_nope | q_pe], which attends over cached rows [latent | k_pe] as one kv head
// (ModelConfig: n_head_kv 1, head_dim = kv_lora_rank + n_rot), and the latent part of its output
// goes through v_b[h] to v_dim values.
struct MlaConfig {
  int32_t kv_lora_rank = 0;  // 0: ordinary attention
  int32_t q_lora_rank = 0;   // > 0: q = wq_b·norm(wq_a·x); 0: q = wq·x ("lite" models)
  int32_t nope_dim = 0;      // per head, the q / k dims without rope
  int32_t v_dim = 0;         // per head, the value dims
  // The layout before llama.cpp's MLA conversion (April 2025): one attn_kv_b [kv_lora_rank,
  // n_head·(nope_dim + v_dim)] instead of attn_k_b / attn_v_b; k_b is its transpose, made at load.
  bool merged_kv_b = false;
};

// What differs between one layer and the next (Gemma's alternating local / global attention,
// SmolLM3's layers without positions).
struct LayerConfig {
  int32_t sliding_window = 0;    // attend to at most this many past positions; 0 = the whole context
  bool uses_local_rope = false;  // rope with ModelConfig::rope_local instead of rope
  bool skips_rope = false;       // NoPE: q and k are not rotated (SmolLM3's every fourth layer)
  bool dense_ffn = false;        // in a mixture-of-experts model, a dense FFN of n_ff (DeepSeek's leading layers)
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string name;  // general.name, "" when absent

  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;   // < n_head: grouped-query attention
  int32_t head_dim = 0;    // of Q and K (attention.key_length, else n_embd / n_head)
  int32_t head_dim_v = 0;  // of V (attention.value_length, else head_dim)
  int32_t n_ff = 0;
  int32_t context_length = 0;  // the training context (<arch>.context_length)

  NormKind norm = NormKind::kRms;
  float norm_eps = 1e-5f;
  FfnKind ffn = FfnKind::kSwiGlu;
  RopeParams rope;        // every layer's, or the global layers' where some are local
  RopeParams rope_local;  // Gemma 3's local layers (n_rot == 0 when unused)
  // Phi-3 longrope: rope.freq_factors holds the short factors (contexts up to rope.n_ctx_orig);
  // these are for longer contexts (empty when the model has none).
  std::vector<float> rope_factors_long;

  bool attn_qkv_bias = false;    // Qwen 2: biases on q / k / v
  bool attn_qk_norm = false;     // Qwen 3, Gemma 3: RMS norm of each q / k head before rope
  bool post_norms = false;       // Gemma 2/3: norms after attention and after the FFN too
  float embedding_scale = 0.0f;  // multiply embeddings by this (Gemma: sqrt(n_embd)); 0 = none
  float attn_softcap = 0.0f;     // tanh soft-cap of attention scores; 0 = none
  float final_softcap = 0.0f;    // tanh soft-cap of the logits; 0 = none
  float residual_scale = 0.0f;  // attention's and FFN's outputs times this before each residual add (Granite); 0 = none
  float logit_scale = 0.0f;     // logits divided by this, before any soft-cap (Granite); 0 = none
  float attn_scale = 0.0f;      // query scale; 0 = 1 / sqrt(head_dim)
  bool tied_output = false;     // no output.weight: the logits use token_embd
  MoeConfig moe;                // n_expert 0: every layer's FFN is dense
  MlaConfig mla;                // kv_lora_rank 0: ordinary attention

  std::vector<LayerConfig> layers;  // n_layer entries

  // Whether layer il's FFN is experts (moe.n_expert > 0 and not one of the dense layers).
  bool layer_has_experts(int32_t il) const noexcept {
    return moe.n_expert > 0 && !layers[static_cast<size_t>(il)].dense_ffn;
  }

  // Throws Error naming the file and the key: an unknown general.architecture (listing the
  // supported ones), a missing or out-of-range hyper-parameter, inconsistent head counts.
  // Metadata from the first part; tensors (the vocabulary's rows, rope factors) from any part.
  static ModelConfig from_gguf(const GgufModelFiles& model);
  static ModelConfig from_gguf(const GgufFile& file);
};

}  // namespace ember
