// libFuzzer target: tokenizing and detokenizing arbitrary bytes with real vocabularies (SPM, BPE
// with several pre-tokenizers, WPM) must never crash, must give ids inside the vocabulary, must
// stream only whole UTF-8 characters, and byte-level BPE must give back exactly the (UTF-8
// repaired) text. The vocabularies come from $EMBER_FUZZ_VOCAB_DIR (default ../shared/data/vocab).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "ember/error.h"
#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<ember::Tokenizer>>& tokenizers() {
  static std::vector<std::unique_ptr<ember::Tokenizer>> list;
  return list;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("EMBER_FUZZ_VOCAB_DIR");
  const std::filesystem::path dir = env != nullptr ? env : "../shared/data/vocab";
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "gpt-2", "deepseek-llm", "mpt", "bert-bge"}) {
    const std::filesystem::path path = dir / (std::string("ggml-vocab-") + name + ".gguf");
    try {
      tokenizers().push_back(
          std::make_unique<ember::Tokenizer>(ember::Tokenizer::from_gguf(ember::GgufFile::open(path.string()))));
    } catch (const ember::Error& e) {
      std::fprintf(stderr, "tokenizer_fuzz: cannot load %s: %s\n", path.c_str(), e.what());
    }
  }
  if (tokenizers().empty()) {
    std::fprintf(stderr, "tokenizer_fuzz: no vocabulary found in %s (set EMBER_FUZZ_VOCAB_DIR)\n", dir.c_str());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the vocabulary and the options; the rest is the text.
  const ember::Tokenizer& tokenizer = *tokenizers()[data[0] % tokenizers().size()];
  const bool parse_special = (data[0] & 0x80) != 0;
  const bool render_special = (data[0] & 0x40) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<ember::TokenId> ids = tokenizer.encode(text, {.add_special = true, .parse_special = parse_special});
  for (ember::TokenId id : ids) {
    if (id < 0 || id >= tokenizer.vocab().size()) __builtin_trap();
  }

  const std::string decoded = tokenizer.decode(ids, {.render_special = render_special});
  ember::Detokenizer stream(tokenizer, {.render_special = render_special});
  std::string streamed;
  for (ember::TokenId id : ids) {
    const std::string part = stream.push(id);
    if (!ember::utf8::is_valid(part)) __builtin_trap();
    streamed += part;
  }
  streamed += stream.flush();
  if (!ember::utf8::is_valid(streamed)) __builtin_trap();
  if (streamed != ember::utf8::sanitize(decoded)) __builtin_trap();

  // Byte-level BPE loses nothing but invalid UTF-8 (without parsed control tokens, whose text
  // decodes to nothing).
  if (tokenizer.vocab().model() == ember::TokenizerModel::kBpe && !parse_special && !render_special &&
      decoded != ember::utf8::sanitize(text)) {
    __builtin_trap();
  }
  return 0;
}
