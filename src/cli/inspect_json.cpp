// The JSON form of an InspectReport: one object with full metadata values, tensors and totals.
#include "cli/inspect_report.h"

namespace ember::cli {
namespace {

using nlohmann::json;

json optional_string(const std::optional<std::string_view>& s) { return s ? json(std::string(*s)) : json(nullptr); }

json optional_value(const GgufValue* v) { return v ? value_json(*v) : json(nullptr); }

json files_json(const InspectReport& r) {
  json files = json::array();
  for (const InspectFile& f : r.files) {
    files.push_back({{"path", std::string(f.path)},
                     {"file_size", f.file_size},
                     {"version", f.version},
                     {"alignment", f.alignment},
                     {"data_offset", f.data_offset},
                     {"n_tensors", f.n_tensors}});
  }
  return files;
}

json metadata_json(const GgufFile& meta) {
  json metadata = json::array();
  for (const GgufKeyValue& kv : meta.metadata()) {
    json entry = {{"key", std::string(kv.key)}, {"type", std::string(gguf_type_name(kv.value.type()))}};
    if (kv.value.is_array()) {
      entry["element_type"] = std::string(gguf_type_name(kv.value.array_type()));
      entry["count"] = kv.value.array_size();
    }
    entry["value"] = value_json(kv.value);
    metadata.push_back(std::move(entry));
  }
  return metadata;
}

json tensors_json(const InspectReport& r) {
  json tensors = json::array();
  for (const InspectTensor& t : r.tensors) {
    tensors.push_back({{"name", std::string(t.name)},
                       {"type", std::string(dtype_name(t.dtype))},
                       {"type_id", static_cast<uint32_t>(t.dtype)},
                       {"shape", json(std::vector<int64_t>(t.shape.begin(), t.shape.end()))},
                       {"n_elements", t.n_elements},
                       {"n_bytes", t.n_bytes},
                       {"offset", t.offset},
                       {"file_index", t.file_index}});
  }
  return tensors;
}

json totals_json(const InspectTotals& t) {
  json by_type = json::array();
  for (const DTypeTotal& d : t.by_dtype) {
    by_type.push_back({{"type", std::string(dtype_name(d.dtype))},
                       {"type_id", static_cast<uint32_t>(d.dtype)},
                       {"count", d.count},
                       {"n_bytes", d.n_bytes}});
  }
  return {{"n_tensors", t.n_tensors}, {"n_parameters", t.n_parameters}, {"n_bytes", t.n_bytes}, {"by_type", by_type}};
}

json tokenizer_json(const TokenizerSummary& t) {
  json special = json::object();
  for (const SpecialToken& s : t.special_tokens) {
    special[std::string(s.role)] = {
        {"key", std::string(s.key)}, {"id", value_json(*s.value)}, {"text", optional_string(s.text)}};
  }
  json chat_template = nullptr;
  if (t.chat_template != nullptr && t.chat_template->type() == GgufType::kString) {
    chat_template = {{"n_bytes", t.chat_template->as_string().size()}};
  }
  return {{"model", optional_value(t.model)},
          {"pre", optional_value(t.pre)},
          {"vocab_size", t.n_vocab},
          {"merges", t.n_merges ? json(*t.n_merges) : json(nullptr)},
          {"special_tokens", special},
          {"add_bos", optional_value(t.add_bos)},
          {"add_eos", optional_value(t.add_eos)},
          {"has_chat_template", t.chat_template != nullptr},
          {"chat_template", chat_template}};
}

}  // namespace

nlohmann::json render_inspect_json(const InspectReport& r) {
  json hyperparameters = json::object();
  for (const KeyedValue& kv : r.hyperparameters) hyperparameters[kv.key] = value_json(*kv.value);
  json file_type = nullptr;
  if (r.file_type) {
    file_type = {{"id", *r.file_type}, {"name", optional_string(llama_ftype_name(*r.file_type))}};
  }
  return {{"files", files_json(r)},
          {"version", r.files.front().version},
          {"alignment", r.files.front().alignment},
          {"file_size", r.total_file_size},
          {"architecture", optional_string(r.architecture)},
          {"name", optional_string(r.name)},
          {"file_type", file_type},
          {"hyperparameters", hyperparameters},
          {"metadata", metadata_json(*r.meta)},
          {"tensors", tensors_json(r)},
          {"totals", totals_json(r.totals)},
          {"tokenizer", r.tokenizer ? tokenizer_json(*r.tokenizer) : json(nullptr)}};
}

}  // namespace ember::cli
