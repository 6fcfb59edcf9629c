// The vocabulary trie: every token is found at its bytes, subtrees hold exactly the tokens sharing
// a prefix, and the per-subtree summaries (bytes, characters, UTF-8 well-formedness) equal what
// the tokens below each node say, on random pieces with partial and invalid UTF-8.
#include "tokenizer/vocab_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/utf8.h"

namespace ember {
namespace {

int chars_in(std::string_view s) {
  int n = 0;
  for (const char ch : s) n += (static_cast<uint8_t>(ch) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// Whether `s`, read from a character boundary, is a prefix of well-formed UTF-8.
bool well_formed_prefix(std::string_view s) {
  int state = 0;
  for (const char ch : s) {
    state = utf8::next_state(state, static_cast<unsigned char>(ch));
    if (state < 0) return false;
  }
  return true;
}

std::vector<std::string> random_pieces(uint32_t seed) {
  // Pieces from an alphabet of ASCII, whole characters, lone lead and continuation bytes, so that
  // prefixes are shared and some paths are not well-formed.
  const std::vector<std::string> parts = {
      "a",    "b",    " ",        "\"",   "\xC3\xA9",    "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
      "\xC3", "\xA9", "\xE4\xB8", "\xFF", "\xED\xA0\x80"};
  std::mt19937 rng(seed);
  std::vector<std::string> pieces;
  for (int i = 0; i < 400; ++i) {
    std::string p;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) p += parts[rng() % parts.size()];
    pieces.push_back(p);
  }
  pieces.emplace_back("");      // a token left out
  pieces.push_back(pieces[3]);  // a duplicate piece: both ids end at the same node
  return pieces;
}

TEST(VocabTrie, SubtreesAndSummariesMatchTheTokensBelow) {
  for (const uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<std::string> pieces = random_pieces(seed);
    const VocabTrie trie(pieces);
    ASSERT_EQ(trie.token_count(), static_cast<int32_t>(pieces.size()) - 1);
    int32_t max_chars = 0;
    for (const std::string& p : pieces) max_chars = std::max(max_chars, chars_in(p));
    EXPECT_EQ(trie.max_chars(), max_chars);
    // The path to every node, rebuilt from the depth-first order.
    std::vector<std::string> path(static_cast<size_t>(trie.size()));
    std::vector<std::string> stack = {""};
    for (int32_t i = 1; i < trie.size(); ++i) {
      stack.resize(static_cast<size_t>(trie.depth(i)));
      stack.push_back(stack.back() + static_cast<char>(trie.byte(i)));
      path[static_cast<size_t>(i)] = stack.back();
    }
    for (int32_t i = 0; i < trie.size(); ++i) {
      const std::string& prefix = path[static_cast<size_t>(i)];
      VocabTrie::Below expect;
      std::vector<TokenId> below;
      for (TokenId id = 0; id < static_cast<TokenId>(pieces.size()); ++id) {
        const std::string& p = pieces[static_cast<size_t>(id)];
        if (p.empty() || !p.starts_with(prefix)) continue;
        below.push_back(id);
        const std::string_view rest = std::string_view(p).substr(prefix.size());
        for (const char ch : rest) {
          const auto b = static_cast<uint8_t>(ch);
          if (b < 0x80) {
            expect.ascii[b >> 6] |= uint64_t{1} << (b & 63);
          } else {
            expect.non_ascii = true;
          }
        }
        expect.max_chars = static_cast<uint16_t>(std::max<int>(expect.max_chars, chars_in(rest)));
        expect.well_formed = expect.well_formed && well_formed_prefix(rest);
        if (p == prefix) {
          const auto at = trie.tokens_at(i);
          EXPECT_NE(std::find(at.begin(), at.end(), id), at.end()) << "token " << id << " at node " << i;
        }
      }
      const auto span = trie.tokens_below(i);
      std::vector<TokenId> got(span.begin(), span.end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, below) << "node " << i;
      const VocabTrie::Below& b = trie.below(i);
      EXPECT_EQ(b.ascii[0], expect.ascii[0]) << "node " << i;
      EXPECT_EQ(b.ascii[1], expect.ascii[1]) << "node " << i;
      EXPECT_EQ(b.non_ascii, expect.non_ascii) << "node " << i;
      EXPECT_EQ(b.max_chars, expect.max_chars) << "node " << i;
      EXPECT_EQ(b.well_formed, expect.well_formed) << "node " << i;
      // chars_below() runs beside tokens_below().
      const auto chars = trie.chars_below(i);
      ASSERT_EQ(chars.size(), span.size());
      for (size_t k = 0; k < span.size(); ++k) {
        EXPECT_EQ(chars[k], chars_in(pieces[static_cast<size_t>(span[k])]));
      }
    }
  }
}

}  // namespace
}  // namespace ember
