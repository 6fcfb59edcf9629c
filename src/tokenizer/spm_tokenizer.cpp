// SpmTokenizer: score-ordered bigram merges over a linked list of UTF-8 characters with a priority
// queue (stale entries skipped), then byte fallback for characters that are no token.
#include "tokenizer/spm_tokenizer.h"

#include <cstdio>
#include <queue>
#include <string>

#include "ember/error.h"

namespace ember {
namespace {

// Length of the UTF-8 sequence a lead byte starts (1 for continuation / invalid bytes, so every
// byte ends up in some symbol), clamped to what is left.
size_t utf8_length(unsigned char lead, size_t left) {
  const size_t n = lead < 0x80 ? 1 : lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF8 ? 4 : 1;
  return n < left ? n : left;
}

struct Symbol {
  int prev;
  int next;
  size_t start;   // byte offset in the escaped text
  size_t length;  // 0 once merged into its left neighbour
};

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

}  // namespace

SpmTokenizer::SpmTokenizer(const Vocab& vocab) : vocab_(vocab) {
  if (vocab.model() != TokenizerModel::kSpm) {
    fail(ErrorCode::kInvalidArgument, "SPM tokenizer: the vocabulary is {}, not llama (SentencePiece)",
         tokenizer_model_name(vocab.model()));
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const std::optional<TokenId> id = vocab.find(name);
    byte_tokens_[b] = id ? *id : -1;
  }
}

void SpmTokenizer::append_bytes(std::string_view piece, std::vector<TokenId>& out) const {
  for (unsigned char byte : piece) {
    if (byte_tokens_[byte] >= 0) {
      out.push_back(byte_tokens_[byte]);
    } else if (vocab_.special().unk) {
      out.push_back(*vocab_.special().unk);
    }
  }
}

std::vector<TokenId> SpmTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  encode(text, vocab_.add_space_prefix(), out);
  return out;
}

void SpmTokenizer::encode(std::string_view raw, bool space_prefix, std::vector<TokenId>& out) const {
  if (raw.empty()) return;
  // Spaces become "▁" (U+2581), with one more in front when asked for.
  static constexpr std::string_view kSpace = "\xE2\x96\x81";
  std::string text;
  text.reserve(raw.size() * 3 + 3);
  if (space_prefix) text.append(kSpace);
  for (char c : raw) {
    if (c == ' ') {
      text.append(kSpace);
    } else {
      text.push_back(c);
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t n = utf8_length(static_cast<unsigned char>(text[at]), text.size() - at);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, at + n < text.size() ? index + 1 : -1, at, n});
    at += n;
  }

  std::priority_queue<Bigram> queue;
  const auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view merged(
        text.data() + symbols[static_cast<size_t>(left)].start,
        symbols[static_cast<size_t>(left)].length + symbols[static_cast<size_t>(right)].length);
    const std::optional<TokenId> id = vocab_.find(merged);
    if (!id) return;
    queue.push({left, right, vocab_.score(*id), merged.size()});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    Symbol& right = symbols[static_cast<size_t>(top.right)];
    if (left.length == 0 || right.length == 0 || left.length + right.length != top.length) continue;  // stale
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    try_pair(left.prev, top.left);
    try_pair(top.left, left.next);
  }

  for (int i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece(text.data() + s.start, s.length);
    if (const std::optional<TokenId> id = vocab_.find(piece)) {
      out.push_back(*id);
    } else {
      append_bytes(piece, out);
    }
  }
}

}  // namespace ember
