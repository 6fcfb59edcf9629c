// libFuzzer target: the GGUF reader (and the inspect report built on it) on arbitrary bytes must
// throw ember::Error or succeed, never crash.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "cli/inspect_report.h"
#include "convert/model_quantizer.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_split.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace {

// Touches everything a consumer would read after a successful parse, so that a validation gap
// shows up as an ASan report instead of passing silently.
uint64_t walk_value(const ember::GgufValue& v) {
  uint64_t h = static_cast<uint64_t>(v.type());
  if (!v.is_array()) {
    int64_t i;
    double d;
    if (v.to_int64(&i)) h += static_cast<uint64_t>(i);
    if (v.to_double(&d)) h += static_cast<uint64_t>(d == d);
    for (char c : v.as_string()) h += static_cast<unsigned char>(c);
    return h;
  }
  switch (v.array_type()) {
    case ember::GgufType::kString:
      for (std::string_view s : v.strings()) h += s.size() + (s.empty() ? 0 : static_cast<unsigned char>(s.back()));
      break;
    case ember::GgufType::kArray:
      for (const ember::GgufValue& item : v.items()) h += walk_value(item);
      break;
    default: {
      const size_t n = ember::gguf_scalar_size(v.array_type());
      const auto bytes = v.numbers<uint8_t>();  // raw element bytes: count * n of them
      if (v.array_size() > 0) h += bytes[v.array_size() * n - 1];
    }
  }
  return h;
}

}  // namespace

// What the reader accepted, the writer must copy (`ember quantize` carries metadata over with
// add_value), and the copy must parse again with the same number of keys.
void copy_metadata_round_trip(const ember::GgufFile& file) {
  if (file.alignment() > 4096) return;  // valid, but the copy would pad its header to gigabytes
  ember::GgufWriter writer(file.alignment());
  try {
    for (const auto& kv : file.metadata()) {
      if (kv.key != ember::GgufWriter::kAlignmentKey) writer.add_value(kv.key, kv.value);
    }
  } catch (const ember::Error&) {
    __builtin_trap();  // the writer refused metadata the reader accepted
  }
  const std::vector<std::byte> bytes = writer.write_to_memory();
  std::optional<ember::GgufFile> copy;
  try {
    copy.emplace(ember::GgufFile::parse(bytes, "copy"));
  } catch (const ember::Error&) {
    __builtin_trap();  // the writer produced a file the reader rejects
  }
  // general.alignment is written by the writer's constructor exactly when it is not the default.
  const size_t expected = file.metadata().size() - (file.contains(ember::GgufWriter::kAlignmentKey) ? 1 : 0) +
                          (file.alignment() != ember::kGgufDefaultAlignment ? 1 : 0);
  if (copy->metadata().size() != expected) __builtin_trap();
}

// Hostile tokenizer metadata: the vocabulary must load or be rejected with an Error; an SPM
// vocabulary that loads must tokenize text (part of the metadata itself) without crashing.
void fuzz_tokenizer(const ember::GgufFile& file) {
  try {
    // Hostile vocabularies: lists of odd lengths, duplicate texts, merges of unknown tokens,
    // special ids anywhere, every model and pre-tokenizer name.
    const ember::Tokenizer tokenizer = ember::Tokenizer::from_gguf(file);
    const ember::Vocab& vocab = tokenizer.vocab();
    for (ember::TokenId id = 0; id < vocab.size() && id < 64; ++id) {
      const std::vector<ember::TokenId> ids = tokenizer.encode(vocab.text(id) + " x", {.parse_special = true});
      for (ember::TokenId t : ids) {
        if (t < 0 || t >= vocab.size()) __builtin_trap();
      }
      volatile size_t n = tokenizer.decode(ids, {.render_special = true}).size();
      (void)n;
    }
  } catch (const ember::Error&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ember::GgufFile file =
        ember::GgufFile::parse(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz-input");
    volatile uint64_t sink = 0;
    for (const auto& kv : file.metadata()) sink = sink + walk_value(kv.value) + kv.key.size();
    for (const auto& t : file.tensors()) {
      const ember::TensorView view = file.tensor_view(t);
      const auto* p = static_cast<const unsigned char*>(view.data());
      if (t.n_bytes > 0) sink = sink + p[0] + p[t.n_bytes - 1];
      if (file.find_tensor(t.name) != &t) __builtin_trap();
    }
    (void)file.get_or<uint32_t>("general.alignment", 0);
    fuzz_tokenizer(file);
    // `ember inspect` renders hostile metadata too (token ids, escapes, NaN in JSON): fuzz it.
    const ember::GgufModelFiles model = ember::GgufModelFiles::from_file(std::move(file));
    const ember::cli::InspectReport report = ember::cli::build_inspect_report(model);
    sink = sink + ember::cli::render_inspect_text(report, ember::cli::TextLimits{}).size();
    sink = sink +
           ember::cli::render_inspect_json(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict).size();
    copy_metadata_round_trip(model.metadata_file());
    // `ember quantize --dry-run`: the mixes read hostile hyper-parameters and tensor names.
    ember::QuantizeOptions options;
    options.allow_requantize = true;
    sink = sink + ember::plan_model_quantization(model, options).to_bytes;
  } catch (const ember::Error&) {
    // Rejected input: the expected outcome for most mutations.
  }
  return 0;
}
