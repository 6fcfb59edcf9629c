// SentencePiece BPE (tokenizer.ggml.model = "llama": Llama 2, Mistral, Phi-3, Gemma): symbols are
// UTF-8 characters of the text with spaces as "▁" (and a "▁" prefix when add_space_prefix); the
// adjacent pair whose merge is a vocabulary token with the highest score merges first; characters
// that are no token fall back to their bytes' <0xNN> tokens (or unk).
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"

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
  struct Bigram {
    int left;
    int right;
    float score;
    size_t length;  // of the merged text when queued: a mismatch later means the entry is stale

    // The queue's top: the highest score, then the leftmost pair (SentencePiece's order).
    bool operator<(const Bigram& other) const {
      return score < other.score || (score == other.score && left > other.left);
    }
  };
  struct Symbol;  // a character (later a merged piece) of the text, in a linked list
  // Merges the symbols [begin, end) of the text and appends their tokens.
  void merge_range(std::string_view text, Symbol* symbols, int begin, int end, std::vector<Bigram>& queue,
                   std::vector<TokenId>& out) const;
  void append_bytes(std::string_view piece, std::vector<TokenId>& out) const;

  const Vocab& vocab_;
  TokenId byte_tokens_[256];  // <0xNN> ids, -1 where the vocabulary lacks one
  bool words_are_independent_ = false;
  WordCache cache_;  // words ("▁" and what follows up to the next word start) when independent
};

}  // namespace ember
