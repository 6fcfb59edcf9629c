// Small random models of every architecture for the forward-pass tests.
#include "model/random_model.h"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include "quant/quant_traits.h"

namespace ember::test {
namespace {

// A uniform value in [-1, 1): the bits std::uniform_real_distribution<float>(-1, 1) draws from
// std::mt19937_64 under libstdc++ (one draw, scaled by 2^-64, kept below 1). Its own code: the
// standard templates are also instantiated by the test bodies, and the sanitizer build links their
// -O0 copy (tests/CMakeLists.txt), which recomputed a long-double logarithm on every draw.
float uniform_minus_one_to_one(std::mt19937_64& rng) {
  float unit = static_cast<float>(rng()) * 0x1p-64f;
  if (unit >= 1.0f) unit = std::nextafter(1.0f, 0.0f);
  return unit * 2.0f - 1.0f;
}

enum class Fill { kMatmul, kRouter, kEmbedding, kNorm, kBias, kFactors };

class Builder {
 public:
  Builder(const RandomModelSpec& spec, GgufWriter& writer, bool tied)
      : spec_(spec), w_(writer), rng_(spec.seed), tied_(tied) {}

  void tensor(const std::string& name, std::vector<int64_t> shape, Fill fill) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const int64_t k = shape[0];
    std::vector<float> values(static_cast<size_t>(n));
    const float matmul_scale = std::sqrt(3.0f / static_cast<float>(k));  // unit-variance outputs
    // A tied embedding matrix is the output matrix too: scaled like one, so logits stay O(1).
    const float embd_scale = tied_ ? matmul_scale : 1.0f;
    for (float& v : values) {
      const float u = uniform_minus_one_to_one(rng_);
      switch (fill) {
        case Fill::kMatmul:
        case Fill::kRouter: v = u * matmul_scale; break;
        case Fill::kEmbedding: v = u * embd_scale; break;
        case Fill::kNorm: v = 1.0f + 0.5f * u; break;
        case Fill::kBias: v = 0.5f * u; break;
        case Fill::kFactors: v = 2.5f + 1.5f * u; break;
      }
    }
    DType dtype = fill == Fill::kMatmul ? spec_.weight_type : fill == Fill::kEmbedding ? spec_.embd_type : DType::kF32;
    // Rows the type's blocks do not divide (deepseek2's k_b of 64): llama.cpp's quantizer falls back too.
    if (k % dtype_traits(dtype).block_size != 0) dtype = k % 32 == 0 ? DType::kQ8_0 : DType::kF16;
    if (spec_.tensor_type) dtype = spec_.tensor_type(name, dtype);
    std::vector<std::byte> bytes(*dtype_bytes_for(dtype, static_cast<uint64_t>(n)));
    quantize_rows(dtype, values.data(), bytes.data(), n / k, k);
    w_.add_tensor(name, dtype, shape, bytes);
  }

 private:
  const RandomModelSpec& spec_;
  GgufWriter& w_;
  std::mt19937_64 rng_;
  bool tied_;
};

}  // namespace

