// InspectReport: what `ember inspect` knows about a model, gathered once, rendered as text or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/value_format.h"
#include "ember/dtype.h"
#include "gguf/gguf_split.h"
#include "model/model_type.h"

namespace ember::cli {

// The views below point into the GgufModelFiles the report was built from; it must outlive the report.
struct InspectFile {
  std::string_view path;
  uint64_t file_size = 0;
  uint32_t version = 0;
  uint32_t alignment = 0;
  uint64_t data_offset = 0;  // absolute start of the data section
  size_t n_tensors = 0;
};

struct InspectTensor {
  std::string_view name;
  DType dtype = DType::kF32;
  std::span<const int64_t> shape;  // ggml order: shape[0] is the row length
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t offset = 0;  // absolute in its file
  size_t file_index = 0;
};

struct DTypeTotal {
  DType dtype = DType::kF32;
  uint64_t count = 0;
  uint64_t n_bytes = 0;
};

struct InspectTotals {
  uint64_t n_tensors = 0;
  uint64_t n_parameters = 0;
  uint64_t n_bytes = 0;
  std::vector<DTypeTotal> by_dtype;  // in DType id order
};

// A metadata entry shown in the summary (e.g. "llama.block_count").
struct KeyedValue {
  std::string key;
  const GgufValue* value = nullptr;
};

struct SpecialToken {
  std::string_view role;  // "bos", "eos", ...
  std::string_view key;   // "tokenizer.ggml.bos_token_id"
  const GgufValue* value = nullptr;
  std::optional<uint64_t> id;            // nullopt: negative or not an integer
  std::optional<std::string_view> text;  // nullopt: id out of range of the vocabulary
};

struct TokenizerSummary {
  const GgufValue* model = nullptr;
  const GgufValue* pre = nullptr;  // may be null
  uint64_t n_vocab = 0;            // length of tokenizer.ggml.tokens (0 when absent or not strings)
  std::optional<uint64_t> n_merges;
  std::vector<SpecialToken> special_tokens;
  const GgufValue* add_bos = nullptr;
  const GgufValue* add_eos = nullptr;
  const GgufValue* chat_template = nullptr;
};

struct InspectReport {
  std::vector<InspectFile> files;  // one per split part
  uint64_t total_file_size = 0;
  const GgufFile* meta = nullptr;  // the file holding the model metadata (first part)
  std::optional<std::string_view> architecture;
  std::optional<std::string_view> name;
  std::optional<int64_t> file_type;
  std::vector<KeyedValue> hyperparameters;
  std::vector<InspectTensor> tensors;
  InspectTotals totals;
  std::optional<TokenizerSummary> tokenizer;
};

InspectReport build_inspect_report(const GgufModelFiles& model);

std::string render_inspect_text(const InspectReport& report, const TextLimits& limits);
nlohmann::json render_inspect_json(const InspectReport& report);

}  // namespace ember::cli
