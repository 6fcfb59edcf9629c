// WordPiece (tokenizer.ggml.model = "bert": BERT, BGE, MiniLM embedding models) as llama.cpp runs
// it: normalize and split the text into words, then greedy longest-match of vocabulary pieces.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "tokenizer/token_trie.h"
#include "tokenizer/vocab.h"

namespace ember {

class WpmTokenizer {
 public:
  // Copies what it needs of the vocabulary (its pieces, into a trie). Throws
  // Error(kInvalidArgument) for a vocabulary that is not WordPiece.
  explicit WpmTokenizer(const Vocab& vocab);

  // Token ids of `text` (raw bytes; invalid UTF-8 is dropped like U+FFFD), without CLS / SEP and
  // without special-token parsing: what llama.cpp's tokenizer gives with add_special = false,
  // parse_special = false.
  //
  // 1. Each code point is replaced by the first code point of its canonical decomposition (NFD),
  //    which drops the accents of precomposed letters ("Ä" -> "A") as the model's uncased
  //    normalizer does; combining marks written as separate code points stay.
  // 2. Whitespace ends a word; NUL, U+FFFD and control / format / private-use code points (Cc, Cf,
  //    Co, Cs) are dropped; everything else is lowercased; punctuation, ASCII symbols and CJK
  //    ideographs are words of their own.
  // 3. Each word, prefixed with "▁" (the converted vocabulary's word-start marker, where BERT
  //    marks continuations with "##"), is split greedily into the longest vocabulary tokens from
  //    the left; a word with a position no token starts at becomes one unk.
  //
  //    A word of more than 100 characters is one unk, as in BERT's own tokenizer (llama.cpp splits
  //    it into pieces).
  //
  // O(text length × the longest piece that matches at a position).
  std::vector<TokenId> encode(std::string_view text) const;

 private:
  // Appends the tokens of one "▁"-prefixed word.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  static constexpr size_t kMaxWordChars = 100;
  TokenTrie pieces_;  // every token text
  TokenId unk_ = -1;  // -1 when the vocabulary has none: unknown words then vanish
};

}  // namespace ember
