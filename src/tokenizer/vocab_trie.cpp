// Builds the depth-first byte trie from the sorted pieces: each piece shares the longest common
// prefix with the one before it.
#include "tokenizer/vocab_trie.h"

#include <algorithm>
#include <atomic>
#include <numeric>

#include "core/check.h"
#include "core/utf8.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

// Longer pieces cannot be indexed by the 16-bit depth; no vocabulary has them.
constexpr size_t kMaxPieceBytes = 4096;

uint64_t next_trie_id() {
  static std::atomic<uint64_t> counter{1};
  return counter.fetch_add(1);
}

}  // namespace

VocabTrie::VocabTrie(const std::vector<std::string>& pieces)
    : id_(next_trie_id()), n_vocab_(static_cast<int32_t>(pieces.size())) {
  piece_begin_.reserve(pieces.size() + 1);
  piece_begin_.push_back(0);
  for (const std::string& p : pieces) {
    if (p.size() <= kMaxPieceBytes) piece_bytes_ += p;
    piece_begin_.push_back(static_cast<uint32_t>(piece_bytes_.size()));
  }
  std::vector<TokenId> order;
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (!pieces[id].empty() && pieces[id].size() <= kMaxPieceBytes) order.push_back(static_cast<TokenId>(id));
  }
  std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
    return pieces[static_cast<size_t>(a)] != pieces[static_cast<size_t>(b)]
               ? pieces[static_cast<size_t>(a)] < pieces[static_cast<size_t>(b)]
               : a < b;
  });

  auto add_node = [&](uint8_t byte, size_t depth) {
    bytes_.push_back(byte);
    depths_.push_back(static_cast<uint16_t>(depth));
    ends_.push_back(-1);
    token_begin_.push_back(static_cast<int32_t>(tokens_.size()));
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(depth));
    return static_cast<int32_t>(bytes_.size() - 1);
  };
  std::vector<int32_t> path = {add_node(0, 0)};  // path[d]: the node at depth d
  std::string_view prev;
  for (const TokenId id : order) {
    const std::string_view p = pieces[static_cast<size_t>(id)];
    const size_t common =
        static_cast<size_t>(std::mismatch(p.begin(), p.end(), prev.begin(), prev.end()).first - p.begin());
    while (path.size() > common + 1) {  // close the subtrees that end here
      ends_[static_cast<size_t>(path.back())] = static_cast<int32_t>(bytes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < p.size(); ++d) path.push_back(add_node(static_cast<uint8_t>(p[d]), d + 1));
    tokens_.push_back(id);
    size_t chars = 0;
    for (const char ch : p) chars += (static_cast<uint8_t>(ch) & 0xC0) != 0x80 ? 1 : 0;
    token_chars_.push_back(static_cast<uint16_t>(chars));
    prev = p;
  }
  while (!path.empty()) {
    ends_[static_cast<size_t>(path.back())] = static_cast<int32_t>(bytes_.size());
    path.pop_back();
  }
  token_begin_.push_back(static_cast<int32_t>(tokens_.size()));
  summarize_subtrees();
}

// Children come after their parent in depth-first order: one backward pass sees every child's
// summary before its parent's. The well-formed flag is kept per UTF-8 state the path may be in at
// the node (bit s: every path below is well-formed from state s), as a child's depends on it.
void VocabTrie::summarize_subtrees() {
  below_.assign(bytes_.size(), Below{});
  std::vector<uint8_t> ok_from(bytes_.size(), 0xFF);
  for (int32_t i = size() - 1; i >= 0; --i) {
    Below& b = below_[static_cast<size_t>(i)];
    uint8_t ok = 0xFF;
    for (int32_t c = i + 1; c < end(i); c = end(c)) {
      const uint8_t byte = bytes_[static_cast<size_t>(c)];
      const Below& child = below_[static_cast<size_t>(c)];
      if (byte < 0x80) {
        b.ascii[byte >> 6] |= uint64_t{1} << (byte & 63);
      } else {
        b.non_ascii = true;
      }
      b.ascii[0] |= child.ascii[0];
      b.ascii[1] |= child.ascii[1];
      b.non_ascii = b.non_ascii || child.non_ascii;
      const int starts_char = (byte & 0xC0) != 0x80 ? 1 : 0;
      b.max_chars = static_cast<uint16_t>(std::min(0xFFFF, std::max<int>(b.max_chars, starts_char + child.max_chars)));
      uint8_t child_ok = 0;
      for (int s = 0; s < utf8::kAutomatonStates; ++s) {
        const int next = utf8::next_state(s, byte);
        if (next >= 0 && (ok_from[static_cast<size_t>(c)] >> next & 1) != 0) child_ok |= static_cast<uint8_t>(1 << s);
      }
      ok &= child_ok;
    }
    ok_from[static_cast<size_t>(i)] = ok;
    b.well_formed = (ok & 1) != 0;
  }
}

VocabTrie VocabTrie::from_tokenizer(const Tokenizer& tokenizer) {
  const Vocab& vocab = tokenizer.vocab();
  std::vector<std::string> pieces(static_cast<size_t>(vocab.size()));
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.type(id);
    if (type == TokenType::kControl || type == TokenType::kUnknown || type == TokenType::kUnused ||
        vocab.is_end_of_generation(id)) {
      continue;
    }
    tokenizer.append_piece(id, false, pieces[static_cast<size_t>(id)]);
  }
  return VocabTrie(pieces);
}

std::string_view VocabTrie::piece(TokenId id) const {
  EMBER_CHECK(id >= 0 && id < n_vocab_);
  const auto i = static_cast<size_t>(id);
  return std::string_view(piece_bytes_).substr(piece_begin_[i], piece_begin_[i + 1] - piece_begin_[i]);
}

}  // namespace ember
