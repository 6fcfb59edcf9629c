// ReferenceModel: a float64 transformer written for clarity (plain loops, dequantized weights), the
// oracle that ember's optimized forward pass is compared against (DESIGN.md §10).
//
// Independent of src/model on purpose: it reads the GGUF keys and tensor names itself, so a
// mistake in ember's model loader cannot hide in both. Architectures differ only by the switches
// of ReferenceTraits and a few config fields; adding one = a few lines in reference_config_from_gguf
// (its key/tensor mapping, as llama.cpp reads it) plus any new switch, each tested on a hand-made tiny
// model (see README.md).
//
// Implemented and tested: llama (Llama 1/2/3, Mistral-style GQA, tied or separate output, RMSNorm,
// SwiGLU, normal rope), rope scaling none / linear / llama3 (rope_freqs tensor or computed) / YaRN /
// LongRoPE (phi3's rope_factors_short/long) with llama.cpp's key rules (factor or old scale_linear,
// missing type = linear, "none" = no scaling, rope.scaling.attn_factor), the switches neox rope,
// partial rotary, q/k/v bias, QK-norm, post-attention/FFN norms, embedding scale, attention and
// final logit soft-cap, GeGLU, sliding window per layer with its own rope base, fused attn_qkv and
// gate+up tensors (Phi-3 layout), and the architectures qwen2, qwen3, phi3, gemma, gemma2, gemma3
// (text), smollm3 (NoPE layers), granite (multipliers), and the mixtures of experts llama (Mixtral), qwen2moe and
// qwen3moe, mapped from their GGUF keys as llama.cpp maps them, checked on hand-made files only (no real model's logits
// yet).
//
// TODO (next steps of the forward-pass issue):
//  - a real qwen / phi3 / gemma model's logits against llama.cpp's.
//  - key_length != value_length, per-layer head counts, LayerNorm, plain GELU FFN, sigmoid-gated MoE.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf_reader.h"

namespace ember {

// Switches in which llama-like architectures differ from Llama; the defaults are Llama's.
struct ReferenceTraits {
  enum class Rope {
    kNormal,  // rotates pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM (arch llama)
    kNeox,    // rotates pairs (i, i + n_rot/2): GPT-NeoX / Hugging Face rotate_half (qwen2, phi3, gemma)
  };
  enum class Ffn {
    kSwiGLU,  // down(silu(gate(x)) * up(x))
    kGeGLU,   // down(gelu_tanh(gate(x)) * up(x)) (gemma)
  };

