// Builds the depth-first byte trie from the sorted pieces: each piece shares the longest common
// prefix with the one before it.
#include "tokenizer/vocab_trie.h"

#include <algorithm>
#include <atomic>
#include <numeric>

#include "core/check.h"
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
    prev = p;
  }
  while (!path.empty()) {
    ends_[static_cast<size_t>(path.back())] = static_cast<int32_t>(bytes_.size());
    path.pop_back();
  }
  token_begin_.push_back(static_cast<int32_t>(tokens_.size()));
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
