// The reference transformer's reading of GGUF files: keys to ReferenceConfig as llama.cpp reads them
// (the llama.cpp function each rule comes from is named next to it), and the RoPE frequencies.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <string_view>

#include "core/check.h"
#include "quant/quant_traits.h"
#include "reference/reference_internal.h"

namespace ember {
namespace {

// ---- rope scaling keys ----

// llama.cpp's semantics (llama_model::load_hparams, llama_context): the factor is
// `rope.scaling.factor`, else the old key `rope.scale_linear` (0 or absent: none); a missing
// `rope.scaling.type` counts as "linear"; type "none" never scales (freq_scale 1) even with a factor;
// "longrope" only divides by the factor like "linear" (the per-dim factors are tensors); "yarn"
// switches ext_factor on (1); `rope.scaling.attn_factor` (default 1) multiplies cos and sin whatever
// the type. n_ctx_orig (n_ctx_orig_yarn) is rope.scaling.original_context_length, else n_ctx_train.
ReferenceRopeScaling rope_scaling_from_gguf(const GgufFile& file, const std::string& prefix, int64_t n_ctx_train) {
  ReferenceRopeScaling s;
  const std::string type = file.get_or<std::string>(prefix + "rope.scaling.type", "linear");
  double factor = 0.0;
  if (auto f = file.get_optional<double>(prefix + "rope.scaling.factor")) {
    factor = *f;
  } else {
    factor = file.get_or<double>(prefix + "rope.scale_linear", 0.0);
  }
  if (factor < 0.0 || !std::isfinite(factor)) {
    fail(ErrorCode::kFormat, "{}: rope scaling factor {} must be >= 0", file.name(), factor);
  }
  s.n_ctx_orig = file.get_or<int64_t>(prefix + "rope.scaling.original_context_length", n_ctx_train);
  if (type == "linear" || type == "longrope") {
    if (factor != 0.0 && factor != 1.0) {
      s.kind = ReferenceRopeScaling::Kind::kLinear;
      s.factor = factor;
    }
  } else if (type == "yarn") {
    s.kind = ReferenceRopeScaling::Kind::kYarn;
    s.factor = factor == 0.0 ? 1.0 : factor;
    // A factor under 1 would make llama.cpp's mscale (get_mscale, then ggml's) differ between layers;
    // no model does it.
    if (s.factor < 1.0 || s.n_ctx_orig <= 0) {
      fail(ErrorCode::kUnsupported, "{}: yarn needs a factor >= 1 (got {}) and an original context (got {})",
           file.name(), s.factor, s.n_ctx_orig);
    }
  } else if (type != "none") {
    fail(ErrorCode::kUnsupported, "{}: rope scaling type '{}' is not in the reference model yet", file.name(), type);
  }
  s.attn_factor = file.get_or<double>(prefix + "rope.scaling.attn_factor", 1.0);
  return s;
}

int64_t vocab_size_from_gguf(const GgufFile& file, const std::string& prefix) {
  if (auto n = file.get_optional<int64_t>(prefix + "vocab_size")) return *n;
  if (file.contains("tokenizer.ggml.tokens"))
    return static_cast<int64_t>(file.get_strings("tokenizer.ggml.tokens").size());
  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr || embd->n_dims != 2) {
    fail(ErrorCode::kNotFound, "{}: no vocabulary size (no {}vocab_size, tokenizer.ggml.tokens or token_embd.weight)",
         file.name(), prefix);
  }
  return embd->ne[1];
}

bool is_gemma(const std::string& arch) { return arch == "gemma" || arch == "gemma2" || arch == "gemma3"; }

// ---- architectures ----

double positive_key(const GgufFile& file, const std::string& key, double fallback) {
  const double v = file.get_or<double>(key, fallback);
  if (!(v > 0.0) || !std::isfinite(v)) fail(ErrorCode::kFormat, "{}: {} = {} must be > 0", file.name(), key, v);
  return v;
}

// Phi-3 (llama_model_phi3 / llm_build_phi3): neox rope over rope.dimension_count dims, q/k/v fused
// in attn_qkv or separate, gate and up in one ffn_up (gate first, SwiGLU), optional LongRoPE
// factors (rope_factors_short/long.weight, n_rot/2 each). llama.cpp ignores
// phi3.attention.sliding_window: it logs "Phi SWA is currently disabled" and sets no window.
void map_phi3(const GgufFile& file, ReferenceConfig& c) {
  c.traits.rope = ReferenceTraits::Rope::kNeox;
  for (auto [name, factors] : {std::pair{"rope_factors_short.weight", &c.rope_factors_short},
                               {"rope_factors_long.weight", &c.rope_factors_long}}) {
    if (const GgufTensorInfo* t = file.find_tensor(name)) *factors = reference_read_tensor(file, *t, {c.n_rot / 2});
  }
}

// Gemma 1 / 2 / 3 (load_hparams cases LLM_ARCH_GEMMA*, src/models/gemma.cpp, gemma2-iswa.cpp,
// gemma3.cpp): token embeddings times sqrt(n_embd), neox rope, GeGLU (gelu tanh), separate gate and
// up, output tied to token_embd (gemma3: unless the file has output.weight), queries scaled by
// 1/sqrt(key_length). The GGUF norm weights already include Gemma's +1. Gemma 2 / 3 add
// post-attention and post-FFN RMSNorms, and scale queries by f_attention_scale: 1/sqrt(n_embd /
// n_head) for the 27B models, which llama.cpp recognizes by their layer count (46 for gemma2, 62
// for gemma3), else 1/sqrt(key_length).
void map_gemma(const GgufFile& file, const std::string& p, ReferenceConfig& c) {
  ReferenceTraits& t = c.traits;
  const bool gemma3 = c.arch == "gemma3";
  t.rope = ReferenceTraits::Rope::kNeox;
  t.ffn = ReferenceTraits::Ffn::kGeGLU;
  t.embd_scale = std::sqrt(static_cast<double>(c.n_embd));
  if (c.arch == "gemma") return;  // no post norms, caps or window
  t.post_norms = true;
  if (c.n_layer == (gemma3 ? 62 : 46)) c.attn_scale = 1.0 / std::sqrt(static_cast<double>(c.n_embd / c.n_head));
  t.sliding_layers.assign(static_cast<size_t>(c.n_layer), false);
  if (!gemma3) {
    // Soft-caps (hparams defaults 50 and 30 when the keys are missing) and a window (default 4096)
    // in the even layers: set_swa_pattern(2) makes layer il local when il % 2 < 1.
    t.attn_softcap = positive_key(file, p + "attn_logit_softcapping", 50.0);
    t.final_softcap = positive_key(file, p + "final_logit_softcapping", 30.0);
    t.sliding_window = file.get_or<int64_t>(p + "attention.sliding_window", 4096);
    if (t.sliding_window <= 0) fail(ErrorCode::kFormat, "{}: gemma2's sliding_window must be > 0", file.name());
    for (int64_t il = 0; il < c.n_layer; ++il) t.sliding_layers[static_cast<size_t>(il)] = il % 2 == 0;
    return;
  }
  // gemma3: QK-norm, no attention soft-cap, a final soft-cap only when the key says so (default 0).
  // With a window > 0, set_swa_pattern(6): layer il is local when il % 6 < 5 (every 6th global), and
  // local layers rotate with base 10000 and no scaling; without one every layer is global.
  t.qk_norm = true;
  t.final_softcap = file.get_or<double>(p + "final_logit_softcapping", 0.0);
  if (t.final_softcap < 0.0) fail(ErrorCode::kFormat, "{}: negative final_logit_softcapping", file.name());
  const int64_t window = file.get_or<int64_t>(p + "attention.sliding_window", 0);
  if (window > 0) {
    t.sliding_window = window;
    for (int64_t il = 0; il < c.n_layer; ++il) t.sliding_layers[static_cast<size_t>(il)] = il % 6 < 5;
    c.rope_base_swa = 10000.0;
  }
}

// Granite (llama_model_granite: load_arch_hparams, graph; build_inp_embd): llama's graph and rope with
// f_logit_scale (required) dividing the logits, and, when not 0, f_residual_scale multiplying the
// attention and FFN outputs before their residual adds, f_embedding_scale the token embeddings and
// f_attention_scale replacing 1/sqrt(head_dim); rope.scaling.finetuned (default true) false turns
// rope off in every layer. Its experts: map_experts.
void map_granite(const GgufFile& file, const std::string& p, ReferenceConfig& c) {
  c.traits.logit_scale = file.get<double>(p + "logit_scale");
  if (!(c.traits.logit_scale > 0.0)) fail(ErrorCode::kFormat, "{}: logit_scale must be > 0", file.name());
  const auto unless_zero = [&](const char* key, double& into) {
    const double v = file.get_or<double>(p + key, 0.0);
    if (v < 0.0) fail(ErrorCode::kFormat, "{}: {}{} is negative", file.name(), p, key);
    if (v != 0.0) into = v;
  };
  unless_zero("residual_scale", c.traits.residual_scale);
  unless_zero("embedding_scale", c.traits.embd_scale);
  unless_zero("attention.scale", c.attn_scale);
  if (!file.get_or<bool>(p + "rope.scaling.finetuned", true)) {
    c.traits.nope_layers.assign(static_cast<size_t>(c.n_layer), true);
  }
}

// Mixtures of experts (load_hparams: expert_count / expert_used_count / expert_feed_forward_length,
// n_ff_exp falling back to n_ff / n_expert_used; the llm_build_* graphs' build_moe_ffn arguments):
// llama (Mixtral) when expert_count > 0, experts of feed_forward_length, chosen weights normalized;
// qwen3moe normalized; qwen2moe as they are, plus the shared expert (expert_shared_feed_forward_length,
// else n_ff). A width of 0 counts as absent (hparams.n_ff_exp ? ... : fallback). granite and
// granitemoe (one loader, llama_model_granite) as Mixtral when expert_count > 0, else dense (either
// name): experts of n_ff (load_arch_tensors' {n_embd, n_ff, n_expert}), normalized (build_moe_ffn's
// norm_w; expert_weights_scale is not read, so 0: no scale), plus when expert_shared_feed_forward_length
// > 0 a shared expert added to their sum without a gate.
//
// deepseek (llama_model_deepseek: leading_dense_block_count, expert_feed_forward_length,
// expert_shared_count; src/models/deepseek.cpp: build_moe_ffn(..., norm_w false, scale_w false,
// softmax)): the first leading_dense_block_count layers dense, the experts' probabilities as they are,
// plus expert_shared_count experts' width of shared expert, ungated. deepseek2 (load_arch_hparams;
// build_moe_ffn with hparams.expert_weights_norm, expert_weights_scale, expert_gating_func and the
// layer's exp_probs_b; llama-graph's group-limited choice when expert_group_count > 1) the same, with
// the norm, the scale (0: none), the gating (1 softmax, 2 sigmoid) and the groups from the file.
void map_experts(const GgufFile& file, const std::string& p, ReferenceConfig& c) {
  const bool granite = c.arch == "granite" || c.arch == "granitemoe";
  const bool deepseek = c.arch == "deepseek" || c.arch == "deepseek2";
  c.n_expert = file.get_or<int64_t>(p + "expert_count", 0);
  if ((c.arch == "llama" || granite) && c.n_expert == 0) return;
  if (c.n_expert <= 0) fail(ErrorCode::kFormat, "{}: {} needs {}expert_count > 0", file.name(), c.arch, p);
  c.n_expert_used = file.get<int64_t>(p + "expert_used_count");
  if (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert) {
    fail(ErrorCode::kFormat, "{}: expert_used_count {} is not in 1..{}", file.name(), c.n_expert_used, c.n_expert);
  }
  c.n_ff_expert = c.arch == "llama" || granite ? c.n_ff : file.get_or<int64_t>(p + "expert_feed_forward_length", 0);
  if (c.n_ff_expert == 0) c.n_ff_expert = c.n_ff / c.n_expert_used;
  c.expert_weights_norm = c.arch != "qwen2moe";
  if (deepseek) {
    c.n_layer_dense_lead = file.get_or<int64_t>(p + "leading_dense_block_count", 0);
    c.n_ff_shared_expert = c.n_ff_expert * file.get<int64_t>(p + "expert_shared_count");
    c.shared_expert_gated = false;
    c.expert_weights_norm = c.arch == "deepseek2" && file.get_or<bool>(p + "expert_weights_norm", false);
    if (c.arch == "deepseek2") {
      c.expert_weights_scale = file.get_or<double>(p + "expert_weights_scale", 0.0);
      // No key: softmax, but sigmoid for GLM-4.7-Flash's shapes (load_arch_hparams' rule).
      const bool glm_flash = (c.n_layer == 47 || c.n_layer == 48) && c.n_vocab == 154880;
      const int64_t gating = file.get_or<int64_t>(p + "expert_gating_func", glm_flash ? 2 : 1);
      if (gating != 1 && gating != 2) {
        fail(ErrorCode::kUnsupported, "{}: expert_gating_func {} is not softmax (1) or sigmoid (2)", file.name(),
             gating);
      }
      c.expert_gating_sigmoid = gating == 2;
      c.n_expert_group = file.get_or<int64_t>(p + "expert_group_count", 0);
      c.n_expert_group_used = file.get_or<int64_t>(p + "expert_group_used_count", 0);
    }
  }
  if (c.arch == "qwen2moe") {
    c.n_ff_shared_expert = file.get_or<int64_t>(p + "expert_shared_feed_forward_length", 0);
    if (c.n_ff_shared_expert == 0) c.n_ff_shared_expert = c.n_ff;
  }
  if (granite) {
    c.n_ff_shared_expert = file.get_or<int64_t>(p + "expert_shared_feed_forward_length", 0);
    c.shared_expert_gated = false;
  }
}

// deepseek2 (llama_model_deepseek2::load_arch_hparams, the MLA files of llama.cpp's converter since
// April 2025: attention.key_length_mla and value_length_mla present): attention.kv_lora_rank,
// q_lora_rank (none when the file has attn_q: "lite"), the per-head sizes from the _mla keys, normal
// rope. The scale (src/models/deepseek2.cpp and llama-context's YaRN set-up): with yarn, the rope's
// attn_factor is get_mscale(s, 1) when rope.scaling.yarn_log_multiplier is absent or 0 (else 1),
// over 1 + 0.1·ln s (cancelling ggml's own YaRN magnitude), times rope.scaling.attn_factor; then
// mscale = attn_factor·(1 + 0.1·ln s)·(1 + 0.1·m·ln s), m the stored multiplier / 0.1, and the scale
// is mscale² / sqrt(key_length_mla); s = the scaling factor.
void map_latent_attention(const GgufFile& file, const std::string& p, ReferenceConfig& c) {
  if (file.get_or<double>(p + "attention.temperature_scale", 0.0) != 0.0) {
    fail(ErrorCode::kUnsupported, "{}: attention.temperature_scale is not in the reference yet", file.name());
  }
  c.kv_lora_rank = file.get<int64_t>(p + "attention.kv_lora_rank");
  c.q_lora_rank =
      file.find_tensor("blk.0.attn_q.weight") != nullptr ? 0 : file.get<int64_t>(p + "attention.q_lora_rank");
  // is_mla() (both _mla keys): the MLA conversion's attn_k_b / attn_v_b, key_length / value_length
  // the cached row's; without them the earlier attn_kv_b, key_length / value_length the heads'.
  c.mla_merged_kv_b = !file.contains(p + "attention.key_length_mla");
  const int64_t key_mla = c.mla_merged_kv_b ? c.head_dim : file.get<int64_t>(p + "attention.key_length_mla");
  c.mla_nope = key_mla - c.n_rot;
  c.mla_v = c.mla_merged_kv_b ? file.get_or<int64_t>(p + "attention.value_length", c.head_dim)
                              : file.get<int64_t>(p + "attention.value_length_mla");
  const bool rows_fit =
      c.mla_merged_kv_b ? c.n_head_kv == c.n_head : c.head_dim == c.kv_lora_rank + c.n_rot && c.n_head_kv == 1;
  if (c.mla_nope <= 0 || c.mla_v <= 0 || !rows_fit) {
    fail(ErrorCode::kFormat, "{}: inconsistent latent attention sizes", file.name());
  }
  ReferenceRopeScaling& s = c.rope_scaling;
  const double log_s = s.kind == ReferenceRopeScaling::Kind::kNone ? 0.0 : std::log(s.factor);
  std::optional<double> log_mul = file.get_optional<double>(p + "rope.scaling.yarn_log_multiplier");
  if (log_mul && *log_mul == 0.0) log_mul.reset();  // llama.cpp tests the value (rope_yarn_log_mul != 0)
  if (s.kind == ReferenceRopeScaling::Kind::kYarn) {
    const double yarn_factor = log_mul ? 1.0 : (s.factor <= 1.0 ? 1.0 : 1.0 + 0.1 * log_s);
    s.attn_factor *= yarn_factor / (1.0 + 0.1 * log_s);
  }
  const double m = log_mul ? *log_mul / 0.1 : 0.0;
  const double mscale = s.attn_factor * (1.0 + 0.1 * log_s) * (1.0 + 0.1 * m * log_s);
  c.attn_scale = mscale * mscale / std::sqrt(static_cast<double>(key_mla));
}

// Layouts the reference's generic loader would take but llama.cpp's loader for the architecture
// does not (a missing tensor or one left over fails there), so that they fail here too.
void check_layout(const GgufFile& file, const ReferenceConfig& c) {
  auto unsupported = [&](const std::string& what) {
    fail(ErrorCode::kUnsupported, "{}: {} (llama.cpp does not load such a {} file)", file.name(), what, c.arch);
  };
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const bool has_gate = file.find_tensor("blk." + std::to_string(il) + ".ffn_gate.weight") != nullptr;
    if (c.arch == "phi3" && has_gate) unsupported("a separate ffn_gate (phi3 keeps gate and up in ffn_up)");
    if (is_gemma(c.arch) && !has_gate) unsupported("no ffn_gate (gemma has separate gate and up)");
  }
  if ((c.arch == "gemma" || c.arch == "gemma2") && file.find_tensor("output.weight") != nullptr) {
    unsupported("output.weight (the output is always token_embd)");
  }
  if (c.arch == "phi3" && c.n_head * c.head_dim != c.n_embd) unsupported("n_head * head_dim != n_embd");
}

