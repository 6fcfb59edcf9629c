// TokenTrie: token texts in a byte trie, for longest-match lookups that cost O(match length)
// whatever the vocabulary holds — special-token splitting (thousands of "[PAD…]" texts share a
// first byte) and WordPiece's greedy longest piece (a hostile vocabulary may hold a token of
// thousands of bytes).
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.h"

namespace ember {

class TokenTrie {
 public:
  // Adds a text; where a text is added twice the first id stays. Empty texts are ignored.
  void insert(std::string_view text, TokenId id, uint8_t tag = 0) {
    if (text.empty()) return;
    if (nodes_.empty()) nodes_.emplace_back();
    int32_t node = 0;
    for (unsigned char byte : text) {
      const uint64_t key = edge_key(node, byte);
      const auto it = edges_.find(key);
      if (it != edges_.end()) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        edges_.emplace(key, child);
        node = child;
      }
    }
    if (nodes_[static_cast<size_t>(node)].id < 0) nodes_[static_cast<size_t>(node)] = {id, tag};
    first_bytes_[static_cast<unsigned char>(text[0])] = true;
  }

  bool can_start(unsigned char byte) const noexcept { return first_bytes_[byte]; }

  struct Match {
    TokenId id = -1;  // -1: none
    size_t length = 0;
    uint8_t tag = 0;
  };

  // The longest text that starts at text[pos] and whose tag `accept` allows.
  template <typename Accept>
  Match longest(std::string_view text, size_t pos, Accept&& accept) const {
    Match best;
    if (nodes_.empty()) return best;
    int32_t node = 0;
    for (size_t at = pos; at < text.size(); ++at) {
      const auto it = edges_.find(edge_key(node, static_cast<unsigned char>(text[at])));
      if (it == edges_.end()) break;
      node = it->second;
      const Node& n = nodes_[static_cast<size_t>(node)];
      if (n.id >= 0 && accept(n.tag)) best = {n.id, at + 1 - pos, n.tag};
    }
    return best;
  }

 private:
  struct Node {
    TokenId id = -1;  // the token whose text ends here, -1 if none
    uint8_t tag = 0;  // the caller's label of that token
  };
  static uint64_t edge_key(int32_t node, unsigned char byte) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(node)) << 8) | byte;
  }

  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> edges_;  // (node, byte) -> child
  bool first_bytes_[256] = {};
};

}  // namespace ember
