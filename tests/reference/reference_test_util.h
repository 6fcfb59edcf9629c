// Hand-made tiny models for the reference model's tests: random F32 weights written with ember's
// GGUF writer under any architecture's keys, and `sequence_by_hand`, a one-layer forward pass
// written out step by step with none of the reference model's code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf_writer.h"
#include "reference/reference_model.h"

namespace ember::reference_test {

using Logits = std::vector<std::vector<double>>;

struct TinySpec {
  std::string arch = "llama";  // general.architecture, and the prefix of every key
  int64_t n_vocab = 23, n_embd = 16, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 6, n_ff = 20, n_rot = 4;
  bool qkv_bias = false, qk_norm = false, post_norms = false, tied = false;
  std::string rope_scaling_type;   // written as <arch>.rope.scaling.type when not empty
  double rope_scaling_factor = 0;  // written as <arch>.rope.scaling.factor when not 0
  double rope_scale_linear = 0;    // written as the old key <arch>.rope.scale_linear when not 0
  double rope_attn_factor = 0;     // written as <arch>.rope.scaling.attn_factor when not 0
  double rope_base = 100;          // <arch>.rope.freq_base: small, so that tiny positions turn noticeably
  int64_t n_ctx_train = 0;         // written as <arch>.context_length when not 0
  int64_t rope_orig_ctx = 0;       // written as <arch>.rope.scaling.original_context_length when not 0
  std::function<void(GgufWriter&, const std::string& prefix)> more_keys;  // arch-specific keys
  uint64_t seed = 7;
};

struct TinyTensor {
  std::vector<int64_t> shape;  // ggml order
  std::vector<float> data;
};
using TinyWeights = std::map<std::string, TinyTensor>;

// Random weights (never zeros) of every tensor the spec implies, with separate q/k/v and gate/up.
TinyWeights tiny_weights(const TinySpec& s);

// Phi-3's layout of the same weights: attn_q/k/v rows concatenated into attn_qkv, ffn_gate's and
// ffn_up's into ffn_up (gate first).
TinyWeights fuse_qkv_and_gate_up(const TinySpec& s, TinyWeights w);

// A GGUF of architecture s.arch in memory with every tensor of `w` (F32).
std::vector<std::byte> tiny_gguf(const TinySpec& s, const TinyWeights& w);

// reference_config_from_gguf of that file.
ReferenceConfig tiny_config(const TinySpec& s, const TinyWeights& w);

// The file loaded, after `adjust` changed its config (tests switch traits on by hand).
ReferenceModel load_tiny(const TinySpec& s, const TinyWeights& w,
                         const std::function<void(ReferenceConfig&)>& adjust = {});

inline const std::vector<int32_t> kTinyTokens = {1, 5, 22, 7, 7, 0, 13, 2, 19, 11};

// A one-layer spec small enough to follow by hand: n_embd 8, 2 heads on 1 kv head of 4 dims, fully
// rotated, with q/k/v biases and QK-norm weights.
TinySpec hand_spec();
inline const std::vector<int32_t> kHandTokens = {3, 9, 17};

// The options of sequence_by_hand.
struct HandOptions {
  bool rope = true;                    // false: q and k are not rotated at all (NoPE)
  bool neox = false;                   // rotate pairs (i, i + n_rot/2) instead of (2i, 2i+1)
  bool bias = false;                   // add attn_{q,k,v}.bias
  bool qk_norm = false;                // RMS-normalize each q and k head, times attn_{q,k}_norm, before rope
  double attn_scale = 0;               // 0: 1/sqrt(head_dim)
  double attn_softcap = 0;             // > 0: cap·tanh(score/cap) of the already scaled score
  double freq_scale = 1.0;             // every rope angle is multiplied by this (linear scaling: 1/factor)
  double mscale = 1.0;                 // rope.scaling.attn_factor (and YaRN's): multiplies cos and sin
  double rope_base = 100;              // θ_i = rope_base^(-2i/n_rot)
  std::vector<double> theta_mul = {};  // per rotated pair: its angle is also multiplied by this (1/freq factor)
  double embd_scale = 1.0;             // token embeddings times this
  bool post_norms = false;             // RMSNorm by post_attention_norm / post_ffw_norm before each residual add
  double residual_scale = 1.0;         // attention and FFN outputs times this before each residual add (granite)
  double logit_scale = 1.0;            // logits divided by this, before the final cap (granite)
  bool geglu = false;                  // gelu_tanh(gate) instead of silu(gate)
  int64_t window = 0;                  // > 0: position t attends to t-window < j <= t only
  double final_softcap = 0;            // > 0: logits become cap·tanh(logit/cap)
  bool tied = false;                   // logits from token_embd instead of output.weight
};

// Logits of a whole (short) sequence through a one-layer model with separate tensors, written out
// step by step in llama.cpp's order with none of the reference model's code: embeddings (scaled);
// q = Wq·x + bq; QK-norm of each head (with its weights) before rope; rope; score = (q·k)·scale;
// cap·tanh(score/cap); causal (windowed) softmax; Σ weight·v; Wo; post norm; residual scale;
// residual; SwiGLU or GeGLU FFN; post norm; residual scale; residual; output norm and matrix; logit
// scale; final cap.
Logits sequence_by_hand(const TinySpec& s, const TinyWeights& w, const std::vector<int32_t>& tokens,
                        const HandOptions& o);

}  // namespace ember::reference_test