// Angle multiplier of pair i under YaRN (ggml_rope_yarn_corr_dims, rope_yarn_ramp, rope_yarn with
// ext_factor 1): r + (1 - r)/factor, r falling linearly from 1 at the correction dim of beta_fast
// to 0 at that of beta_slow, where corr_dim(β) = n_rot·ln(n_ctx_orig / (2πβ)) / (2·ln(base)).
double yarn_mix(const ReferenceRopeScaling& s, int64_t n_rot, double base, int64_t i) {
  auto corr_dim = [&](double beta) {
    return static_cast<double>(n_rot) * std::log(static_cast<double>(s.n_ctx_orig) / (beta * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(base));
  };
  const double low = std::max(0.0, std::floor(corr_dim(s.yarn_beta_fast)));
  const double high = std::min(static_cast<double>(n_rot - 1), std::ceil(corr_dim(s.yarn_beta_slow)));
  const double y = (static_cast<double>(i) - low) / std::max(0.001, high - low);
  const double ramp = 1.0 - std::clamp(y, 0.0, 1.0);
  return ramp + (1.0 - ramp) / s.factor;
}

}  // namespace

// The tensor as doubles, after checking its shape (ggml order, trailing 1s implied).
std::vector<double> reference_read_tensor(const GgufFile& file, const GgufTensorInfo& info,
                                          std::vector<int64_t> shape) {
  shape.resize(kGgufMaxDims, 1);
  for (int d = 0; d < kGgufMaxDims; ++d) {
    if (info.ne[d] != shape[d]) {
      fail(ErrorCode::kFormat, "{}: tensor {} has shape [{}, {}, {}, {}], expected [{}, {}, {}, {}]", file.name(),
           info.name, info.ne[0], info.ne[1], info.ne[2], info.ne[3], shape[0], shape[1], shape[2], shape[3]);
    }
  }
  std::vector<float> values(info.n_elements);
  dequantize(info.dtype, file.tensor_data(info), values.data(), static_cast<int64_t>(info.n_elements));
  return std::vector<double>(values.begin(), values.end());
}

