// The shared mask cache: a mutex-guarded LRU list with a hash index.
#include "grammar/mask_cache.h"

namespace ember::grammar {

MaskCache::MaskCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

MaskCache& MaskCache::shared() {
  static MaskCache cache(size_t{64} << 20);
  return cache;
}

std::shared_ptr<const MaskEntry> MaskCache::find(const MaskKey& key) {
  const std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void MaskCache::insert(const MaskKey& key, std::shared_ptr<const MaskEntry> entry) {
  const std::lock_guard lock(mutex_);
  if (index_.count(key) != 0) return;  // another thread computed it first: same contents
  bytes_ += entry->bytes();
  lru_.emplace_front(key, std::move(entry));
  index_.emplace(key, lru_.begin());
  while (bytes_ > capacity_ && lru_.size() > 1) {
    bytes_ -= lru_.back().second->bytes();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

MaskCache::Stats MaskCache::stats() const {
  const std::lock_guard lock(mutex_);
  return {.hits = hits_, .misses = misses_, .entries = lru_.size(), .bytes = bytes_};
}

void MaskCache::clear() {
  const std::lock_guard lock(mutex_);
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

}  // namespace ember::grammar