  Rope rope = Rope::kNormal;
  Ffn ffn = Ffn::kSwiGLU;
  bool qkv_bias = false;        // blk.N.attn_{q,k,v}.bias added after the projections (qwen2)
  bool qk_norm = false;         // RMSNorm of each q and k head over head_dim before rope (qwen3, gemma3)
  bool post_norms = false;      // RMSNorm of the attention / FFN output before the residual add (gemma2/3)
  double embd_scale = 1.0;      // token embeddings are multiplied by this (gemma: sqrt(n_embd))
  double attn_softcap = 0;      // > 0: scores become c·tanh(scores/c) before the softmax (gemma2)
  double final_softcap = 0;     // > 0: logits become c·tanh(logits/c) (gemma2)
  double residual_scale = 1.0;  // attention and FFN outputs are multiplied by this before each residual add (granite)
  double logit_scale = 1.0;     // logits are divided by this, before the final soft-cap (granite)
  // > 0: a query at position p sees keys at p - sliding_window < pos <= p (llama.cpp's standard
  // SWA), in the layers flagged by sliding_layers (empty: in every layer).
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  // Layers whose q and k are not rotated at all (NoPE: smollm3's every fourth); empty: none.
  std::vector<bool> nope_layers;
};

struct ReferenceRopeScaling {
  enum class Kind {
    kNone,
    kLinear,  // position interpolation: every angle divided by `factor`
    kLlama3,  // Llama 3.1: per-frequency divisors from the parameters below (rope_type "llama3")
    kYarn,    // YaRN (ggml's rope_yarn): a ramp between interpolated and original angles, see reference_rope_thetas
  };
  Kind kind = Kind::kNone;
  double factor = 1.0;            // linear and yarn: angles of interpolated pairs are divided by it
  double low_freq_factor = 1.0;   // llama3 only
  double high_freq_factor = 4.0;  // llama3 only
  // rope.scaling.original_context_length, else <arch>.context_length (llama.cpp's n_ctx_orig_yarn):
  // llama3's and YaRN's original context, and LongRoPE's threshold (ReferenceConfig::n_ctx_seq).
  int64_t n_ctx_orig = 0;
  // rope.scaling.attn_factor: multiplies cos and sin of the rotated dims (ggml's attn_factor), any kind.
  double attn_factor = 1.0;
  // YaRN's correction range in rotations per original context (llama.cpp's hparams defaults; the
  // GGUF keys rope.scaling.yarn_beta_* are not read for the architectures here).
  double yarn_beta_fast = 32.0;
  double yarn_beta_slow = 1.0;
};

struct ReferenceConfig {
  std::string arch;  // general.architecture
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // GQA: query head h reads kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;   // of q, k and v
  int64_t n_ff = 0;
  int64_t n_rot = 0;        // rotated dims at the start of each head; < head_dim is partial rotary
  int64_t n_ctx_train = 0;  // <arch>.context_length, for information only: forward() has no limit
  double rms_eps = 1e-5;
  double rope_base = 10000.0;
  ReferenceRopeScaling rope_scaling;
  // Empty or n_rot/2 divisors of the rope frequencies (the GGUF `rope_freqs` tensor). When empty
  // and rope_scaling is llama3, they are computed (reference_llama3_freq_factors).
  std::vector<double> rope_freq_factors;
  // LongRoPE (phi3): the rope_factors_short / rope_factors_long tensors, each empty or n_rot/2
  // divisors like rope_freqs. llama.cpp picks the long ones when the context per sequence it runs
  // with (n_ctx_seq) exceeds rope_scaling.n_ctx_orig, else the short ones; n_ctx_seq stands for
  // that context here (0, the default: short).
  std::vector<double> rope_factors_short, rope_factors_long;
  int64_t n_ctx_seq = 0;
  // > 0: the sliding-window layers rotate with this base and no scaling (gemma3's local layers:
  // llama.cpp's rope_freq_base_train_swa 10000, rope_freq_scale_train_swa 1); 0: as every layer.
  double rope_base_swa = 0;
  double attn_scale = 0;  // scores = q·k · attn_scale; 0 means 1/sqrt(head_dim)
  ReferenceTraits traits;
  // Mixture of experts (llama.cpp's build_moe_ffn with softmax gating), n_expert > 0: every layer's
  // FFN is n_expert SwiGLU experts of n_ff_expert; a token's output is the sum over the n_expert_used
  // most probable (softmax of the router's logits) of probability · expert output, the probabilities
  // rescaled to sum to 1 when expert_weights_norm (llama = Mixtral, qwen3moe, granitemoe).
  // n_ff_shared_expert > 0 (qwen2moe, granitemoe) adds a shared expert on every token, times
  // sigmoid(ffn_gate_inp_shexp · x) when shared_expert_gated (qwen2moe).
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_expert = 0;
  bool expert_weights_norm = false;
  int64_t n_ff_shared_expert = 0;
  bool shared_expert_gated = true;  // false: the shared expert's output is added as is (granitemoe)
  // DeepSeek: the first n_layer_dense_lead layers have a dense FFN; the router's probabilities are a
  // sigmoid of its logits when expert_gating_sigmoid, else a softmax; the chosen weights (after the
  // norm) times expert_weights_scale (0 or 1: none); a layer's exp_probs_b, when the file has one, is
  // added to the probabilities to choose (not to weigh); with n_expert_group > 1 a token chooses within
  // the n_expert_group_used groups whose two best biased probabilities sum highest.
  // Multi-head latent attention (deepseek2), kv_lora_rank > 0: q per head is [q_nope (mla_nope) |
  // q_pe (n_rot)], from wq·x, or wq_b·norm(wq_a·x) when q_lora_rank > 0; a token's latent c = norm of
  // the first kv_lora_rank of wkv_a·x, its one rope key k_pe the rest; head h's key is [k_b[h]ᵀ·c |
  // k_pe] and its value v_b[h]·c (mla_v) — the attention llama.cpp's naive path computes. head_dim is
  // the file's key_length (kv_lora_rank + n_rot), attn_scale the scale of q·k.
  int64_t kv_lora_rank = 0;
  int64_t q_lora_rank = 0;
  int64_t mla_nope = 0;
  int64_t mla_v = 0;
  bool mla_merged_kv_b = false;  // the layout before April 2025: attn_kv_b, head h's W_UK rows then W_UV's
  int64_t n_layer_dense_lead = 0;
  bool expert_gating_sigmoid = false;
  double expert_weights_scale = 0;
  int64_t n_expert_group = 0;
  int64_t n_expert_group_used = 0;
};

// Reads `<arch>.*` keys and the rope tensors of a supported architecture (llama, qwen2, qwen3,
// phi3, gemma, gemma2, gemma3, smollm3, granite, granitemoe, qwen2moe, qwen3moe) the way llama.cpp does
// (reference_config.cpp names where each rule comes from); q/k/v biases are switched on whenever the file has them.
// Rope scaling as llama.cpp: factor = rope.scaling.factor, else rope.scale_linear; a missing rope.scaling.type is
// "linear"; "none" ignores the factor; "longrope" scales like "linear"; "yarn" as ggml's rope_yarn;
// rope.scaling.attn_factor (default 1) applies with any type. Throws Error(kUnsupported) for another architecture, rope
// scaling type or a tensor layout llama.cpp does not load for the architecture, Error(kNotFound) for a missing key,
// Error(kFormat) for impossible dimensions.
ReferenceConfig reference_config_from_gguf(const GgufFile& file);

// Llama 3.1's rope frequency divisors (what convert_hf_to_gguf stores as rope_freqs): 1 for
// wavelengths under n_ctx_orig / high_freq_factor, `factor` over n_ctx_orig / low_freq_factor,
// smoothly interpolated in between. n_rot/2 values.
std::vector<double> reference_llama3_freq_factors(int64_t n_rot, double rope_base, const ReferenceRopeScaling& scaling);

// The frequency divisors in use (n_rot/2 or none): rope_freqs, else LongRoPE's short or long
// factors (by n_ctx_seq), else llama3's computed ones. llama.cpp's llama_model::get_rope_factors.
std::vector<double> reference_rope_freq_factors(const ReferenceConfig& config);

// Radians per position of each rotated pair i < n_rot/2 in a layer with or without the sliding
// window: base^(-2i/n_rot) divided by the frequency divisor, then by the scaling: linear divides
// by `factor`; YaRN (ggml's rope_yarn with ext_factor 1) mixes θ·(r + (1-r)/factor) with a ramp r
// from 1 (pairs below the correction dim of yarn_beta_fast: kept) to 0 (above yarn_beta_slow's:
// interpolated). A sliding layer with rope_base_swa > 0 uses that base and no scaling.
std::vector<double> reference_rope_thetas(const ReferenceConfig& config, bool sliding_layer = false);

// The factor of cos and sin: rope.scaling.attn_factor, times YaRN's 1 + 0.1·ln(factor) for a
// factor > 1 in the layers it scales (ggml's mscale; llama.cpp's context cancels its own copy).
double reference_rope_mscale(const ReferenceConfig& config, bool sliding_layer = false);

// Index of the largest value; the first one on ties (as llama2.c and llama.cpp's greedy sampler).
int32_t reference_argmax(std::span<const double> values);

// max |a[t][i] - b[t][i]| over all rows and columns; infinity when the shapes differ.
double reference_max_abs_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b);

