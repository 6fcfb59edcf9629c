// WordCache: the tokens of words seen before. Natural text repeats a small set of words, so most
// words of a long text cost one lookup instead of their merges. Bounded (each shard cleared when
// full) and thread-safe: sharded by hash, so threads tokenizing at once rarely wait on one lock.
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
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxEntriesPerShard = 4096;

  // Appends the cached tokens of `word` and returns true, or returns false.
  bool append(std::string_view word, std::vector<TokenId>& out) const {
    if (word.size() > kMaxWordBytes) return false;
    const size_t hash = Hash{}(word);
    Shard& shard = shards_[hash % kShards];
    const std::lock_guard lock(shard.mutex);
    const auto it = shard.entries.find(word);
    if (it == shard.entries.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, const TokenId* tokens, size_t n) const {
    if (word.size() > kMaxWordBytes) return;
    Shard& shard = shards_[Hash{}(word) % kShards];
    const std::lock_guard lock(shard.mutex);
    if (shard.entries.size() >= kMaxEntriesPerShard) shard.entries.clear();
    shard.entries.try_emplace(std::string(word), tokens, tokens + n);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>, Hash, std::equal_to<>> entries;
  };
  mutable Shard shards_[kShards];
};

}  // namespace ember
