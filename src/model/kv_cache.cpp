// KvCache: a free-list block allocator with reference counts, per-sequence block tables,
// copy-on-write of a shared block before a sequence writes into it, and prefix caching (a hash
// index of full blocks and an LRU list of the cached ones no sequence holds).
#include "model/kv_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>

#include "core/check.h"
#include "ember/error.h"

namespace ember {
namespace {

constexpr uint64_t kRootKey = 0;  // the "key" before block 0
constexpr auto kBlock = static_cast<size_t>(kKvBlockTokens);

uint64_t xxh3_block_hash(uint64_t parent_key, std::span<const int32_t> block_tokens) {
  return XXH3_64bits_withSeed(block_tokens.data(), block_tokens.size_bytes(), parent_key);
}

bool same_tokens(std::span<const int32_t> a, const std::array<int32_t, kKvBlockTokens>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace

std::optional<DType> kv_type_from_name(std::string_view name) noexcept {
  const auto is = [name](std::string_view lower) {
    return std::equal(name.begin(), name.end(), lower.begin(), lower.end(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  };
  if (is("f16")) return DType::kF16;
  if (is("f32")) return DType::kF32;
  if (is("q8_0")) return DType::kQ8_0;
  return std::nullopt;
}

void check_kv_dtypes(const ModelConfig& config, DType k_dtype, DType v_dtype) {
  for (const auto& [t, head_dim] : {std::pair{k_dtype, config.head_dim}, std::pair{v_dtype, config.head_dim_v}}) {
    if (t == DType::kQ8_0 && !kv_dtype_supported(t, head_dim)) {
      fail(ErrorCode::kUnsupported,
           "KV cache: q8_0 needs heads of a multiple of 32 values (a block is 32 values of one head); {} has "
           "heads of {} (use f16)",
           config.name.empty() ? "this model" : "'" + config.name + "'", head_dim);
    }
    if (!kv_dtype_supported(t, head_dim)) {
      fail(ErrorCode::kInvalidArgument, "KV cache: type {} is not supported (f16, f32, q8_0)", dtype_name(t));
    }
  }
}

KvCache::KvCache(const ModelConfig& config, const KvCacheOptions& options)
    : n_layer_(config.n_layer),
      k_layout_{config.n_head_kv, config.head_dim, options.k_dtype},
      v_layout_{config.n_head_kv, config.head_dim_v, options.v_dtype},
      values_in_keys_(config.mla.kv_lora_rank > 0),
      hash_(xxh3_block_hash) {
  if (config.head_dim_v != config.head_dim) {
    fail(ErrorCode::kUnsupported, "KV cache: key and value head sizes differ ({} and {}); not supported yet",
         config.head_dim, config.head_dim_v);
  }
  if (options.n_blocks <= 0)
    fail(ErrorCode::kInvalidArgument, "KV cache: {} blocks (need at least one)", options.n_blocks);
  check_kv_dtypes(config, options.k_dtype, options.v_dtype);
  if (values_in_keys_ && options.v_dtype != options.k_dtype) {
    fail(ErrorCode::kInvalidArgument,
         "KV cache: latent attention keeps the values in the key rows, so K and V take one type (not {} and {})",
         dtype_name(options.k_dtype), dtype_name(options.v_dtype));
  }
  const auto n = static_cast<size_t>(options.n_blocks);
  for (const KvLayout* layout : {&k_layout_, &v_layout_}) {
    if (layout->block_bytes() == 0 || n > std::numeric_limits<size_t>::max() / layout->block_bytes()) {
      fail(ErrorCode::kInvalidArgument, "KV cache: {} blocks of {} bytes overflow", n, layout->block_bytes());
    }
  }
  first_device_layer_ = options.device ? std::clamp(options.first_device_layer, 0, n_layer_) : n_layer_;
  device_ = options.device;
  for (int32_t l = 0; l < n_layer_; ++l) {
    if (l < first_device_layer_) {
      k_pools_.emplace_back(n * k_layout_.block_bytes());
      if (!values_in_keys_) v_pools_.emplace_back(n * v_layout_.block_bytes());
    } else {
      device_k_pools_.push_back(device_->allocate(n * k_layout_.block_bytes()));
      if (!values_in_keys_) device_v_pools_.push_back(device_->allocate(n * v_layout_.block_bytes()));
    }
  }
  ref_counts_.assign(n, 0);
  free_.reserve(n);
  for (int32_t b = options.n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out 0, 1, 2, ... first
  info_.assign(n, BlockInfo{});
  index_.reserve(n);  // never rehashes: at most one key per block
}

KvCacheStats KvCache::stats() const noexcept {
  const int32_t free = static_cast<int32_t>(free_.size());
  return {.total = n_blocks(), .used = n_blocks() - free - lru_size_, .cached = lru_size_, .free = free};
}

size_t KvCache::bytes() const noexcept {
  const size_t v_bytes = values_in_keys_ ? 0 : v_layout_.block_bytes();
  return static_cast<size_t>(n_layer_) * ref_counts_.size() * (k_layout_.block_bytes() + v_bytes);
}

KvCache::Sequence& KvCache::sequence(SeqId seq) {
  EMBER_CHECK_MSG(seq >= 0 && static_cast<size_t>(seq) < sequences_.size() && sequences_[static_cast<size_t>(seq)].live,
                  "KV cache: no such sequence");
  return sequences_[static_cast<size_t>(seq)];
}

const KvCache::Sequence& KvCache::sequence(SeqId seq) const { return const_cast<KvCache*>(this)->sequence(seq); }

// Free blocks first; then the least recently released cached block, which loses its key.
int32_t KvCache::take_block() {
  int32_t block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    EMBER_CHECK(lru_head_ >= 0);
    block = lru_head_;
    lru_remove(block);
    unkey(block);
  }
  ref_counts_[static_cast<size_t>(block)] = 1;
  return block;
}

void KvCache::release_block(int32_t block) {
  int32_t& count = ref_counts_[static_cast<size_t>(block)];
  EMBER_CHECK(count > 0);
  if (--count > 0) return;
  if (info_[static_cast<size_t>(block)].keyed) {
    lru_push_back(block);  // stays matchable until its memory is needed
  } else {
    free_.push_back(block);
  }
}

KvCache::Instance KvCache::instance(int32_t block) const noexcept {
  return {block, info_[static_cast<size_t>(block)].generation};
}

// Whether that keyed block still holds the content it was keyed with.
bool KvCache::holds(const Instance& i) const noexcept {
  if (i.block < 0) return true;
  const BlockInfo& b = info_[static_cast<size_t>(i.block)];
  return b.keyed && b.generation == i.generation;
}

void KvCache::unkey(int32_t block) {
  BlockInfo& b = info_[static_cast<size_t>(block)];
  EMBER_CHECK(b.keyed);
  index_.erase(b.key);
  b.keyed = false;
  ++b.generation;  // blocks keyed after this one (their parent) no longer chain from it
}

void KvCache::lru_push_back(int32_t block) {
  BlockInfo& b = info_[static_cast<size_t>(block)];
  b.lru_prev = lru_tail_;
  b.lru_next = -1;
  if (lru_tail_ >= 0) {
    info_[static_cast<size_t>(lru_tail_)].lru_next = block;
  } else {
    lru_head_ = block;
  }
  lru_tail_ = block;
  ++lru_size_;
}

void KvCache::lru_remove(int32_t block) {
  BlockInfo& b = info_[static_cast<size_t>(block)];
  if (b.lru_prev >= 0) {
    info_[static_cast<size_t>(b.lru_prev)].lru_next = b.lru_next;
  } else {
    lru_head_ = b.lru_next;
  }
  if (b.lru_next >= 0) {
    info_[static_cast<size_t>(b.lru_next)].lru_prev = b.lru_prev;
  } else {
    lru_tail_ = b.lru_prev;
  }
  b.lru_prev = b.lru_next = -1;
  --lru_size_;
}

void KvCache::copy_block(int32_t from, int32_t to) {
  for (int32_t l = 0; l < n_layer_; ++l) {
    const PagedKvView pools = layer(l);
    auto* k = static_cast<std::byte*>(pools.k);
    auto* v = static_cast<std::byte*>(pools.v);
    if (l < first_device_layer_) {
      std::memcpy(k + k_layout_.offset(to, 0, 0), k + k_layout_.offset(from, 0, 0), k_layout_.block_bytes());
      if (v == k) continue;
      std::memcpy(v + v_layout_.offset(to, 0, 0), v + v_layout_.offset(from, 0, 0), v_layout_.block_bytes());
    } else {
      device_->copy(k + k_layout_.offset(to, 0, 0), k + k_layout_.offset(from, 0, 0), k_layout_.block_bytes());
      if (v == k) continue;
      device_->copy(v + v_layout_.offset(to, 0, 0), v + v_layout_.offset(from, 0, 0), v_layout_.block_bytes());
    }
  }
}

SeqId KvCache::add_sequence() {
  size_t i = 0;
  while (i < sequences_.size() && sequences_[i].live) ++i;
  if (i == sequences_.size()) sequences_.emplace_back();
  Sequence& s = sequences_[i];
  s = Sequence{};
  s.live = true;
  // A sequence never holds more than every block: its table never grows (allocates) inside a step.
  s.blocks.reserve(static_cast<size_t>(n_blocks()));
  s.links.reserve(static_cast<size_t>(n_blocks()));
  return static_cast<SeqId>(i);
}

// Walks the cached full blocks matching `tokens`, calling on_block(key, block) for each, and
// returns the match length. A block matches when its key is found and its stored tokens and
// parent (the exact keyed block matched before it) agree, so a hash collision only ends a match.
template <typename F>
int32_t KvCache::match_blocks(std::span<const int32_t> tokens, int32_t max_tokens, F&& on_block) const {
  if (!caching_ || max_tokens <= 0) return 0;
  const size_t limit = std::min(tokens.size(), static_cast<size_t>(max_tokens)) / kBlock;
  uint64_t key = kRootKey;
  Instance parent;
  size_t n = 0;
  for (; n < limit; ++n) {
    const std::span<const int32_t> block_tokens = tokens.subspan(n * kBlock, kBlock);
    key = hash_(key, block_tokens);
    const auto it = index_.find(key);
    if (it == index_.end()) break;
    const BlockInfo& b = info_[static_cast<size_t>(it->second)];
    if (b.parent != parent || !same_tokens(block_tokens, b.tokens)) break;
    parent = instance(it->second);
    on_block(key, it->second);
  }
  return static_cast<int32_t>(n * kBlock);
}

int32_t KvCache::match_prefix(std::span<const int32_t> tokens, int32_t max_tokens) const {
  return match_blocks(tokens, max_tokens, [](uint64_t, int32_t) {});
}

SeqId KvCache::add_sequence(std::span<const int32_t> tokens, int32_t max_tokens, int32_t* n_matched) {
  const SeqId id = add_sequence();
  Sequence& s = sequence(id);
  const int32_t n = match_blocks(tokens, max_tokens, [&](uint64_t key, int32_t block) {
    if (ref_counts_[static_cast<size_t>(block)]++ == 0) lru_remove(block);
    s.blocks.push_back(block);
    s.links.push_back({key, instance(block)});
  });
  s.n_tokens = s.reserved = n;
  if (n_matched != nullptr) *n_matched = n;
  return id;
}

void KvCache::cache_full_blocks(SeqId seq, std::span<const int32_t> tokens) {
  Sequence& s = sequence(seq);
  EMBER_CHECK_MSG(tokens.size() >= static_cast<size_t>(s.n_tokens), "KV cache: fewer tokens than the sequence holds");
  if (!caching_) return;
  const auto full = static_cast<size_t>(s.n_tokens) / kBlock;
  while (!s.chain_broken && s.links.size() < full) {
    const size_t i = s.links.size();
    const Link parent = i == 0 ? Link{kRootKey, Instance{}} : s.links[i - 1];
    const std::span<const int32_t> block_tokens = tokens.subspan(i * kBlock, kBlock);
    const uint64_t key = hash_(parent.key, block_tokens);
    const int32_t block = s.blocks[i];
    // The keyed block holding this content: this one, or an identical one keyed first (which
    // this one then does not duplicate in the index).
    int32_t holder = -1;
    if (holds(parent.holder)) {  // else that parent was evicted: a child keyed now is unreachable
      const auto it = index_.find(key);
      if (it != index_.end()) {
        const BlockInfo& b = info_[static_cast<size_t>(it->second)];
        if (b.parent == parent.holder && same_tokens(block_tokens, b.tokens)) holder = it->second;
      } else if (!info_[static_cast<size_t>(block)].keyed) {
        BlockInfo& b = info_[static_cast<size_t>(block)];
        b.keyed = true;
        b.key = key;
        b.parent = parent.holder;
        std::copy(block_tokens.begin(), block_tokens.end(), b.tokens.begin());
        index_.emplace(key, block);
        holder = block;
      }
    }
    if (holder < 0) {
      // A collision (the key is taken by other content) or a lost parent: stop publishing this
      // sequence's blocks rather than key them under a chain that does not describe them.
      s.chain_broken = true;
      break;
    }
    s.links.push_back({key, instance(holder)});
  }
}

void KvCache::set_prefix_caching(bool on) {
  if (on == caching_) return;
  caching_ = on;
  if (on) return;
  for (int32_t block = 0; block < n_blocks(); ++block) {
    if (!info_[static_cast<size_t>(block)].keyed) continue;
    unkey(block);
    if (ref_counts_[static_cast<size_t>(block)] == 0) {
      lru_remove(block);
      free_.push_back(block);
    }
  }
  for (Sequence& s : sequences_) {
    s.links.clear();
    s.chain_broken = false;
  }
}

void KvCache::set_block_hash_for_testing(BlockHash hash) {
  EMBER_CHECK(index_.empty());
  hash_ = hash;
}

void KvCache::remove_sequence(SeqId seq) {
  Sequence& s = sequence(seq);
  // Last block first: the LRU then evicts a prefix's tail before its head, which keeps the
  // shorter prefix matchable (a block whose parent is evicted can no longer match).
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) release_block(*it);
  s = Sequence{};
}

SeqId KvCache::fork(SeqId from, int32_t n_tokens) {
  {
    const Sequence& src = sequence(from);
    EMBER_CHECK_MSG(n_tokens >= 0 && n_tokens <= src.n_tokens, "KV cache: fork past the end of the sequence");
  }
  const SeqId id = add_sequence();  // may reallocate sequences_: look the source up again
  const Sequence& src = sequence(from);
  Sequence& dst = sequence(id);
  const size_t n_blocks = static_cast<size_t>((n_tokens + kKvBlockTokens - 1) / kKvBlockTokens);
  dst.blocks.assign(src.blocks.begin(), src.blocks.begin() + static_cast<std::ptrdiff_t>(n_blocks));
  for (int32_t block : dst.blocks) ++ref_counts_[static_cast<size_t>(block)];
  dst.n_tokens = dst.reserved = n_tokens;
  // The shared full blocks' chain carries over, so the fork publishes only what it writes.
  const auto full = static_cast<size_t>(n_tokens) / kBlock;
  dst.links.assign(src.links.begin(),
                   src.links.begin() + static_cast<std::ptrdiff_t>(std::min(full, src.links.size())));
  dst.chain_broken = src.chain_broken && full > src.links.size();
  return id;
}

int32_t KvCache::n_tokens(SeqId seq) const { return sequence(seq).n_tokens; }

// What reserve(seq, n_new) takes: the blocks the sequence must hold, and whether its partly filled
// last block is shared and must be copied before the next write lands in it. (A keyed block
// partly filled and not shared is unkeyed instead, which takes no block.)
KvCache::Growth KvCache::growth(SeqId seq, int32_t n_new) const {
  const Sequence& s = sequence(seq);
  EMBER_CHECK(n_new >= 0);
  const int64_t end = int64_t{s.n_tokens} + n_new;
  if (end > std::numeric_limits<int32_t>::max() - kKvBlockTokens) return {0, false, false};
  const auto blocks = static_cast<size_t>((end + kKvBlockTokens - 1) / kKvBlockTokens);
  const bool copy_last =
      n_new > 0 && s.n_tokens % kKvBlockTokens != 0 && ref_counts_[static_cast<size_t>(s.blocks.back())] > 1;
  return {blocks, copy_last, true};
}

int32_t KvCache::blocks_to_reserve(SeqId seq, int32_t n_new) const {
  const Growth g = growth(seq, n_new);
  if (!g.possible) return std::numeric_limits<int32_t>::max();
  const size_t held = sequence(seq).blocks.size();
  return static_cast<int32_t>((g.blocks > held ? g.blocks - held : 0) + (g.copy_last ? 1 : 0));
}

bool KvCache::reserve(SeqId seq, int32_t n_new) {
  const int32_t fresh = blocks_to_reserve(seq, n_new);
  if (fresh == std::numeric_limits<int32_t>::max() || fresh > free_blocks()) return false;
  const Growth g = growth(seq, n_new);
  Sequence& s = sequence(seq);
  if (g.copy_last) {
    const int32_t copy = take_block();
    copy_block(s.blocks.back(), copy);
    release_block(s.blocks.back());
    s.blocks.back() = copy;
  } else if (n_new > 0 && s.n_tokens % kKvBlockTokens != 0 && info_[static_cast<size_t>(s.blocks.back())].keyed) {
    // A keyed block kept partly filled (truncate, or a fork whose source left) and held by this
    // sequence alone: cached content must never change, so it leaves the index before the write.
    unkey(s.blocks.back());
  }
  while (s.blocks.size() < g.blocks) s.blocks.push_back(take_block());
  s.reserved = std::max(s.reserved, s.n_tokens + n_new);
  return true;
}

void KvCache::commit(SeqId seq, int32_t n_new) {
  Sequence& s = sequence(seq);
  EMBER_CHECK_MSG(n_new >= 0 && int64_t{s.n_tokens} + n_new <= s.reserved, "KV cache: commit past the reservation");
  s.n_tokens += n_new;
}

void KvCache::truncate(SeqId seq, int32_t n_tokens) {
  Sequence& s = sequence(seq);
  EMBER_CHECK_MSG(n_tokens >= 0 && n_tokens <= s.n_tokens, "KV cache: truncate past the end of the sequence");
  const auto keep = static_cast<size_t>((n_tokens + kKvBlockTokens - 1) / kKvBlockTokens);
  while (s.blocks.size() > keep) {
    release_block(s.blocks.back());
    s.blocks.pop_back();
  }
  s.n_tokens = s.reserved = n_tokens;
  // The chain keeps the full blocks only; a kept keyed block partly filled stays keyed (its
  // content is intact) until reserve() writes into it.
  const auto full = static_cast<size_t>(n_tokens) / kBlock;
  if (full <= s.links.size()) {
    s.links.erase(s.links.begin() + static_cast<std::ptrdiff_t>(full), s.links.end());
    s.chain_broken = false;  // the block it broke at is no longer full
  }
}

bool KvCache::contains(SeqId seq) const noexcept {
  return seq >= 0 && static_cast<size_t>(seq) < sequences_.size() && sequences_[static_cast<size_t>(seq)].live;
}

KvSeq KvCache::view(SeqId seq) const {
  const Sequence& s = sequence(seq);
  return {s.blocks, s.n_tokens};
}

void* KvCache::pool(const std::vector<AlignedBuffer>& host, const std::vector<std::shared_ptr<void>>& device,
                    int32_t layer) const {
  if (layer < first_device_layer_) return const_cast<std::byte*>(host[static_cast<size_t>(layer)].data());
  return device[static_cast<size_t>(layer - first_device_layer_)].get();
}

PagedKvView KvCache::layer(int32_t layer) const {
  EMBER_CHECK(layer >= 0 && layer < n_layer_);
  return {.n_head_kv = k_layout_.n_head_kv,
          .head_dim = k_layout_.head_dim,
          .k_dtype = k_layout_.dtype,
          .v_dtype = v_layout_.dtype,
          .k = pool(k_pools_, device_k_pools_, layer),
          .v = values_in_keys_ ? pool(k_pools_, device_k_pools_, layer) : pool(v_pools_, device_v_pools_, layer),
          .n_blocks = n_blocks()};
}

}  // namespace ember
