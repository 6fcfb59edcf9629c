// WordCache: the tokens of words seen before. Natural text repeats a small set of words, so most
// words of a long text cost one lookup instead of their merges. Bounded (cleared when full) and
// thread-safe, so a const tokenizer can share it between threads.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.h"

namespace ember {

class WordCache {
 public:
  // Words longer than this are not cached: they are rare, and their merges dominate anyway.
  static constexpr size_t kMaxWordBytes = 48;
  static constexpr size_t kMaxEntries = 1 << 16;

  // Appends the cached tokens of `word` and returns true, or returns false.
  bool append(std::string_view word, std::vector<TokenId>& out) const {
    if (word.size() > kMaxWordBytes) return false;
    const std::lock_guard lock(mutex_);
    const auto it = entries_.find(word);
    if (it == entries_.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, const TokenId* tokens, size_t n) const {
    if (word.size() > kMaxWordBytes) return;
    const std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.try_emplace(std::string(word), tokens, tokens + n);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, Hash, std::equal_to<>> entries_;
};

}  // namespace ember