struct ReferenceTensorSource;

class ReferenceModel {
 public:
  // Dequantizes every weight to double. The file may be closed afterwards. Throws Error(kNotFound)
  // for a missing tensor, Error(kFormat) for a tensor of the wrong shape, Error(kUnsupported) for a
  // tensor type ember cannot dequantize or a tensor the reference does not use (never ignored).
  static ReferenceModel load(const GgufFile& file);
  // The same with a config the caller adjusted (tests switch traits on a hand-made file).
  static ReferenceModel load(const GgufFile& file, ReferenceConfig config);

  const ReferenceConfig& config() const noexcept { return config_; }

  // Logits [n_tokens][n_vocab] of a single sequence at positions 0 .. n_tokens-1, each position
  // attending causally to all earlier ones. Throws Error(kInvalidArgument) for a token id outside
  // the vocabulary.
  std::vector<std::vector<double>> forward(const std::vector<int32_t>& tokens) const;
  // The experts a mixture-of-experts layer runs at a position, in place of the reference's own
  // choice: n_expert_used distinct experts, or an empty list for the reference's own. Their weights
  // are still the reference's probabilities. Tests hold a quantized model to the reference through
  // the experts it chose, where a router near-tie may fall either way under quantization noise.
  // `own`: the reference's own choice there (most probable first).
  using ExpertChoice =
      std::function<std::vector<int32_t>(int64_t layer, int64_t position, std::span<const int32_t> own)>;
  // forward() with `choose` deciding the experts. Throws Error(kInvalidArgument) for a choice of
  // the wrong size, or with an expert out of range or twice.
  std::vector<std::vector<double>> forward(const std::vector<int32_t>& tokens, const ExpertChoice& choose) const;

