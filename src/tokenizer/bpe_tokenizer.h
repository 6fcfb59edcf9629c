// Byte-level BPE (tokenizer.ggml.model = "gpt2": Llama 3, Qwen 2, GPT-2, DeepSeek, Falcon, ...):
// the pre-tokenizer splits the text into words; each word's bytes, spelled in the byte-level
// alphabet, start as one symbol per byte, and the adjacent pair with the lowest merge rank merges
// first (ties: the leftmost) until no listed merge applies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/vocab.h"
#include "tokenizer/word_cache.h"

namespace ember {

class BpeTokenizer {
 public:
  // The vocabulary must outlive the tokenizer. Throws Error(kInvalidArgument) for a vocabulary that
  // is not BPE and Error(kUnsupported) for an unknown tokenizer.ggml.pre.
  explicit BpeTokenizer(const Vocab& vocab);

  // Appends the token ids of `text` (invalid UTF-8 is first replaced by U+FFFD), without BOS / EOS
  // and without special-token parsing. O(n log n) in the length of each word. Thread-safe.
  void encode(std::string_view text, std::vector<TokenId>& out) const;
  std::vector<TokenId> encode(std::string_view text) const;

 private:
  struct Merge {
    int32_t rank;
    TokenId result;
  };
  static uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void encode_word(std::string_view word, std::string& spelled, std::vector<TokenId>& out) const;
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;

  const Vocab& vocab_;
  PreTokenizer pre_tokenizer_;
  bool ignore_merges_;
  TokenId byte_tokens_[256];                    // the token of each byte's stand-in character, -1 if none
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank and merged id

  WordCache cache_;
};

}  // namespace ember
