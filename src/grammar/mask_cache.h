// MaskCache: the context-independent part of token masks (XGrammar's idea), per vocabulary and
// grammar position, shared by every request in the process. A position is a frame (a compiled
// rule, by structural hash, and a state of it): `accepted` holds the tokens whose bytes that rule
// takes whole whatever lies below it on the stack; `uncertain` the tokens that end the rule part
// way and must be checked against the real stack, as trie subtrees (every token below a node
// shares its bytes, so one step rejects most of a group). LRU, bounded in bytes, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ember::grammar {

struct MaskEntry {
  std::vector<uint64_t> accepted;  // bitset over the vocabulary
  // The tokens below a trie node, of which the frame's rule took the first `consumed` bytes
  // before it ended: the rest must fit the caller.
  struct Uncertain {
    int32_t node;
    uint16_t consumed;
  };
  std::vector<Uncertain> uncertain;

  size_t bytes() const noexcept { return accepted.size() * 8 + uncertain.size() * 8 + sizeof(*this); }
};

struct MaskKey {
  uint64_t trie_id = 0;
  uint64_t rule_hash = 0;
  int32_t state = 0;
  friend bool operator==(const MaskKey&, const MaskKey&) = default;
};

class MaskCache {
 public:
  explicit MaskCache(size_t capacity_bytes);
  // The process-wide cache (64 MiB: about 4,000 positions of a 128k vocabulary).
  static MaskCache& shared();

  std::shared_ptr<const MaskEntry> find(const MaskKey& key);
  void insert(const MaskKey& key, std::shared_ptr<const MaskEntry> entry);

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
    size_t bytes = 0;
  };
  Stats stats() const;
  void clear();

 private:
  struct KeyHash {
    size_t operator()(const MaskKey& k) const noexcept {
      uint64_t h = k.trie_id * 0x9E3779B97F4A7C15ull ^ k.rule_hash;
      h = (h ^ static_cast<uint32_t>(k.state)) * 0xFF51AFD7ED558CCDull;
      return static_cast<size_t>(h ^ (h >> 31));
    }
  };
  using Lru = std::list<std::pair<MaskKey, std::shared_ptr<const MaskEntry>>>;

  mutable std::mutex mutex_;
  size_t capacity_;
  size_t bytes_ = 0;
  Lru lru_;  // most recent first
  std::unordered_map<MaskKey, Lru::iterator, KeyHash> index_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace ember::grammar