void reference_validate(const ReferenceConfig& c, const std::string& name) {
  auto require = [&](bool ok, const char* what) {
    if (!ok) fail(ErrorCode::kFormat, "{}: impossible model dimensions: {}", name, what);
  };
  require(c.n_vocab > 0 && c.n_embd > 0 && c.n_layer > 0 && c.n_ff > 0, "n_vocab, n_embd, n_layer, n_ff must be > 0");
  require(c.n_head > 0 && c.n_head_kv > 0 && c.n_head % c.n_head_kv == 0, "n_head must be a multiple of n_head_kv");
  require(c.head_dim > 0, "head_dim must be > 0");
  require(c.n_rot > 0 && c.n_rot % 2 == 0 && c.n_rot <= c.head_dim, "n_rot must be even and in (0, head_dim]");
  require(c.rms_eps >= 0 && c.rope_base > 0 && c.rope_base_swa >= 0, "rms_eps must be >= 0 and rope bases > 0");
  for (const std::vector<double>* f : {&c.rope_freq_factors, &c.rope_factors_short, &c.rope_factors_long}) {
    require(f->empty() || static_cast<int64_t>(f->size()) == c.n_rot / 2, "rope factors must hold n_rot/2 values");
  }
  require(c.traits.sliding_window >= 0, "sliding_window must be >= 0");
  require(c.n_expert == 0 || (c.n_expert_used >= 1 && c.n_expert_used <= c.n_expert && c.n_ff_expert > 0),
          "a mixture of experts needs 1 <= n_expert_used <= n_expert and n_ff_expert > 0");
  require(c.n_layer_dense_lead >= 0 && c.n_layer_dense_lead <= c.n_layer, "n_layer_dense_lead must be in [0, n_layer]");
  // (llama.cpp's load-time asserts on the groups.)
  require(c.n_expert_group <= 1 || (c.n_expert % c.n_expert_group == 0 && c.n_expert / c.n_expert_group >= 2 &&
                                    c.n_expert_group_used > 0 && c.n_expert_group_used < c.n_expert_group &&
                                    c.n_expert_used <= c.n_expert_group_used * (c.n_expert / c.n_expert_group)),
          "expert groups must split n_expert evenly, at least two each, and n_expert_group_used in [1, groups)");
  require(c.traits.sliding_layers.empty() || static_cast<int64_t>(c.traits.sliding_layers.size()) == c.n_layer,
          "sliding_layers must be empty or hold n_layer flags");
  require(c.traits.nope_layers.empty() || static_cast<int64_t>(c.traits.nope_layers.size()) == c.n_layer,
          "nope_layers must be empty or hold n_layer flags");
}

