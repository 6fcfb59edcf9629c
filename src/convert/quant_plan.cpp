// plan_quantization: llama.cpp's per-tensor type rules (llama_tensor_get_type) for the file types
// ember writes, applied in llama.cpp's visiting order so that layer counters agree with it.
#include "convert/quant_plan.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <string_view>

#include "core/check.h"
#include "quant/quant_traits.h"

namespace ember {
namespace {

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// llama.cpp's heuristic for "layers that deserve more bits": the first and last eighth, and every
// third layer in between.
// In 64-bit arithmetic: hostile metadata may claim a billion layers.
bool use_more_bits(int64_t i_layer, int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// Layer indices above this are not layers of any real model (and would overflow arithmetic).
constexpr int kMaxLayerIndex = 1 << 20;

// The layer index in "blk.<i>.<...>", or -1 for tensors outside the layers (or absurd indices).
int layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  const char* first = name.data() + kPrefix.size();
  const char* last = name.data() + name.size();
  int layer = -1;
  const auto [end, ec] = std::from_chars(first, last, layer);
  if (ec != std::errc() || end == last || *end != '.' || layer < 0 || layer > kMaxLayerIndex) return -1;
  return layer;
}

// llama.cpp's LLM_TYPE_70B for the architectures whose 80-layer models it classifies so (a
// LLaMA with as many KV heads as heads is the 65B).
bool is_70b_class(const ModelFacts& m) {
  if (m.n_layer != 80) return false;
  if (m.arch == "llama") return m.n_head != m.n_head_kv;
  return m.arch == "qwen2" || m.arch == "deci" || m.arch == "olmo";
}

bool fits_blocks(DType dtype, int64_t row_length) { return row_length % dtype_traits(dtype).block_size == 0; }

bool is_float_type(DType dtype) { return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16; }

// A type ember can write as model weights: it has a quantizer and a weight dot product.
bool is_weight_type(DType dtype) {
  const QuantTraits* traits = find_quant_traits(dtype);
  return traits != nullptr && traits->from_float != nullptr && traits->vec_dot != nullptr;
}

// Running state of the mixes: counters advance as tensors are visited, like llama.cpp's
// quantize_state_impl.
struct MixState {
  const ModelFacts& model;
  const QuantizeOptions& options;
  bool has_output = false;
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int i_ffn_down = 0;
};

bool is_one_of(FileType f, std::initializer_list<FileType> set) { return std::ranges::find(set, f) != set.end(); }

// The type llama.cpp's mix gives tensor `name` for the file type (before the row-length fallback).
DType mix_type(MixState& s, std::string_view name, int64_t row_length, DType type) {
  const FileType ft = s.options.file_type;
  const bool falcon = s.model.arch == "falcon";
  if (name == "output.weight" || (!s.has_output && name == "token_embd.weight")) {
    // Tied embeddings double as the output projection, so they get its treatment.
    if (s.options.output_type) return *s.options.output_type;
    if (falcon || !fits_blocks(type, row_length)) return DType::kQ8_0;
    return type == DType::kQ8_0 ? type : DType::kQ6_K;
  }
  if (name == "token_embd.weight") return s.options.token_embedding_type.value_or(type);
  if (contains(name, "attn_v.weight")) {
    const int i = s.i_attention_wv++;
    if (ft == FileType::kQ2_K) {
      type = s.model.n_gqa() >= 4 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == FileType::kQ3_K_M) {
      type = i < 2 ? DType::kQ5_K : DType::kQ4_K;
    } else if (ft == FileType::kQ3_K_L) {
      type = DType::kQ5_K;
    } else if (is_one_of(ft, {FileType::kIQ4_NL, FileType::kIQ4_XS}) && s.model.n_gqa() >= 4) {
      type = DType::kQ5_K;
    } else if (is_one_of(ft, {FileType::kQ4_K_M, FileType::kQ5_K_M}) && use_more_bits(i, s.n_attention_wv)) {
      type = DType::kQ6_K;
    } else if (ft == FileType::kQ4_K_S && i < 4) {
      type = DType::kQ5_K;
    }
    // 70B-class models share each attn_v among 8 heads: it is 8x smaller than attn_q, so more bits
    // cost little.
    if (is_70b_class(s.model) && (type == DType::kQ3_K || type == DType::kQ4_K)) type = DType::kQ5_K;
    if (s.model.n_expert == 8) type = DType::kQ8_0;
    return type;
  }
  if (contains(name, "attn_k.weight")) return s.model.n_expert == 8 ? DType::kQ8_0 : type;
  if (contains(name, "attn_q.weight")) return type;
  if (contains(name, "ffn_down")) {
    int i = s.i_ffn_down++;
    const int n = s.model.n_layer;
    // Expert tensors of MoE models are not stored layer by layer: read the layer from the name.
    if (s.model.n_expert > 1) {
      i = layer_of(name);
      if (i < 0 || i >= n) {
        fail(ErrorCode::kInvalidArgument, "tensor '{}': no layer index in [0, {}) in its name", name, n);
      }
    }
    if (ft == FileType::kQ2_K) {
      type = DType::kQ3_K;
    } else if (ft == FileType::kQ3_K_M) {
      type = i < n / 16 ? DType::kQ5_K : !falcon || use_more_bits(i, n) ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == FileType::kQ3_K_L) {
      type = falcon ? DType::kQ4_K : DType::kQ5_K;
    } else if (ft == FileType::kQ4_K_M) {
      if (falcon) {
        type = i < n / 16 ? DType::kQ6_K : use_more_bits(i, n) ? DType::kQ5_K : DType::kQ4_K;
      } else if (use_more_bits(i, n)) {
        type = DType::kQ6_K;
      }
    } else if (i < n / 8 && is_one_of(ft, {FileType::kIQ4_NL, FileType::kIQ4_XS})) {
      type = DType::kQ5_K;  // llama.cpp does this only without an importance matrix, as here
    } else if (ft == FileType::kQ5_K_M && use_more_bits(i, n)) {
      type = DType::kQ6_K;
    } else if (ft == FileType::kQ4_K_S && !falcon && i < n / 8) {
      type = DType::kQ5_K;
    }
    return type;
  }
  if (contains(name, "attn_output.weight")) {
    if (falcon) return ft == FileType::kQ3_K_L ? DType::kQ4_K : type;
    if (s.model.n_expert == 8) {
      const bool low_bits = is_one_of(ft, {FileType::kQ2_K, FileType::kQ3_K_S, FileType::kQ3_K_M, FileType::kIQ4_NL,
                                           FileType::kQ4_K_S, FileType::kQ4_K_M, FileType::kIQ4_XS});
      return low_bits ? DType::kQ5_K : type;
    }
    if (ft == FileType::kQ2_K) return DType::kQ3_K;
    if (ft == FileType::kQ3_K_M) return DType::kQ4_K;
    if (ft == FileType::kQ3_K_L) return DType::kQ5_K;
    return type;
  }
  if (contains(name, "attn_qkv.weight")) {
    if (is_one_of(ft, {FileType::kQ3_K_M, FileType::kQ3_K_L})) return DType::kQ4_K;
    if (ft == FileType::kQ4_K_M) return DType::kQ5_K;
    if (ft == FileType::kQ5_K_M) return DType::kQ6_K;
  }
  return type;
}

// A type whose block fits rows of `row_length` when `type`'s does not: llama.cpp's fallbacks
// (same family, 32-element blocks), then F16; a type without a listed fallback keeps its source
// float type (F32 stays F32).
DType fallback_type(DType type, DType source, int64_t row_length) {
  DType fallback = DType::kF16;
  switch (type) {
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kIQ4_XS: fallback = DType::kIQ4_NL; break;
    case DType::kQ4_K: fallback = DType::kQ5_0; break;
    case DType::kQ5_K: fallback = DType::kQ5_1; break;
    case DType::kQ6_K: fallback = DType::kQ8_0; break;
    default: fallback = is_float_type(source) ? source : DType::kF16; break;
  }
  return fits_blocks(fallback, row_length) ? fallback : DType::kF16;
}

}  // namespace

std::string shape_text(std::span<const int64_t> shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

size_t effective_n_dims(std::span<const int64_t> shape) {
  size_t n = shape.size();
  while (n > 1 && shape[n - 1] == 1) --n;
  return n;
}

bool is_quantizable_tensor(std::string_view name, size_t n_dims) {
  if (n_dims < 2 || !name.ends_with("weight")) return false;
  // Small or precision-critical tensors llama.cpp never quantizes.
  static constexpr std::string_view kKeep[] = {"_norm.weight",
                                               "ffn_gate_inp.weight",
                                               "altup",
                                               "laurel",
                                               "per_layer_model_proj",
                                               "ssm_conv1d.weight",
                                               "shortconv.conv.weight",
                                               "time_mix_first.weight",
                                               "time_mix_w0.weight",
                                               "time_mix_w1.weight",
                                               "time_mix_w2.weight",
                                               "time_mix_v0.weight",
                                               "time_mix_v1.weight",
                                               "time_mix_v2.weight",
                                               "time_mix_a0.weight",
                                               "time_mix_a1.weight",
                                               "time_mix_a2.weight",
                                               "time_mix_g1.weight",
                                               "time_mix_g2.weight",
                                               "time_mix_decay_w1.weight",
                                               "time_mix_decay_w2.weight",
                                               "time_mix_lerp_fused.weight",
                                               "attn_rel_b.weight"};
  for (std::string_view part : kKeep) {
    if (contains(name, part)) return false;
  }
  return name != "position_embd.weight" && name != "token_types.weight";
}

QuantPlan plan_quantization(std::span<const TensorSource> tensors, const ModelFacts& model,
                            const QuantizeOptions& options) {
  for (const std::optional<DType>& override_type : {options.output_type, options.token_embedding_type}) {
    if (override_type && !is_weight_type(*override_type)) {
      fail(ErrorCode::kInvalidArgument, "{} is not a weight type ember can write", dtype_name(*override_type));
    }
  }
  const DType base = file_type_info(options.file_type).base;
  const bool mixes = !options.pure && dtype_traits(base).quantized;

  // A model without {arch}.block_count still has its layers in the tensor names.
  ModelFacts facts = model;
  if (facts.n_layer <= 0) {
    for (const TensorSource& t : tensors) facts.n_layer = std::max(facts.n_layer, layer_of(t.name) + 1);
  }
  MixState state{facts, options};
  for (const TensorSource& t : tensors) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
        contains(t.name, "attn_kv_b.weight")) {
      ++state.n_attention_wv;
    }
    state.has_output = state.has_output || t.name == "output.weight";
  }

