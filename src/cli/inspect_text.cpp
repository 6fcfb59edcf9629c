// The human-readable form of an InspectReport: summary, metadata, tensors, totals, tokenizer.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/console.h"
#include "cli/inspect_report.h"
#include "cli/text_table.h"

namespace ember::cli {
namespace {

using Align = TextTable::Align;

constexpr std::string_view kNotSet = "(not set)";

std::string shape_text(std::span<const int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string bytes_text(uint64_t n) { return fmt::format("{} bytes ({})", n, human_bytes(n)); }

// A value for the summary: strings unquoted (escaped), everything else as in the metadata table.
std::string plain_text(const GgufValue* v, const TextLimits& limits) {
  if (v == nullptr) return std::string(kNotSet);
  if (v->type() == GgufType::kString) return escape_text(v->as_string());
  return value_text(*v, limits);
}

void section(std::string& out, std::string_view title) {
  if (!out.empty()) out += '\n';
  out += fmt::format("== {} ==\n", title);
}

void render_summary(const InspectReport& r, const TextLimits& limits, std::string& out) {
  section(out, "summary");
  TextTable table({Align::kLeft, Align::kLeft});
  if (r.files.size() == 1) {
    table.add_row({"file", escape_text(r.files[0].path)});
  } else {
    for (size_t i = 0; i < r.files.size(); ++i) {
      const InspectFile& f = r.files[i];
      table.add_row({fmt::format("part {}", i),
                     fmt::format("{} ({} bytes, {} tensors)", escape_text(f.path), f.file_size, f.n_tensors)});
    }
  }
  table.add_row({"GGUF version", fmt::format("{}", r.files[0].version)});
  table.add_row({"alignment", fmt::format("{}", r.files[0].alignment)});
  table.add_row({"file size", bytes_text(r.total_file_size)});
  table.add_row({"architecture", r.architecture ? escape_text(*r.architecture) : std::string(kNotSet)});
  table.add_row({"name", r.name ? escape_text(*r.name) : std::string(kNotSet)});
  std::string file_type(kNotSet);
  if (r.file_type) {
    const std::optional<std::string_view> ftype = llama_ftype_name(*r.file_type);
    file_type = fmt::format("{} ({})", *r.file_type, ftype ? *ftype : "unknown");
  }
  table.add_row({"file type", file_type});
  for (const KeyedValue& kv : r.hyperparameters) table.add_row({kv.key, plain_text(kv.value, limits)});
  table.render(out);
}

void render_metadata(const InspectReport& r, const TextLimits& limits, std::string& out) {
  const auto metadata = r.meta->metadata();
  section(out, fmt::format("metadata ({} keys)", metadata.size()));
  TextTable table({Align::kLeft, Align::kLeft, Align::kLeft});
  for (const GgufKeyValue& kv : metadata) {
    table.add_row({escape_text(kv.key), value_type_text(kv.value), value_text(kv.value, limits)});
  }
  table.render(out);
}

void render_tensors(const InspectReport& r, std::string& out) {
  section(out, fmt::format("tensors ({})", r.tensors.size()));
  if (r.tensors.empty()) return;
  const bool split = r.files.size() > 1;
  TextTable table(
      {Align::kRight, Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight, Align::kRight, Align::kRight});
  std::vector<std::string> header = {"#", "name", "type", "shape", "bytes", "offset"};
  if (split) header.push_back("part");
  table.add_row(std::move(header));
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    const InspectTensor& t = r.tensors[i];
    std::vector<std::string> row = {
        fmt::format("{}", i), escape_text(t.name),          std::string(dtype_name(t.dtype)),
        shape_text(t.shape),  fmt::format("{}", t.n_bytes), fmt::format("{}", t.offset)};
    if (split) row.push_back(fmt::format("{}", t.file_index));
    table.add_row(std::move(row));
  }
  table.render(out);
}

void render_totals(const InspectReport& r, std::string& out) {
  section(out, "totals");
  const InspectTotals& t = r.totals;
  TextTable table({Align::kLeft, Align::kLeft});
  table.add_row({"tensors", fmt::format("{}", t.n_tensors)});
  table.add_row({"parameters", fmt::format("{} ({})", human_count(t.n_parameters), t.n_parameters)});
  table.add_row({"data bytes", bytes_text(t.n_bytes)});
  table.render(out);
  if (t.by_dtype.empty()) return;
  TextTable types({Align::kLeft, Align::kRight, Align::kRight, Align::kLeft}, 4);
  for (const DTypeTotal& d : t.by_dtype) {
    types.add_row({std::string(dtype_name(d.dtype)), fmt::format("{} {}", d.count, d.count == 1 ? "tensor" : "tensors"),
                   fmt::format("{} bytes", d.n_bytes), fmt::format("({})", human_bytes(d.n_bytes))});
  }
  out += "  by type:\n";
  types.render(out);
}

std::string special_token_text(const SpecialToken& s, const TextLimits& limits) {
  std::string id = s.id ? fmt::format("{}", *s.id) : value_text(*s.value, limits);
  if (!s.text) return id + " <out of range>";
  return fmt::format("{} {}", id, quote_text(*s.text, limits.max_string_bytes));
}

void render_tokenizer(const TokenizerSummary& t, const TextLimits& limits, std::string& out) {
  section(out, "tokenizer");
  TextTable table({Align::kLeft, Align::kLeft});
  table.add_row({"model", plain_text(t.model, limits)});
  table.add_row({"pre", plain_text(t.pre, limits)});
  table.add_row({"vocab size", fmt::format("{}", t.n_vocab)});
  table.add_row({"merges", t.n_merges ? fmt::format("{}", *t.n_merges) : std::string(kNotSet)});
  for (const SpecialToken& s : t.special_tokens) {
    table.add_row({fmt::format("{} token", s.role), special_token_text(s, limits)});
  }
  table.add_row({"add_bos", plain_text(t.add_bos, limits)});
  table.add_row({"add_eos", plain_text(t.add_eos, limits)});
  std::string chat_template = "no";
  if (t.chat_template != nullptr) {
    chat_template = t.chat_template->type() == GgufType::kString
                        ? fmt::format("yes ({} bytes)", t.chat_template->as_string().size())
                        : fmt::format("yes ({})", value_type_text(*t.chat_template));
  }
  table.add_row({"chat template", chat_template});
  table.render(out);
}

}  // namespace

std::string render_inspect_text(const InspectReport& report, const TextLimits& limits) {
  std::string out;
  render_summary(report, limits, out);
  render_metadata(report, limits, out);
  render_tensors(report, out);
  render_totals(report, out);
  if (report.tokenizer) render_tokenizer(*report.tokenizer, limits, out);
  return out;
}

}  // namespace ember::cli
