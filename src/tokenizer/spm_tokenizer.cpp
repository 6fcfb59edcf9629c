// SpmTokenizer: score-ordered bigram merges over a linked list of UTF-8 characters with a priority
// queue (stale entries skipped), then byte fallback for characters that are no token.
#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
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

}  // namespace

struct SpmTokenizer::Symbol {
  int prev;
  int next;
  size_t start;   // byte offset in the escaped text
  size_t length;  // 0 once merged into its left neighbour
};

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
  // A word start is a "▁" after something else. If no token holds a "▁" right after another
  // character, no merge can cross a word start, and words can be merged one at a time.
  words_are_independent_ = true;
  for (TokenId id = 0; id < vocab.size() && words_are_independent_; ++id) {
    const std::string& text = vocab.text(id);
    for (size_t at = text.find(kSpaceMark, 1); at != std::string::npos; at = text.find(kSpaceMark, at + 1)) {
      if (at < kSpaceMark.size() || text.compare(at - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) != 0) {
        words_are_independent_ = false;
        break;
      }
    }
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
  std::string text;
  text.reserve(raw.size() * 3 + 3);
  if (space_prefix) text.append(kSpaceMark);
  for (char c : raw) {
    if (c == ' ') {
      text.append(kSpaceMark);
    } else {
      text.push_back(c);
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t n = utf8_length(static_cast<unsigned char>(text[at]), text.size() - at);
    symbols.push_back({-1, -1, at, n});
    at += n;
  }
  const auto is_space_mark = [&](size_t i) {
    return symbols[i].length == kSpaceMark.size() && text.compare(symbols[i].start, kSpaceMark.size(), kSpaceMark) == 0;
  };

  // Merge word by word where no token can span a word start (see words_are_independent_), so the
  // queue stays small and in cache; the result is the same as merging the whole text at once.
  std::vector<Bigram> queue;
  size_t begin = 0;
  for (size_t i = 1; i <= symbols.size(); ++i) {
    const bool word_start = i < symbols.size() && words_are_independent_ && is_space_mark(i) && !is_space_mark(i - 1);
    if (i == symbols.size() || word_start) {
      const size_t word_begin = symbols[begin].start;
      const size_t word_end = i < symbols.size() ? symbols[i].start : text.size();
      const std::string_view word(text.data() + word_begin, word_end - word_begin);
      // The whole text is one "word" when words are not independent: never cached.
      if (!words_are_independent_ || !cache_.append(word, out)) {
        const size_t first = out.size();
        merge_range(text, symbols.data(), static_cast<int>(begin), static_cast<int>(i), queue, out);
        if (words_are_independent_) cache_.insert(word, out.data() + first, out.size() - first);
      }
      begin = i;
    }
  }
}

void SpmTokenizer::merge_range(std::string_view text, Symbol* symbols, int begin, int end, std::vector<Bigram>& queue,
                               std::vector<TokenId>& out) const {
  for (int i = begin; i < end; ++i) {
    symbols[i].prev = i > begin ? i - 1 : -1;
    symbols[i].next = i + 1 < end ? i + 1 : -1;
  }

  queue.clear();
  const auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view merged(text.data() + symbols[left].start, symbols[left].length + symbols[right].length);
    const std::optional<TokenId> id = vocab_.find(merged);
    if (!id) return;
    queue.push_back({left, right, vocab_.score(*id), merged.size()});
    std::push_heap(queue.begin(), queue.end());
  };
  for (int i = begin + 1; i < end; ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end());
    const Bigram top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != top.length) continue;  // stale
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_pair(left.prev, top.left);
    try_pair(top.left, left.next);
  }

  for (int i = begin; i >= 0; i = symbols[i].next) {
    const std::string_view piece(text.data() + symbols[i].start, symbols[i].length);
    if (const std::optional<TokenId> id = vocab_.find(piece)) {
      out.push_back(*id);
    } else {
      append_bytes(piece, out);
    }
  }
}

}  // namespace ember
