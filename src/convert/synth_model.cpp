// Synthetic models: presets, tensor lists in converter order, counter-based random weights (so any
// thread computes any row), tokenizer metadata copied from a vocab GGUF or synthesized.
#include "convert/synth_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "core/check.h"
#include "core/strings.h"
#include "gguf/gguf_reader.h"

namespace ember {
namespace {

constexpr float kWeightStddev = 0.02f;

constexpr Llama3RopeScaling kLlama3Scaling{32.0f, 1.0f, 4.0f, 8192};

constexpr std::array kPresets = {
    SynthPreset{"tiny", "llama", 2, 256, 4, 2, 512, 512, 256, 10000.0f, 1e-5f, false, std::nullopt,
                "models/stories260K/stories260K.gguf", "2-layer test model with the stories260K vocabulary", 0, 0, 0},
    SynthPreset{"smollm-135m", "llama", 30, 576, 9, 3, 1536, 49152, 2048, 10000.0f, 1e-5f, false, std::nullopt,
                "vocab/ggml-vocab-starcoder.gguf", "SmolLM 135M shape (49152-token StarCoder vocabulary)", 0, 0, 0},
    SynthPreset{"qwen2.5-0.5b", "qwen2", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, true, std::nullopt,
                "vocab/ggml-vocab-qwen2.gguf", "Qwen2.5 0.5B shape (q/k/v bias)", 0, 0, 0},
    SynthPreset{"llama-3.2-1b", "llama", 16, 2048, 32, 8, 8192, 128256, 131072, 500000.0f, 1e-5f, false, kLlama3Scaling,
                "vocab/ggml-vocab-llama-bpe.gguf", "Llama 3.2 1B shape (llama3 RoPE scaling)", 0, 0, 0},
    SynthPreset{"llama-3.2-3b", "llama", 28, 3072, 24, 8, 8192, 128256, 131072, 500000.0f, 1e-5f, false, kLlama3Scaling,
                "vocab/ggml-vocab-llama-bpe.gguf", "Llama 3.2 3B shape (llama3 RoPE scaling)", 0, 0, 0},
    // Qwen3-30B-A3B's design (QK-norm, 8 experts per token) at a size a small machine runs, with
    // tied embeddings like every preset (the real model has its own output matrix): 1.4B
    // parameters, about 0.35B of them read per token.
    SynthPreset{"qwen3moe-1.4b", "qwen3moe", 16, 1024, 16, 4, 3072, 151936, 32768, 1000000.0f, 1e-6f, false,
                std::nullopt, "vocab/ggml-vocab-qwen2.gguf",
                "Qwen3-MoE design scaled down: 64 experts of 384, 8 per token", 64, 8, 384},
    // DeepSeek-V2-Lite's design (multi-head latent attention with its 512 + 64 cached row and
    // 128-dim heads, a leading dense layer, 64 experts with 6 per token and 2 shared) at half its
    // width and 12 layers: 1.8B parameters, about 0.4B read per token (the tied 0.1B output included).
    SynthPreset{"deepseek2-1.8b",
                "deepseek2",
                12,
                1024,
                16,
                1,
                2816,
                102400,
                32768,
                10000.0f,
                1e-6f,
                false,
                std::nullopt,
                "vocab/ggml-vocab-deepseek-llm.gguf",
                "DeepSeek-V2-Lite design scaled down: latent attention, 64 experts of 704, 6 per token + 2 shared",
                64,
                6,
                704,
                512,
                128,
                64,
                128,
                1,
                2},
};

enum class Fill { kNormal, kOnes, kRopeFactors };

struct SynthTensor {
  TensorSource source;
  Fill fill;
};

// Tensors in the order llama.cpp's converter writes them; tied embeddings (no output.weight).
std::vector<SynthTensor> synth_tensors(const SynthPreset& p) {
  const int64_t embd = p.n_embd, kv = static_cast<int64_t>(p.head_dim()) * p.n_head_kv;
  std::vector<SynthTensor> t;
  auto add = [&](std::string name, std::vector<int64_t> shape, Fill fill) {
    t.push_back({{std::move(name), DType::kF32, std::move(shape)}, fill});
  };
  add("token_embd.weight", {embd, p.n_vocab}, Fill::kNormal);
  for (int i = 0; i < p.n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    add(b + "attn_norm.weight", {embd}, Fill::kOnes);
    if (p.kv_lora_rank > 0) {  // deepseek2's latent attention, then its dense or expert FFN
      add(b + "attn_q.weight", {embd, int64_t{p.n_head} * (p.nope_dim + p.rope_dim)}, Fill::kNormal);
      add(b + "attn_kv_a_mqa.weight", {embd, p.kv_lora_rank + p.rope_dim}, Fill::kNormal);
      add(b + "attn_kv_a_norm.weight", {p.kv_lora_rank}, Fill::kOnes);
      add(b + "attn_k_b.weight", {p.nope_dim, p.kv_lora_rank, p.n_head}, Fill::kNormal);
      add(b + "attn_v_b.weight", {p.kv_lora_rank, p.v_dim, p.n_head}, Fill::kNormal);
      add(b + "attn_output.weight", {int64_t{p.n_head} * p.v_dim, embd}, Fill::kNormal);
      add(b + "ffn_norm.weight", {embd}, Fill::kOnes);
      if (i < p.n_dense_lead) {
        add(b + "ffn_gate.weight", {embd, p.n_ff}, Fill::kNormal);
        add(b + "ffn_up.weight", {embd, p.n_ff}, Fill::kNormal);
        add(b + "ffn_down.weight", {p.n_ff, embd}, Fill::kNormal);
        continue;
      }
      const int64_t shared = int64_t{p.n_ff_expert} * p.n_expert_shared;
      add(b + "ffn_gate_inp.weight", {embd, p.n_expert}, Fill::kNormal);
      add(b + "ffn_gate_exps.weight", {embd, p.n_ff_expert, p.n_expert}, Fill::kNormal);
      add(b + "ffn_up_exps.weight", {embd, p.n_ff_expert, p.n_expert}, Fill::kNormal);
      add(b + "ffn_down_exps.weight", {p.n_ff_expert, embd, p.n_expert}, Fill::kNormal);
      add(b + "ffn_gate_shexp.weight", {embd, shared}, Fill::kNormal);
      add(b + "ffn_up_shexp.weight", {embd, shared}, Fill::kNormal);
      add(b + "ffn_down_shexp.weight", {shared, embd}, Fill::kNormal);
      continue;
    }
    add(b + "attn_q.weight", {embd, embd}, Fill::kNormal);
    if (p.qkv_bias) add(b + "attn_q.bias", {embd}, Fill::kNormal);
    add(b + "attn_k.weight", {embd, kv}, Fill::kNormal);
    if (p.qkv_bias) add(b + "attn_k.bias", {kv}, Fill::kNormal);
    add(b + "attn_v.weight", {embd, kv}, Fill::kNormal);
    if (p.qkv_bias) add(b + "attn_v.bias", {kv}, Fill::kNormal);
    add(b + "attn_output.weight", {embd, embd}, Fill::kNormal);
    if (p.arch == "qwen3moe") {  // QK-norm
      add(b + "attn_q_norm.weight", {p.head_dim()}, Fill::kOnes);
      add(b + "attn_k_norm.weight", {p.head_dim()}, Fill::kOnes);
    }
    add(b + "ffn_norm.weight", {embd}, Fill::kOnes);
    if (p.n_expert > 0) {
      add(b + "ffn_gate_inp.weight", {embd, p.n_expert}, Fill::kNormal);
      add(b + "ffn_gate_exps.weight", {embd, p.n_ff_expert, p.n_expert}, Fill::kNormal);
      add(b + "ffn_up_exps.weight", {embd, p.n_ff_expert, p.n_expert}, Fill::kNormal);
      add(b + "ffn_down_exps.weight", {p.n_ff_expert, embd, p.n_expert}, Fill::kNormal);
      continue;
    }
    add(b + "ffn_gate.weight", {embd, p.n_ff}, Fill::kNormal);
    add(b + "ffn_up.weight", {embd, p.n_ff}, Fill::kNormal);
    add(b + "ffn_down.weight", {p.n_ff, embd}, Fill::kNormal);
  }
  add("output_norm.weight", {embd}, Fill::kOnes);
  if (p.rope_scaling) add("rope_freqs.weight", {p.head_dim() / 2}, Fill::kRopeFactors);
  return t;
}

// splitmix64: a counter-based generator, so row r of tensor t is the same whichever thread makes it.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A uniform in [-1, 1).
double uniform_signed(uint64_t& state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-52 - 1.0; }

// N(0, stddev) values by Marsaglia's polar method (no trigonometry: about twice as fast as
// Box-Muller), from a stream keyed by (seed, tensor, row).
void fill_normal(uint64_t seed, size_t tensor, int64_t row, float* out, int64_t n) {
  uint64_t state = seed ^ (0xd1b54a32d192ed03ull * (tensor + 1)) ^ (0x8cb92ba72f3d8dd7ull * static_cast<uint64_t>(row));
  splitmix64(state);
  for (int64_t i = 0; i < n; i += 2) {
    double u = 0, v = 0, s = 0;
    do {
      u = uniform_signed(state);
      v = uniform_signed(state);
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double scale = std::sqrt(-2.0 * std::log(s) / s) * kWeightStddev;
    out[i] = static_cast<float>(u * scale);
    if (i + 1 < n) out[i + 1] = static_cast<float>(v * scale);
  }
}

void add_model_metadata(const SynthPreset& p, const SynthOptions& o, GgufWriter& w) {
  const std::string a(p.arch);
  w.add_string("general.architecture", p.arch);
  w.add_string("general.name", fmt::format("synthetic {}", p.name));
  w.add_string("general.description",
               fmt::format("random N(0, {}) weights at the shape of {}, written by ember synth (seed {})",
                           kWeightStddev, p.name, o.seed));
  w.add<uint32_t>("general.file_type", o.all_f32 ? 0u : static_cast<uint32_t>(o.file_type));
  w.add<uint32_t>("general.quantization_version", kQuantizationVersion);
  w.add<uint32_t>(a + ".context_length", static_cast<uint32_t>(p.context_length));
  w.add<uint32_t>(a + ".embedding_length", static_cast<uint32_t>(p.n_embd));
  w.add<uint32_t>(a + ".block_count", static_cast<uint32_t>(p.n_layer));
  w.add<uint32_t>(a + ".feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.add<uint32_t>(a + ".attention.head_count", static_cast<uint32_t>(p.n_head));
  w.add<uint32_t>(a + ".attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.add<float>(a + ".attention.layer_norm_rms_epsilon", p.rms_norm_eps);
  w.add<float>(a + ".rope.freq_base", p.rope_freq_base);
  w.add<uint32_t>(a + ".rope.dimension_count", static_cast<uint32_t>(p.kv_lora_rank > 0 ? p.rope_dim : p.head_dim()));
  w.add<uint32_t>(a + ".vocab_size", static_cast<uint32_t>(p.n_vocab));
  if (p.n_expert > 0) {
    w.add<uint32_t>(a + ".expert_count", static_cast<uint32_t>(p.n_expert));
    w.add<uint32_t>(a + ".expert_used_count", static_cast<uint32_t>(p.n_expert_used));
    w.add<uint32_t>(a + ".expert_feed_forward_length", static_cast<uint32_t>(p.n_ff_expert));
  }
  if (p.kv_lora_rank > 0) {  // llama.cpp's converter's MLA keys: the cached row's sizes, then the heads'
    w.add<uint32_t>(a + ".attention.key_length", static_cast<uint32_t>(p.kv_lora_rank + p.rope_dim));
    w.add<uint32_t>(a + ".attention.value_length", static_cast<uint32_t>(p.kv_lora_rank));
    w.add<uint32_t>(a + ".attention.key_length_mla", static_cast<uint32_t>(p.nope_dim + p.rope_dim));
    w.add<uint32_t>(a + ".attention.value_length_mla", static_cast<uint32_t>(p.v_dim));
    w.add<uint32_t>(a + ".attention.kv_lora_rank", static_cast<uint32_t>(p.kv_lora_rank));
    w.add<uint32_t>(a + ".leading_dense_block_count", static_cast<uint32_t>(p.n_dense_lead));
    w.add<uint32_t>(a + ".expert_shared_count", static_cast<uint32_t>(p.n_expert_shared));
    w.add<float>(a + ".expert_weights_scale", 1.0f);
    w.add<uint32_t>(a + ".expert_gating_func", 1);  // softmax
  }
}

// The tokenizer.* keys of a vocab GGUF whose token count matches the preset.
void add_vocab_from_file(const SynthPreset& p, const std::string& path, GgufWriter& w) {
  const GgufFile vocab = GgufFile::open(path);
  const size_t n_tokens = vocab.get_strings("tokenizer.ggml.tokens").size();
  if (n_tokens != static_cast<size_t>(p.n_vocab)) {
    fail(ErrorCode::kInvalidArgument, "vocabulary '{}' has {} tokens; preset {} needs {}", path, n_tokens, p.name,
         p.n_vocab);
  }
  for (const GgufKeyValue& kv : vocab.metadata()) {
    if (kv.key.starts_with("tokenizer.")) w.add_value(kv.key, kv.value);
  }
}

// A SentencePiece-style placeholder: <unk> <s> </s>, the 256 byte tokens, then unique filler pieces.
// It loads anywhere a llama vocabulary does; text through it is meaningless.
void add_placeholder_vocab(const SynthPreset& p, GgufWriter& w) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // byte
  }
  for (int i = static_cast<int>(tokens.size()); i < p.n_vocab; ++i) {
    tokens.push_back(fmt::format("\u2581t{}", i));
    types.push_back(1);  // normal
  }
  tokens.resize(static_cast<size_t>(p.n_vocab));
  types.resize(tokens.size());
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_array<float>("tokenizer.ggml.scores", scores);
  w.add_array<int32_t>("tokenizer.ggml.token_type", types);
  w.add<uint32_t>("tokenizer.ggml.unknown_token_id", 0);
  w.add<uint32_t>("tokenizer.ggml.bos_token_id", 1);
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 2);
}

ModelFacts facts_of(const SynthPreset& p) {
  return {std::string(p.arch), p.n_layer, p.n_head, p.n_head_kv, p.n_expert};
}

}  // namespace

std::span<const SynthPreset> synth_presets() noexcept { return kPresets; }

const SynthPreset* find_synth_preset(std::string_view name) noexcept {
  for (const SynthPreset& p : kPresets) {
    if (iequals(p.name, name)) return &p;
  }
  return nullptr;
}

uint64_t synth_parameter_count(const SynthPreset& preset) {
  uint64_t n = 0;
  for (const SynthTensor& t : synth_tensors(preset)) {
    uint64_t e = 1;
    for (int64_t d : t.source.shape) e *= static_cast<uint64_t>(d);
    if (t.fill != Fill::kRopeFactors) n += e;  // rope factors are constants, not parameters
  }
  return n;
}

std::vector<float> llama3_rope_factors(const Llama3RopeScaling& s, float freq_base, int head_dim) {
  // As Meta's reference and llama.cpp's converter: low-frequency bands are slowed by `factor`,
  // high-frequency bands kept, and the bands between interpolated smoothly.
  const double low_freq_wavelen = s.original_context / s.low_freq_factor;
  const double high_freq_wavelen = s.original_context / s.high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(freq_base), static_cast<double>(i) / head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(s.factor);
    } else {
      const double smooth =
          (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / s.factor + smooth)));
    }
  }
  return factors;
}