  // `n_new` greedy tokens after `prompt` (non-empty). `draft` is an optional guess of them: as the
  // forward pass is causal, one pass checks a whole draft and only a wrong guess costs another,
  // so a good draft makes this about one forward() instead of n_new.
  std::vector<int32_t> greedy(const std::vector<int32_t>& prompt, int64_t n_new,
                              std::span<const int32_t> draft = {}) const;

 private:
  // Matrices are row-major [n_out][n_in], which is GGUF's layout of a weight with ne = [n_in, n_out].
  struct Layer {
    std::vector<double> attn_norm;       // [n_embd]
    std::vector<double> wq;              // [n_head*head_dim][n_embd]
    std::vector<double> wk, wv;          // [n_head_kv*head_dim][n_embd]
    std::vector<double> bq, bk, bv;      // [rows of wq / wk / wv]; empty without qkv_bias
    std::vector<double> q_norm, k_norm;  // [head_dim]; empty without qk_norm
    std::vector<double> wo;              // [n_embd][n_head*head_dim]
    std::vector<double> post_attn_norm;  // [n_embd]; empty without post_norms
    std::vector<double> ffn_norm;        // [n_embd]
    std::vector<double> w_gate, w_up;    // [n_ff][n_embd]
    std::vector<double> w_down;          // [n_embd][n_ff]
    std::vector<double> post_ffn_norm;   // [n_embd]; empty without post_norms
    // Mixture of experts (empty in a dense model): the router [n_expert][n_embd], expert e's
    // matrices in expert_gate[e] / expert_up[e] ([n_ff_expert][n_embd]) and expert_down[e]
    // ([n_embd][n_ff_expert]); qwen2moe's shared expert and its gate row [n_embd].
    std::vector<double> router;
    std::vector<std::vector<double>> expert_gate, expert_up, expert_down;
    std::vector<double> shared_gate, shared_up, shared_down, shared_router;
    std::vector<double> exp_probs_b;  // [n_expert]; empty when the file has none
    // Multi-head latent attention (kv_lora_rank > 0; then wq is [n_head*(mla_nope+n_rot)][n_embd] or empty).
    std::vector<double> wq_a, q_a_norm, wq_b;  // [q_lora][n_embd], [q_lora], [n_head*(mla_nope+n_rot)][q_lora]
    std::vector<double> wkv_a, kv_a_norm;      // [kv_lora + n_rot][n_embd], [kv_lora]
    std::vector<std::vector<double>> wk_b;     // [n_head] of [kv_lora][mla_nope]
    std::vector<std::vector<double>> wv_b;     // [n_head] of [mla_v][kv_lora]
  };
  using Rows = std::vector<std::vector<double>>;  // [n_tokens][width]

  ReferenceModel() = default;
  void load_layer(ReferenceTensorSource& source, int64_t il);
  bool has_experts(int64_t il) const { return config_.n_expert > 0 && il >= config_.n_layer_dense_lead; }
  void attention(const Layer& layer, int64_t il, Rows& x) const;
  void latent_attention(const Layer& layer, Rows& x) const;
  void feed_forward(const Layer& layer, int64_t il, Rows& x, const ExpertChoice& choose) const;
  // The experts `choose` picks at (il, position), else the router's n_expert_used most probable.
  std::vector<double> mixture_of_experts(const Layer& layer, int64_t il, int64_t position,
                                         const std::vector<double>& xn, const ExpertChoice& choose) const;

  ReferenceConfig config_;
  std::vector<double> rope_thetas_[2];  // [global / sliding layer][n_rot/2]
  double rope_mscale_[2] = {1.0, 1.0};  // [global / sliding layer]
  std::vector<double> token_embd_;      // [n_vocab][n_embd]
  std::vector<Layer> layers_;
  std::vector<double> output_norm_;  // [n_embd]
  std::vector<double> output_;       // [n_vocab][n_embd]; a copy of token_embd_ when tied
};

}  // namespace ember