std::vector<std::byte> write_random_model(const RandomModelSpec& s) {
  const std::string& a = s.arch;
  const bool gemma = a.starts_with("gemma"), phi3 = a == "phi3";
  const bool post_norms = a == "gemma2" || a == "gemma3";
  const bool qk_norm = a == "qwen3" || a == "qwen3moe" || a == "gemma3";
  const bool bias = s.qkv_bias || a == "qwen2" || a == "qwen2moe";
  const bool tied = s.tied_output || gemma;
  const int64_t head_dim = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  const int64_t q_dim = s.n_head * head_dim, kv_dim = s.n_head_kv * head_dim;

  GgufWriter w;
  w.add_string("general.architecture", a);
  w.add_string("general.name", fmt::format("random-{}", a));
  w.add<uint32_t>(a + ".context_length", static_cast<uint32_t>(s.context_length));
  w.add<uint32_t>(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  w.add<uint32_t>(a + ".block_count", static_cast<uint32_t>(s.n_layer));
  w.add<uint32_t>(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.add<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  const int64_t n_head_kv = a != "deepseek2" ? s.n_head_kv : s.merged_kv_b ? s.n_head : 1;
  w.add<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
  w.add<float>(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  w.add<float>(a + ".rope.freq_base", s.rope_freq_base);
  const bool latent = a == "deepseek2";
  const int64_t mla_rot = s.n_rot > 0 ? s.n_rot : 64;  // deepseek2's rope dims (V2/V3: 64)
  if (latent) {
    if (s.merged_kv_b) {  // the layout before April 2025: the heads' sizes, no _mla keys
      w.add<uint32_t>(a + ".attention.key_length", static_cast<uint32_t>(s.nope_dim + mla_rot));
      w.add<uint32_t>(a + ".attention.value_length", static_cast<uint32_t>(s.v_dim));
    } else {  // the MLA layout of llama.cpp's converter: the cache's row sizes, then the heads'
      w.add<uint32_t>(a + ".attention.key_length", static_cast<uint32_t>(s.kv_lora_rank + mla_rot));
      w.add<uint32_t>(a + ".attention.value_length", static_cast<uint32_t>(s.kv_lora_rank));
      w.add<uint32_t>(a + ".attention.key_length_mla", static_cast<uint32_t>(s.nope_dim + mla_rot));
      w.add<uint32_t>(a + ".attention.value_length_mla", static_cast<uint32_t>(s.v_dim));
    }
    if (s.n_rot == 0) w.add<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(mla_rot));
    w.add<uint32_t>(a + ".attention.kv_lora_rank", static_cast<uint32_t>(s.kv_lora_rank));
    if (s.q_lora_rank > 0) w.add<uint32_t>(a + ".attention.q_lora_rank", static_cast<uint32_t>(s.q_lora_rank));
  } else if (s.head_dim > 0) {
    w.add<uint32_t>(a + ".attention.key_length", static_cast<uint32_t>(head_dim));
    w.add<uint32_t>(a + ".attention.value_length", static_cast<uint32_t>(head_dim));
  }
  if (s.n_rot > 0) w.add<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(s.n_rot));
  if (a == "granite" || a == "granitemoe") {  // Granite 3's multipliers, of a size that matters on a random model
    w.add<float>(a + ".logit_scale", 4.0f);
    w.add<float>(a + ".residual_scale", 0.5f);
    w.add<float>(a + ".embedding_scale", 3.0f);
    w.add<float>(a + ".attention.scale", 0.2f);
  }
  if (s.extra_keys) s.extra_keys(w);

  Builder b(s, w, tied);
  const bool deepseek = a == "deepseek" || latent;
  const bool width_key = a == "qwen2moe" || a == "qwen3moe" || deepseek;
  const bool moe_arch = width_key || a == "granitemoe";
  const int64_t n_expert = s.n_expert > 0 ? s.n_expert : moe_arch ? 4 : 0;
  const int64_t n_ff_expert = width_key && s.n_ff_expert > 0 ? s.n_ff_expert : s.n_ff;  // llama, granite: n_ff
  const bool shared_gated = a == "qwen2moe";  // granitemoe's: only when n_ff_shared > 0, never gated
  const int64_t n_ff_shared = shared_gated        ? (s.n_ff_shared > 0 ? s.n_ff_shared : s.n_ff)
                              : a == "granitemoe" ? s.n_ff_shared
                              : deepseek          ? s.n_expert_shared * n_ff_expert
                                                  : 0;
  const int64_t n_dense_lead = deepseek ? s.n_dense_lead : 0;
  if (n_expert > 0) {
    w.add<uint32_t>(a + ".expert_count", static_cast<uint32_t>(n_expert));
    w.add<uint32_t>(a + ".expert_used_count", static_cast<uint32_t>(s.n_expert_used));
    if (width_key) w.add<uint32_t>(a + ".expert_feed_forward_length", static_cast<uint32_t>(n_ff_expert));
    if (deepseek) {
      w.add<uint32_t>(a + ".expert_shared_count", static_cast<uint32_t>(s.n_expert_shared));
      w.add<uint32_t>(a + ".leading_dense_block_count", static_cast<uint32_t>(n_dense_lead));
      if (!latent) w.add<float>(a + ".expert_weights_scale", 1.0f);  // as llama.cpp's converter writes (V1 ignores it)
    } else if (n_ff_shared > 0) {
      w.add<uint32_t>(a + ".expert_shared_feed_forward_length", static_cast<uint32_t>(n_ff_shared));
    }
  }

  b.tensor("token_embd.weight", {s.n_embd, s.n_vocab}, Fill::kEmbedding);
  b.tensor("output_norm.weight", {s.n_embd}, Fill::kNorm);
  if (!tied) b.tensor("output.weight", {s.n_embd, s.n_vocab}, Fill::kMatmul);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const auto n = [il](const char* what) { return fmt::format("blk.{}.{}", il, what); };
    b.tensor(n("attn_norm.weight"), {s.n_embd}, Fill::kNorm);
    if (latent) {
      const int64_t q_rows = s.n_head * (s.nope_dim + mla_rot);
      if (s.q_lora_rank > 0) {
        b.tensor(n("attn_q_a.weight"), {s.n_embd, s.q_lora_rank}, Fill::kMatmul);
        b.tensor(n("attn_q_a_norm.weight"), {s.q_lora_rank}, Fill::kNorm);
        b.tensor(n("attn_q_b.weight"), {s.q_lora_rank, q_rows}, Fill::kMatmul);
      } else {
        b.tensor(n("attn_q.weight"), {s.n_embd, q_rows}, Fill::kMatmul);
      }
      b.tensor(n("attn_kv_a_mqa.weight"), {s.n_embd, s.kv_lora_rank + mla_rot}, Fill::kMatmul);
      b.tensor(n("attn_kv_a_norm.weight"), {s.kv_lora_rank}, Fill::kNorm);
      if (s.merged_kv_b) {
        b.tensor(n("attn_kv_b.weight"), {s.kv_lora_rank, s.n_head * (s.nope_dim + s.v_dim)}, Fill::kMatmul);
      } else {
        b.tensor(n("attn_k_b.weight"), {s.nope_dim, s.kv_lora_rank, s.n_head}, Fill::kMatmul);
        b.tensor(n("attn_v_b.weight"), {s.kv_lora_rank, s.v_dim, s.n_head}, Fill::kMatmul);
      }
      b.tensor(n("attn_output.weight"), {s.n_head * s.v_dim, s.n_embd}, Fill::kMatmul);
    } else if (phi3) {
      b.tensor(n("attn_qkv.weight"), {s.n_embd, q_dim + 2 * kv_dim}, Fill::kMatmul);
    } else {
      b.tensor(n("attn_q.weight"), {s.n_embd, q_dim}, Fill::kMatmul);
      b.tensor(n("attn_k.weight"), {s.n_embd, kv_dim}, Fill::kMatmul);
      b.tensor(n("attn_v.weight"), {s.n_embd, kv_dim}, Fill::kMatmul);
    }
    if (bias) {
      b.tensor(n("attn_q.bias"), {q_dim}, Fill::kBias);
      b.tensor(n("attn_k.bias"), {kv_dim}, Fill::kBias);
      b.tensor(n("attn_v.bias"), {kv_dim}, Fill::kBias);
    }
    if (qk_norm) {
      b.tensor(n("attn_q_norm.weight"), {head_dim}, Fill::kNorm);
      b.tensor(n("attn_k_norm.weight"), {head_dim}, Fill::kNorm);
    }
    if (!latent) b.tensor(n("attn_output.weight"), {q_dim, s.n_embd}, Fill::kMatmul);
    if (post_norms) b.tensor(n("post_attention_norm.weight"), {s.n_embd}, Fill::kNorm);
    b.tensor(n("ffn_norm.weight"), {s.n_embd}, Fill::kNorm);
    const bool experts = n_expert > 0 && il >= n_dense_lead;
    if (experts) {
      b.tensor(n("ffn_gate_inp.weight"), {s.n_embd, n_expert}, Fill::kRouter);
      if (s.selection_bias) b.tensor(n("exp_probs_b.bias"), {n_expert}, Fill::kBias);
      b.tensor(n("ffn_gate_exps.weight"), {s.n_embd, n_ff_expert, n_expert}, Fill::kMatmul);
      b.tensor(n("ffn_up_exps.weight"), {s.n_embd, n_ff_expert, n_expert}, Fill::kMatmul);
      b.tensor(n("ffn_down_exps.weight"), {n_ff_expert, s.n_embd, n_expert}, Fill::kMatmul);
      if (n_ff_shared > 0) {
        if (shared_gated) b.tensor(n("ffn_gate_inp_shexp.weight"), {s.n_embd}, Fill::kRouter);
        b.tensor(n("ffn_gate_shexp.weight"), {s.n_embd, n_ff_shared}, Fill::kMatmul);
        b.tensor(n("ffn_up_shexp.weight"), {s.n_embd, n_ff_shared}, Fill::kMatmul);
        b.tensor(n("ffn_down_shexp.weight"), {n_ff_shared, s.n_embd}, Fill::kMatmul);
      }
    } else if (phi3) {
      b.tensor(n("ffn_up.weight"), {s.n_embd, 2 * s.n_ff}, Fill::kMatmul);
    } else {
      b.tensor(n("ffn_gate.weight"), {s.n_embd, s.n_ff}, Fill::kMatmul);
      b.tensor(n("ffn_up.weight"), {s.n_embd, s.n_ff}, Fill::kMatmul);
    }
    if (!experts) b.tensor(n("ffn_down.weight"), {s.n_ff, s.n_embd}, Fill::kMatmul);
    if (post_norms) b.tensor(n("post_ffw_norm.weight"), {s.n_embd}, Fill::kNorm);
  }
  if (s.rope_freqs) b.tensor("rope_freqs.weight", {(s.n_rot > 0 ? s.n_rot : head_dim) / 2}, Fill::kFactors);
  if (phi3) {
    const int64_t n_rot = s.n_rot > 0 ? s.n_rot : head_dim;
    b.tensor("rope_factors_short.weight", {n_rot / 2}, Fill::kFactors);
    b.tensor("rope_factors_long.weight", {n_rot / 2}, Fill::kFactors);
  }
  return w.write_to_memory();
}

}  // namespace ember::test