  // llama.cpp visits tensors outside the layers first, then layer by layer, each group sorted by
  // name; the mixes' layer counters depend on that order, not on the order in the file.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::ranges::stable_sort(order, [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    return la != lb ? la < lb : tensors[a].name < tensors[b].name;
  });

  QuantPlan plan;
  plan.tensors.resize(tensors.size());
  for (size_t index : order) {
    const TensorSource& src = tensors[index];
    TensorPlan& p = plan.tensors[index];
    p.name = src.name;
    p.shape = src.shape;
    p.from = src.dtype;
    p.to = src.dtype;
    p.n_elements = 1;
    for (int64_t d : src.shape) p.n_elements *= static_cast<uint64_t>(d);
    const int64_t row_length = src.shape.empty() ? 1 : src.shape[0];

    if (is_quantizable_tensor(src.name, effective_n_dims(src.shape))) {
      DType type = mixes ? mix_type(state, src.name, row_length, base) : base;
      if (options.token_embedding_type && src.name == "token_embd.weight") type = *options.token_embedding_type;
      if (options.output_type && src.name == "output.weight") type = *options.output_type;
      if (!fits_blocks(type, row_length)) {
        const DType fallback = fallback_type(type, src.dtype, row_length);
        p.note = fmt::format("rows of {} do not fit {} blocks of {}: {} instead", row_length, dtype_name(type),
                             dtype_traits(type).block_size, dtype_name(fallback));
        type = fallback;
        ++plan.n_fallback;
      }
      p.to = type;
    }
    if (p.converted()) {
      const QuantTraits* reader = find_quant_traits(p.from);
      if (reader == nullptr) {
        fail(ErrorCode::kUnsupported, "tensor '{}' ({}): ember cannot read type {}", p.name, shape_text(p.shape),
             dtype_name(p.from));
      }
      if (!is_float_type(p.from) && !options.allow_requantize) {
        fail(ErrorCode::kInvalidArgument,
             "tensor '{}' is already quantized ({}); requantizing loses quality, pass --allow-requantize to do it "
             "anyway",
             p.name, dtype_name(p.from));
      }
    }
    p.from_bytes = dtype_bytes_for(p.from, p.n_elements).value_or(0);
    p.to_bytes = dtype_bytes_for(p.to, p.n_elements).value_or(0);
  }
  for (const TensorPlan& p : plan.tensors) {
    plan.from_bytes += p.from_bytes;
    plan.to_bytes += p.to_bytes;
    plan.n_elements += p.n_elements;
  }
  return plan;
}

}  // namespace ember