QuantPlan synth_plan(const SynthPreset& preset, const SynthOptions& options) {
  std::vector<TensorSource> sources;
  for (SynthTensor& t : synth_tensors(preset)) sources.push_back(std::move(t.source));
  QuantizeOptions q;
  q.file_type = options.file_type;
  QuantPlan plan = plan_quantization(sources, facts_of(preset), q);
  if (options.all_f32) {
    plan.to_bytes = 0;
    for (TensorPlan& p : plan.tensors) {
      p.to = DType::kF32;
      p.to_bytes = p.from_bytes;
      p.note.clear();
      plan.to_bytes += p.to_bytes;
    }
    plan.n_fallback = 0;
  }
  return plan;
}

void write_synth_model(const SynthPreset& preset, const SynthOptions& options, const std::string& out_path,
                       int n_threads, const QuantizeProgressFn& progress) {
  const std::vector<SynthTensor> tensors = synth_tensors(preset);
  const QuantPlan plan = synth_plan(preset, options);
  GgufWriter header;
  add_model_metadata(preset, options, header);
  if (options.vocab) {
    add_vocab_from_file(preset, *options.vocab, header);
  } else {
    add_placeholder_vocab(preset, header);
  }
  for (const TensorPlan& p : plan.tensors) header.add_tensor_info(p.name, p.to, p.shape);

  const std::vector<float> rope_factors =
      preset.rope_scaling ? llama3_rope_factors(*preset.rope_scaling, preset.rope_freq_base, preset.head_dim())
                          : std::vector<float>();
  const FillRowsFn fill = [&](size_t i, int64_t first_row, int64_t n_rows, float* out) {
    const int64_t row_length = plan.tensors[i].shape[0];
    for (int64_t r = 0; r < n_rows; ++r) {
      float* row = out + r * row_length;
      switch (tensors[i].fill) {
        case Fill::kNormal: fill_normal(options.seed, i, first_row + r, row, row_length); break;
        case Fill::kOnes: std::fill_n(row, row_length, 1.0f); break;
        case Fill::kRopeFactors: std::copy(rope_factors.begin(), rope_factors.end(), row); break;
      }
    }
  };
  const RawTensorFn nothing_raw = [](size_t) { return std::span<const std::byte>(); };
  write_planned_tensors(header, plan, out_path, n_threads, nothing_raw, fill, progress);
}

}  // namespace ember
