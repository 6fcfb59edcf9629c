// SentencePiece BPE (tokenizer.ggml.model = "llama": Llama 2, Mistral, Phi-3, Gemma): symbols are
// UTF-8 characters of the text with spaces as "▁" (and a "▁" prefix when add_space_prefix); the
// adjacent pair whose merge is a vocabulary token with the highest score merges first; characters
// that are no token fall back to their bytes' <0xNN> tokens (or unk).
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace ember {

class SpmTokenizer {
 public:
  // The vocabulary must outlive the tokenizer. Throws Error(kInvalidArgument) for a vocabulary
  // that is not SPM.
  explicit SpmTokenizer(const Vocab& vocab);

  // Token ids of `text` (raw bytes; invalid UTF-8 falls back to byte tokens), without BOS / EOS and
  // without special-token parsing: what llama.cpp's tokenizer gives with add_special = false,
  // parse_special = false. O(n log n) in the number of characters.
  std::vector<TokenId> encode(std::string_view text) const;
  // The same, appending to `out`, with the "▁" prefix chosen by the caller (the Tokenizer adds it
  // at the start of the text and after each special token, as llama.cpp does).
  void encode(std::string_view text, bool space_prefix, std::vector<TokenId>& out) const;

 private:
  void append_bytes(std::string_view piece, std::vector<TokenId>& out) const;

  const Vocab& vocab_;
  TokenId byte_tokens_[256];  // <0xNN> ids, -1 where the vocabulary lacks one
};

}  // namespace ember