// Whether reference_config_from_gguf reads the non-layer tensor `name` of an `arch` file into the
// config: rope_freqs for llama, granite and granitemoe (llama.cpp's loaders; for qwen2 / qwen3 as the reference always
// did), the LongRoPE factors for phi3. Such a tensor counts as used when the weights load; any other tensor nobody
// reads is an error.
bool reference_config_reads_tensor(const std::string& arch, std::string_view name) {
  if (name == "rope_freqs.weight") {
    return arch == "llama" || arch == "qwen2" || arch == "qwen3" || arch == "granite" || arch == "granitemoe";
  }
  if (name == "rope_factors_short.weight" || name == "rope_factors_long.weight") return arch == "phi3";
  return false;
}

ReferenceConfig reference_config_from_gguf(const GgufFile& file) {
  ReferenceConfig c;
  c.arch = file.get<std::string>("general.architecture");
  const bool moe_arch = c.arch == "qwen2moe" || c.arch == "qwen3moe" || c.arch == "deepseek" || c.arch == "deepseek2";
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3" && c.arch != "phi3" && !is_gemma(c.arch) &&
      c.arch != "smollm3" && c.arch != "granite" && c.arch != "granitemoe" && !moe_arch) {
    fail(ErrorCode::kUnsupported,
         "{}: architecture '{}' has no reference traits yet (supported: llama, qwen2, qwen3, phi3, gemma, gemma2, "
         "gemma3, smollm3, granite, granitemoe, qwen2moe, qwen3moe, deepseek, deepseek2)",
         file.name(), c.arch);
  }
  const std::string p = c.arch + ".";
  c.n_embd = file.get<int64_t>(p + "embedding_length");
  c.n_layer = file.get<int64_t>(p + "block_count");
  c.n_head = file.get<int64_t>(p + "attention.head_count");
  c.n_head_kv = file.get_or<int64_t>(p + "attention.head_count_kv", c.n_head);
  if (c.n_head <= 0) fail(ErrorCode::kFormat, "{}: {}attention.head_count must be > 0", file.name(), p);
  c.head_dim = file.get_or<int64_t>(p + "attention.key_length", c.n_embd / c.n_head);
  if (c.arch != "deepseek2" && file.get_or<int64_t>(p + "attention.value_length", c.head_dim) != c.head_dim) {
    fail(ErrorCode::kUnsupported, "{}: key_length != value_length is not in the reference model yet", file.name());
  }
  c.n_ff = file.get<int64_t>(p + "feed_forward_length");
  c.n_vocab = vocab_size_from_gguf(file, p);
  c.n_ctx_train = file.get_or<int64_t>(p + "context_length", 0);
  c.rms_eps = file.get<double>(p + "attention.layer_norm_rms_epsilon");
  c.rope_base = file.get_or<double>(p + "rope.freq_base", 10000.0);
  c.n_rot = file.get_or<int64_t>(p + "rope.dimension_count", c.head_dim);
  if (c.n_rot <= 0 || c.n_rot % 2 != 0)
    fail(ErrorCode::kFormat, "{}: n_rot {} must be even and > 0", file.name(), c.n_rot);
  c.rope_scaling = rope_scaling_from_gguf(file, p, c.n_ctx_train);
  const GgufTensorInfo* freqs = file.find_tensor("rope_freqs.weight");
  if (freqs != nullptr && reference_config_reads_tensor(c.arch, "rope_freqs.weight")) {
    c.rope_freq_factors = reference_read_tensor(file, *freqs, {c.n_rot / 2});
  }
  // llama.cpp adds q/k/v biases when the file has them (llama; qwen2 always has them).
  c.traits.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (c.arch == "qwen2" || c.arch == "qwen3" || c.arch == "qwen2moe" || c.arch == "qwen3moe") {
    c.traits.rope = ReferenceTraits::Rope::kNeox;
    c.traits.qkv_bias = c.traits.qkv_bias || c.arch == "qwen2" || c.arch == "qwen2moe";
    c.traits.qk_norm = c.arch == "qwen3" || c.arch == "qwen3moe";
  } else if (c.arch == "phi3") {
    map_phi3(file, c);
  } else if (is_gemma(c.arch)) {
    map_gemma(file, p, c);
  } else if (c.arch == "granite" || c.arch == "granitemoe") {
    map_granite(file, p, c);
  } else if (c.arch == "smollm3") {
    // llama_model_smollm3 / src/models/smollm3.cpp: llama's graph with use_rope = (il + 1) %
    // n_no_rope_layer_step != 0, the step set to 4 in load_hparams (no GGUF key).
    c.traits.nope_layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t il = 0; il < c.n_layer; ++il) c.traits.nope_layers[static_cast<size_t>(il)] = (il + 1) % 4 == 0;
  }
  if (c.arch == "deepseek2") map_latent_attention(file, p, c);
  if (c.arch == "llama" || c.arch == "granite" || c.arch == "granitemoe" || moe_arch) map_experts(file, p, c);
  check_layout(file, c);
  reference_validate(c, file.name());
  return c;
}

