// BpeTokenizer: rank-ordered merges of token ids over a linked list with a min-heap of candidate
// pairs (stale entries skipped), a word cache, and the byte-level alphabet.
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "core/utf8.h"
#include "ember/error.h"
#include "tokenizer/byte_level.h"

namespace ember {
namespace {

struct Symbol {
  TokenId id;  // -1 once merged into its left neighbour (or for a byte the vocabulary lacks)
  int prev;
  int next;
};

// A candidate merge of the symbol at `left` (holding left_id) with its next (holding right_id).
struct Candidate {
  int32_t rank;
  int left;
  TokenId left_id;
  TokenId right_id;
  TokenId result;
  // The heap's top: the lowest rank, then the leftmost pair.
  bool operator<(const Candidate& other) const {
    return rank > other.rank || (rank == other.rank && left > other.left);
  }
};

}  // namespace

BpeTokenizer::BpeTokenizer(const Vocab& vocab)
    : vocab_(vocab),
      pre_tokenizer_(vocab.model() == TokenizerModel::kBpe ? vocab.pre() : std::string("default")),
      ignore_merges_(false) {
  if (vocab.model() != TokenizerModel::kBpe) {
    fail(ErrorCode::kInvalidArgument, "BPE tokenizer: the vocabulary is {}, not gpt2 (byte-level BPE)",
         tokenizer_model_name(vocab.model()));
  }
  ignore_merges_ = pre_tokenizer_traits(vocab.pre())->ignore_merges;  // the constructor above checked the name
  for (int b = 0; b < 256; ++b) {
    const std::optional<TokenId> id = vocab.find(byte_level::char_of(static_cast<uint8_t>(b)));
    byte_tokens_[b] = id ? *id : -1;
  }
  // Merges on ids: a merge applies only when both sides and the result are tokens (in real
  // vocabularies they all are); where a pair repeats, the first (lowest) rank counts.
  const auto& merges = vocab.merges();
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const std::optional<TokenId> l = vocab.find(left);
    const std::optional<TokenId> r = vocab.find(right);
    if (!l || !r) continue;
    joined.assign(left).append(right);
    const std::optional<TokenId> result = vocab.find(joined);
    if (!result) continue;
    merges_.emplace(pair_key(*l, *r), Merge{static_cast<int32_t>(rank), *result});
  }
}

std::vector<TokenId> BpeTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  encode(text, out);
  return out;
}

void BpeTokenizer::encode(std::string_view text, std::vector<TokenId>& out) const {
  // Valid text (the common case) is split in place; only invalid text is copied to be repaired.
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::sanitize(text);
    text = repaired;
  }
  std::vector<std::string_view> words;
  pre_tokenizer_.split(text, words);
  std::string spelled;  // reused: a word in the byte-level alphabet
  for (std::string_view word : words) encode_word(word, spelled, out);
}

void BpeTokenizer::encode_word(std::string_view word, std::string& spelled, std::vector<TokenId>& out) const {
  if (cache_.append(word, out)) return;
  const size_t first = out.size();
  std::optional<TokenId> whole;
  if (ignore_merges_) {
    spelled.clear();
    byte_level::encode(word, spelled);
    whole = vocab_.find(spelled);
  }
  if (whole) {
    out.push_back(*whole);
  } else {
    merge_word(word, out);
  }
  cache_.insert(word, out.data() + first, out.size() - first);
}

void BpeTokenizer::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  const int n = static_cast<int>(word.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    symbols[static_cast<size_t>(i)] = {byte_tokens_[static_cast<unsigned char>(word[static_cast<size_t>(i)])], i - 1,
                                       i + 1 < n ? i + 1 : -1};
  }
  std::vector<Candidate> heap;
  const auto consider = [&](int left) {
    if (left < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    if (l.next < 0 || l.id < 0) return;
    const TokenId right_id = symbols[static_cast<size_t>(l.next)].id;
    if (right_id < 0) return;
    const auto it = merges_.find(pair_key(l.id, right_id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, left, l.id, right_id, it->second.result});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[static_cast<size_t>(c.left)];
    // Stale when either side changed since the candidate was queued: a symbol's id only changes by
    // growing, so an unchanged id means an unchanged symbol.
    if (left.id != c.left_id || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    if (right.id != c.right_id) continue;
    left.id = c.result;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }

  for (int i = 0; i >= 0 && i < n; i = symbols[static_cast<size_t>(i)].next) {
    const TokenId id = symbols[static_cast<size_t>(i)].id;
    if (id >= 0) {
      out.push_back(id);
    } else if (vocab_.special().unk) {
      out.push_back(*vocab_.special().unk);  // a byte the vocabulary cannot spell
    }
  }
}

}  // namespace ember
