// Builds the InspectReport of a GGUF model: summary, tensors, totals and tokenizer facts.
#include "cli/inspect_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

namespace ember::cli {
namespace {

// Hyper-parameters shown in the summary when present, as "<arch>.<suffix>".
constexpr std::array<std::string_view, 37> kHyperParameterSuffixes = {
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "attention.layer_norm_epsilon",
    "attention.sliding_window",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "expert_count",
    "expert_used_count",
    "expert_feed_forward_length",
    "expert_shared_feed_forward_length",
    "expert_shared_count",  // DeepSeek
    "leading_dense_block_count",
    "expert_gating_func",
    "expert_weights_norm",
    "expert_weights_scale",
    "expert_group_count",
    "expert_group_used_count",
    "attention.kv_lora_rank",  // DeepSeek V2/V3's latent attention
    "attention.q_lora_rank",
    "attention.key_length_mla",
    "attention.value_length_mla",
    "attn_logit_softcapping",   // Gemma 2
    "final_logit_softcapping",  // Gemma 2 / 3
    "embedding_scale",          // Granite's multipliers
    "attention.scale",
    "residual_scale",
    "logit_scale",
    "vocab_size",
};

struct SpecialTokenKey {
  std::string_view role;
  std::string_view key;
};

// llama.cpp's key names ("seperator" is its spelling).
constexpr std::array<SpecialTokenKey, 9> kSpecialTokenKeys = {{
    {"bos", "tokenizer.ggml.bos_token_id"},
    {"eos", "tokenizer.ggml.eos_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"},
    {"sep", "tokenizer.ggml.seperator_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"},
    {"eot", "tokenizer.ggml.eot_token_id"},
    {"eom", "tokenizer.ggml.eom_token_id"},
    {"mask", "tokenizer.ggml.mask_token_id"},
    {"cls", "tokenizer.ggml.cls_token_id"},
}};

std::optional<std::string_view> string_value(const GgufFile& file, std::string_view key) {
  const GgufValue* v = file.find(key);
  if (v == nullptr || v->type() != GgufType::kString) return std::nullopt;
  return v->as_string();
}

std::optional<int64_t> integer_value(const GgufFile& file, std::string_view key) {
  const GgufValue* v = file.find(key);
  int64_t x = 0;
  if (v == nullptr || v->is_array() || !v->to_int64(&x)) return std::nullopt;
  return x;
}

const GgufValue* array_value(const GgufFile& file, std::string_view key) {
  const GgufValue* v = file.find(key);
  return v != nullptr && v->is_array() ? v : nullptr;
}

TokenizerSummary build_tokenizer(const GgufFile& file) {
  TokenizerSummary t;
  t.model = file.find("tokenizer.ggml.model");
  t.pre = file.find("tokenizer.ggml.pre");
  std::span<const std::string_view> tokens;
  if (const GgufValue* v = array_value(file, "tokenizer.ggml.tokens"); v && v->array_type() == GgufType::kString) {
    tokens = v->strings();
  }
  t.n_vocab = tokens.size();
  if (const GgufValue* v = array_value(file, "tokenizer.ggml.merges")) t.n_merges = v->array_size();
  for (const SpecialTokenKey& k : kSpecialTokenKeys) {
    const GgufValue* v = file.find(k.key);
    if (v == nullptr) continue;
    SpecialToken token{k.role, k.key, v, std::nullopt, std::nullopt};
    uint64_t id = 0;
    if (value_to_index(*v, &id)) {
      token.id = id;
      if (id < tokens.size()) token.text = tokens[static_cast<size_t>(id)];  // bounds-checked
    }
    t.special_tokens.push_back(token);
  }
  t.add_bos = file.find("tokenizer.ggml.add_bos_token");
  t.add_eos = file.find("tokenizer.ggml.add_eos_token");
  t.chat_template = file.find("tokenizer.chat_template");
  return t;
}

InspectTotals build_totals(const std::vector<InspectTensor>& tensors) {
  InspectTotals totals;
  std::map<uint32_t, DTypeTotal> by_id;
  for (const InspectTensor& t : tensors) {
    ++totals.n_tensors;
    totals.n_parameters += t.n_elements;
    totals.n_bytes += t.n_bytes;
    DTypeTotal& d = by_id[static_cast<uint32_t>(t.dtype)];
    d.dtype = t.dtype;
    ++d.count;
    d.n_bytes += t.n_bytes;
  }
  for (const auto& [id, total] : by_id) totals.by_dtype.push_back(total);
  return totals;
}

}  // namespace

InspectReport build_inspect_report(const GgufModelFiles& model) {
  InspectReport r;
  for (size_t i = 0; i < model.n_files(); ++i) {
    const GgufFile& f = model.file(i);
    r.files.push_back({f.name(), f.file_size(), f.version(), f.alignment(), f.data_offset(), f.tensors().size()});
    r.total_file_size += f.file_size();
  }
  const GgufFile& meta = model.metadata_file();
  r.meta = &meta;
  r.architecture = string_value(meta, "general.architecture");
  r.name = string_value(meta, "general.name");
  r.file_type = integer_value(meta, "general.file_type");
  if (r.architecture) {
    for (std::string_view suffix : kHyperParameterSuffixes) {
      std::string key = fmt::format("{}.{}", *r.architecture, suffix);
      if (const GgufValue* v = meta.find(key)) r.hyperparameters.push_back({std::move(key), v});
    }
  }

  // File index of each tensor: GgufModelFiles lists them in part order.
  for (const GgufModelFiles::Tensor& t : model.tensors()) {
    size_t file_index = 0;
    while (file_index + 1 < model.n_files() && &model.file(file_index) != t.file) ++file_index;
    const GgufTensorInfo& info = *t.info;
    r.tensors.push_back({info.name, info.dtype, info.shape(), info.n_elements, info.n_bytes,
                         t.file->data_offset() + info.offset, file_index});
  }
  r.totals = build_totals(r.tensors);
  if (meta.contains("tokenizer.ggml.model")) r.tokenizer = build_tokenizer(meta);
  return r;
}

}  // namespace ember::cli