// ---- rope frequencies ----

std::vector<double> reference_llama3_freq_factors(int64_t n_rot, double rope_base, const ReferenceRopeScaling& s) {
  const double n_ctx = static_cast<double>(s.n_ctx_orig);
  const double short_wavelen = n_ctx / s.high_freq_factor;  // shorter: the frequency is kept
  const double long_wavelen = n_ctx / s.low_freq_factor;    // longer: divided by the full factor
  std::vector<double> factors(static_cast<size_t>(n_rot / 2));
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double freq = std::pow(rope_base, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double f;
    if (wavelen < short_wavelen) {
      f = 1.0;
    } else if (wavelen > long_wavelen) {
      f = s.factor;
    } else {
      // The new frequency blends freq/factor and freq linearly in n_ctx/wavelen.
      const double smooth = (n_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    factors[static_cast<size_t>(i)] = f;
  }
  return factors;
}

std::vector<double> reference_rope_freq_factors(const ReferenceConfig& c) {
  if (!c.rope_freq_factors.empty()) return c.rope_freq_factors;
  if (!c.rope_factors_short.empty() || !c.rope_factors_long.empty()) {
    return c.n_ctx_seq > c.rope_scaling.n_ctx_orig ? c.rope_factors_long : c.rope_factors_short;
  }
  if (c.rope_scaling.kind == ReferenceRopeScaling::Kind::kLlama3) {
    return reference_llama3_freq_factors(c.n_rot, c.rope_base, c.rope_scaling);
  }
  return {};
}

std::vector<double> reference_rope_thetas(const ReferenceConfig& c, bool sliding_layer) {
  using Kind = ReferenceRopeScaling::Kind;
  const bool own_rope = sliding_layer && c.rope_base_swa > 0;
  const double base = own_rope ? c.rope_base_swa : c.rope_base;
  const Kind kind = own_rope ? Kind::kNone : c.rope_scaling.kind;
  const std::vector<double> factors = reference_rope_freq_factors(c);
  std::vector<double> thetas(static_cast<size_t>(c.n_rot / 2));
  for (size_t i = 0; i < thetas.size(); ++i) {
    double theta = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(c.n_rot));
    if (!factors.empty()) theta /= factors[i];
    if (kind == Kind::kLinear) theta /= c.rope_scaling.factor;
    if (kind == Kind::kYarn) theta *= yarn_mix(c.rope_scaling, c.n_rot, base, static_cast<int64_t>(i));
    thetas[i] = theta;
  }
  return thetas;
}

double reference_rope_mscale(const ReferenceConfig& c, bool sliding_layer) {
  const ReferenceRopeScaling& s = c.rope_scaling;
  const bool scaled = !(sliding_layer && c.rope_base_swa > 0);
  if (s.kind == ReferenceRopeScaling::Kind::kYarn && scaled && s.factor > 1.0) {
    return s.attn_factor * (1.0 + 0.1 * std::log(s.factor));
  }
  return s.attn_factor;
}

}  // namespace ember
