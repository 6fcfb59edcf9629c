// ArchReader: checked access to "<arch>.*" keys, and the hyper-parameters Llama-like models share.
#include "model/arch/arch_reader.h"

#include <cmath>
#include <limits>

#include "ember/error.h"

namespace ember {

std::string ArchReader::key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

int32_t ArchReader::count_or(std::string_view suffix, int32_t fallback, int64_t min, int64_t max) const {
  const std::string k = key(suffix);
  const std::optional<int64_t> value = file_.get_optional<int64_t>(k);
  if (!value) return fallback;
  if (*value < min || *value > max) {
    fail(ErrorCode::kFormat, "{}: {} = {} is outside [{}, {}]", file_.name(), k, *value, min, max);
  }
  return static_cast<int32_t>(*value);
}

int32_t ArchReader::count(std::string_view suffix, int64_t min, int64_t max) const {
  const std::string k = key(suffix);
  if (!file_.contains(k)) fail(ErrorCode::kNotFound, "{}: the model has no {}", file_.name(), k);
  return count_or(suffix, 0, min, max);
}

std::optional<float> ArchReader::optional_float(std::string_view suffix) const {
  const std::string k = key(suffix);
  const std::optional<double> value = file_.get_optional<double>(k);
  if (!value) return std::nullopt;
  if (!std::isfinite(*value) || std::fabs(*value) > std::numeric_limits<float>::max()) {
    fail(ErrorCode::kFormat, "{}: {} = {} is not a finite float", file_.name(), k, *value);
  }
  return static_cast<float>(*value);
}

float ArchReader::positive_or(std::string_view suffix, float fallback) const {
  const std::optional<float> value = optional_float(suffix);
  if (!value) return fallback;
  if (*value <= 0.0f) fail(ErrorCode::kFormat, "{}: {} = {} must be > 0", file_.name(), key(suffix), *value);
  return *value;
}

float ArchReader::positive(std::string_view suffix) const {
  if (!file_.contains(key(suffix))) fail(ErrorCode::kNotFound, "{}: the model has no {}", file_.name(), key(suffix));
  return positive_or(suffix, 0.0f);
}

std::optional<std::string_view> ArchReader::optional_string(std::string_view suffix) const {
  return file_.get_optional<std::string_view>(key(suffix));
}

void ArchReader::read_common(ModelConfig& c, std::string_view norm_eps_key) const {
  constexpr int64_t kMaxDim = 1 << 20;
  c.n_embd = count("embedding_length", 1, kMaxDim);
  c.n_layer = count("block_count", 1, 4096);
  c.n_ff = count("feed_forward_length", 1, kMaxDim);
  c.n_head = count("attention.head_count", 1, 4096);
  c.n_head_kv = count_or("attention.head_count_kv", c.n_head, 1, c.n_head);
  if (!file_.contains(key("attention.key_length")) && c.n_embd % c.n_head != 0) {
    fail(ErrorCode::kFormat, "{}: {} = {} does not split into {} = {} heads (and there is no {})", file_.name(),
         key("embedding_length"), c.n_embd, key("attention.head_count"), c.n_head, key("attention.key_length"));
  }
  c.head_dim = count_or("attention.key_length", c.n_embd / c.n_head, 1, 65536);
  c.head_dim_v = count_or("attention.value_length", c.head_dim, 1, 65536);
  c.context_length = count_or("context_length", 4096, 1, int64_t{1} << 30);
  c.norm_eps = positive(norm_eps_key);

  // The vocabulary size: <arch>.vocab_size, else the token list, else token_embd's rows.
  if (const GgufModelFiles::Tensor* embd = model_.find_tensor("token_embd.weight");
      embd != nullptr && embd->info->n_dims == 2) {
    c.n_vocab = static_cast<int32_t>(embd->info->ne[1]);
  } else if (file_.contains("tokenizer.ggml.tokens")) {
    c.n_vocab = static_cast<int32_t>(file_.get_strings("tokenizer.ggml.tokens").size());
  }
  c.n_vocab = count_or("vocab_size", c.n_vocab, 1, INT32_MAX);
  if (c.n_vocab <= 0)
    fail(ErrorCode::kNotFound, "{}: the model has no {} and no token_embd.weight", file_.name(), key("vocab_size"));
  c.tied_output = !has_tensor("output.weight");

  RopeParams& rope = c.rope;
  rope.n_rot = count_or("rope.dimension_count", c.head_dim, 2, c.head_dim);
  rope.freq_base = positive_or("rope.freq_base", 10000.0f);
  rope.n_ctx_orig = count_or("rope.scaling.original_context_length", c.context_length, 1, int64_t{1} << 30);
  // As llama.cpp: the factor is rope.scaling.factor (or the older rope.scale_linear) whatever the
  // type; a file with a factor and no type scales linearly; only "none" turns the factor off.
  std::optional<float> factor = optional_float("rope.scaling.factor");
  if (!factor) factor = optional_float("rope.scale_linear");
  if (factor && *factor < 0.0f)
    fail(ErrorCode::kFormat, "{}: {} = {} is negative", file_.name(), key("rope.scaling.factor"), *factor);
  const std::string_view scaling = optional_string("rope.scaling.type").value_or("linear");
  if (scaling != "none" && scaling != "linear" && scaling != "yarn" && scaling != "llama3" && scaling != "longrope") {
    fail(ErrorCode::kUnsupported, "{}: {} = \"{}\" is not supported (none, linear, yarn, llama3, longrope)",
         file_.name(), key("rope.scaling.type"), scaling);
  }
  if (scaling != "none" && factor && *factor != 0.0f) rope.freq_scale = 1.0f / *factor;  // 0: llama.cpp's "none"
  if (scaling == "yarn") {
    rope.ext_factor = 1.0f;
    rope.beta_fast = positive_or("rope.scaling.yarn_beta_fast", 32.0f);
    rope.beta_slow = positive_or("rope.scaling.yarn_beta_slow", 1.0f);
  }
  rope.attn_factor = positive_or("rope.scaling.attn_factor", 1.0f);
  // Llama 3.1+ stores its scaling as per-dimension frequency divisors in the rope_freqs tensor.
  rope.freq_factors = factors("rope_freqs.weight", rope.n_rot / 2);
  c.layers.assign(static_cast<size_t>(c.n_layer), LayerConfig{});
}

void ArchReader::read_experts(ModelConfig& c, bool norm_weights, bool width_from_key) const {
  constexpr int64_t kMaxExperts = 512;  // llama.cpp's LLAMA_MAX_EXPERTS
  MoeConfig& moe = c.moe;
  moe.n_expert = count("expert_count", 1, kMaxExperts);
  moe.n_used = count("expert_used_count", 1, moe.n_expert);
  moe.n_ff_expert = width_from_key ? count_or("expert_feed_forward_length", 0, 0, 1 << 20) : c.n_ff;
  if (moe.n_ff_expert == 0) moe.n_ff_expert = c.n_ff / moe.n_used;
  if (moe.n_ff_expert <= 0) {
    fail(ErrorCode::kFormat, "{}: {} = {} leaves no width for {} experts per token (and {} is 0 or absent)",
         file_.name(), key("feed_forward_length"), c.n_ff, moe.n_used, key("expert_feed_forward_length"));
  }
  moe.norm_weights = norm_weights;
}

void read_gemma_family(const ArchReader& r, ModelConfig& c) {
  r.read_common(c);
  c.rope.neox = true;
  c.ffn = FfnKind::kGeGlu;
  c.embedding_scale = std::sqrt(static_cast<float>(c.n_embd));
}

std::vector<float> ArchReader::factors(std::string_view tensor, int64_t n) const {
  const GgufModelFiles::Tensor* found = model_.find_tensor(tensor);
  if (found == nullptr) return {};
  const GgufTensorInfo* info = found->info;
  if (info->dtype != DType::kF32 || info->n_elements != static_cast<uint64_t>(n)) {
    fail(ErrorCode::kFormat, "{}: {} must be F32 with {} values (rope.dimension_count / 2)", file_.name(), tensor, n);
  }
  const auto* values = static_cast<const float*>(found->file->tensor_view(*info).data());
  std::vector<float> out(values, values + n);
  for (float f : out) {
    if (!(f > 0.0f) || !std::isfinite(f)) {
      fail(ErrorCode::kFormat, "{}: {} holds {} (must be finite and > 0)", file_.name(), tensor, f);
    }
  }
  return out;
}

}  // namespace ember
