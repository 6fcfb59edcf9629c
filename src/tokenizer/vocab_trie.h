// VocabTrie: the bytes of every ordinary token of a vocabulary as a byte trie in depth-first order
// (the layout llguidance describes): a constrained decoder walks it once per mask, skipping whole
// subtrees of tokens that share a rejected prefix. Control, unknown, unused and end-of-generation
// tokens are left out: they are never produced by matching bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace ember {

class Tokenizer;

class VocabTrie {
 public:
  // pieces[id]: the bytes token `id` stands for; empty: not in the trie.
  explicit VocabTrie(const std::vector<std::string>& pieces);
  // The pieces as Tokenizer::append_piece(id, false) gives them, minus the tokens left out.
  static VocabTrie from_tokenizer(const Tokenizer& tokenizer);

  // Unique among the tries of this process (never reused), for caches keyed by vocabulary.
  uint64_t id() const noexcept { return id_; }
  int32_t n_vocab() const noexcept { return n_vocab_; }

  // Nodes 1..size()-1 (node 0 is the root, the empty prefix); node i's subtree is [i, end(i)).
  int32_t size() const noexcept { return static_cast<int32_t>(bytes_.size()); }
  uint8_t byte(int32_t node) const { return bytes_[static_cast<size_t>(node)]; }
  int32_t depth(int32_t node) const { return depths_[static_cast<size_t>(node)]; }
  int32_t end(int32_t node) const { return ends_[static_cast<size_t>(node)]; }
  // The tokens whose bytes end at `node` / lie in its subtree.
  std::span<const TokenId> tokens_at(int32_t node) const {
    return tokens_in(token_begin_[static_cast<size_t>(node)], token_begin_[static_cast<size_t>(node) + 1]);
  }
  std::span<const TokenId> tokens_below(int32_t node) const {
    return tokens_in(token_begin_[static_cast<size_t>(node)], token_begin_[static_cast<size_t>(end(node))]);
  }
  // What lies strictly below `node` (its descendants' bytes), read from a character boundary at
  // `node`: a grammar state that takes any run of some characters can accept a whole subtree from
  // this alone, without walking it (GrammarMatcher).
  struct Below {
    uint64_t ascii[2] = {0, 0};  // the ASCII bytes that occur
    uint16_t max_chars = 0;      // the most characters on one path (a last partial one counts)
    bool non_ascii = false;      // some byte >= 0x80 occurs
    bool well_formed = true;     // every path is a prefix of well-formed UTF-8
  };
  const Below& below(int32_t node) const { return below_[static_cast<size_t>(node)]; }
  // Per token of tokens_below(node), in the same order: its characters (bytes that are not UTF-8
  // continuation bytes).
  std::span<const uint16_t> chars_below(int32_t node) const {
    const auto begin = static_cast<size_t>(token_begin_[static_cast<size_t>(node)]);
    const auto end = static_cast<size_t>(token_begin_[static_cast<size_t>(this->end(node))]);
    return std::span(token_chars_).subspan(begin, end - begin);
  }
  // The most characters in one token: max_chars below the root.
  int32_t max_chars() const noexcept { return below_.empty() ? 0 : below_[0].max_chars; }
  std::string_view piece(TokenId id) const;  // "" for tokens left out
  int32_t max_depth() const noexcept { return max_depth_; }
  int32_t token_count() const noexcept { return static_cast<int32_t>(tokens_.size()); }

 private:
  void summarize_subtrees();
  std::span<const TokenId> tokens_in(int32_t begin, int32_t end) const {
    return std::span(tokens_).subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
  }

  uint64_t id_;
  int32_t n_vocab_;
  int32_t max_depth_ = 0;
  std::vector<uint8_t> bytes_;
  std::vector<uint16_t> depths_;
  std::vector<int32_t> ends_;
  std::vector<int32_t> token_begin_;   // per node, plus one past the last
  std::vector<TokenId> tokens_;        // in depth-first order
  std::vector<uint16_t> token_chars_;  // per entry of tokens_
  std::vector<Below> below_;           // per node
  std::string piece_bytes_;            // every piece, concatenated
  std::vector<uint32_t> piece_begin_;  // [id], [id + 1]
};

}  // namespace ember
