// Weights: a model's tensors bound to the memory-mapped GGUF, every one checked for presence,
// type and shape against its ModelConfig, with errors that name the tensor. Shapes are in ggml
// order (ne0 first, the contiguous dimension): a matmul weight [n_in, n_out] maps n_in inputs to
// n_out outputs.
#pragma once

#include <vector>

#include "ember/tensor_view.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"
#include "model/model_config.h"

namespace ember {

struct LayerWeights {
  TensorView attn_norm;  // [n_embd] F32
  // Separate projections, or (Phi-3) wqkv fused: then wq / wk / wv are empty.
  TensorView wq;              // [n_embd, n_head * head_dim]
  TensorView wk;              // [n_embd, n_head_kv * head_dim]
  TensorView wv;              // [n_embd, n_head_kv * head_dim_v]
  TensorView wqkv;            // [n_embd, (n_head + n_head_kv) * head_dim + n_head_kv * head_dim_v]
  TensorView bq, bk, bv;      // [n_head * head_dim] ... F32, when attn_qkv_bias
  TensorView q_norm, k_norm;  // [head_dim] F32, when attn_qk_norm
  // Multi-head latent attention (config.mla.kv_lora_rank > 0): wq [n_embd, n_head*(nope+n_rot)] or the
  // pair below, and these (wo is [n_head * v_dim, n_embd]).
  TensorView wq_a;            // attn_q_a [n_embd, q_lora_rank]
  TensorView q_a_norm;        // [q_lora_rank] F32
  TensorView wq_b;            // attn_q_b [q_lora_rank, n_head * (nope_dim + n_rot)]
  TensorView wkv_a;           // attn_kv_a_mqa [n_embd, kv_lora_rank + n_rot]
  TensorView kv_a_norm;       // [kv_lora_rank] F32
  TensorView wk_b;            // attn_k_b [nope_dim, kv_lora_rank, n_head]: head h's k_b (kv_lora_rank rows of nope_dim)
  TensorView wv_b;            // attn_v_b [kv_lora_rank, v_dim, n_head]: head h's v_b (v_dim rows of kv_lora_rank)
  TensorView wkv_b;           // attn_kv_b [kv_lora_rank, n_head * (nope_dim + v_dim)] instead, when mla.merged_kv_b
  TensorView wo;              // [n_head * head_dim_v, n_embd]
  TensorView post_attn_norm;  // [n_embd] F32, when post_norms
  TensorView ffn_norm;        // [n_embd] F32
  // Separate gate and up, or (Phi-3) fused: w_up holds [gate; up] and w_gate is empty. All three
  // empty in a mixture-of-experts layer.
  TensorView w_gate;         // [n_embd, n_ff]
  TensorView w_up;           // [n_embd, n_ff], or [n_embd, 2 * n_ff] fused
  TensorView w_down;         // [n_ff, n_embd]
  TensorView post_ffn_norm;  // [n_embd] F32, when post_norms
  // Mixture of experts (config.layer_has_experts): the router and every expert's matrices, expert e
  // at index e of the last dimension (ne[2]). Empty in a dense layer.
  TensorView router;          // ffn_gate_inp [n_embd, n_expert]
  TensorView selection_bias;  // exp_probs_b [n_expert] F32, when moe.selection_bias
  TensorView expert_gate;     // ffn_gate_exps [n_embd, n_ff_expert, n_expert]
  TensorView expert_up;       // ffn_up_exps [n_embd, n_ff_expert, n_expert]
  TensorView expert_down;     // ffn_down_exps [n_ff_expert, n_embd, n_expert]
  // The shared expert (moe.n_ff_shared > 0) and, when moe.shared_gated (Qwen2-MoE), its gate: one output per token.
  TensorView shared_router;  // ffn_gate_inp_shexp [n_embd]
  TensorView shared_gate;    // ffn_gate_shexp [n_embd, n_ff_shared]
  TensorView shared_up;      // ffn_up_shexp [n_embd, n_ff_shared]
  TensorView shared_down;    // ffn_down_shexp [n_ff_shared, n_embd]
};

struct Weights {
  TensorView token_embd;   // [n_embd, n_vocab], any type ember can dequantize (rows are gathered)
  TensorView output_norm;  // [n_embd] F32
  TensorView output;       // [n_embd, n_vocab]; token_embd when the output is tied
  std::vector<LayerWeights> layers;

  // Views into the parts of `model`, which must outlive the Weights. Throws Error(kNotFound) for a
  // missing tensor, Error(kFormat / kUnsupported) for a wrong shape or a type ember cannot
  // multiply, and Error(kUnsupported) for a tensor it would not use — each naming the tensor.
  static Weights bind(const GgufModelFiles& model, const ModelConfig& config);
  static Weights bind(const GgufFile& file, const ModelConfig& config);
};

}  // namespace ember
