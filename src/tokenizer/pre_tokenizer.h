// Byte-level BPE pre-tokenizers: the regex sequence a tokenizer.ggml.pre value names splits text
// into the words BPE merges within. Each regex splits every piece the previous one left, keeping
// both the matches and the text between them (Hugging Face's Split with "isolated" behaviour), so
// the pieces always cover the text exactly. The regexes run on PCRE2 (JIT, Unicode properties).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

// What a pre-tokenizer name implies beyond its regexes (llama.cpp's per-name defaults).
struct PreTokenizerTraits {
  // A word that is itself a vocabulary token is emitted whole, without merges (Llama 3, Tekken).
  bool ignore_merges = false;
  // BOS is added when tokenizer.ggml.add_bos_token does not say otherwise.
  bool add_bos = false;
};

// The traits of a tokenizer.ggml.pre value, nullopt when ember does not know it.
std::optional<PreTokenizerTraits> pre_tokenizer_traits(std::string_view pre);

// The names ember accepts for tokenizer.ggml.pre, comma separated (for error messages).
std::string supported_pre_tokenizers();

class PreTokenizer {
 public:
  // Throws Error(kUnsupported) listing the supported names for an unknown one.
  explicit PreTokenizer(std::string_view pre);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Appends the non-empty pieces of `text`, in order, covering it exactly. `text` must be valid
  // UTF-8 (utf8::sanitize). Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  struct Regexes;
  std::unique_ptr<Regexes> regexes_;
};

}  // namespace ember
