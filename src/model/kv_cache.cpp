// KvCache: a free-list block allocator with reference counts, per-sequence block tables, and
// copy-on-write of a shared block before a sequence writes into it.
#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "ember/error.h"

namespace ember {

KvCache::KvCache(const ModelConfig& config, const KvCacheOptions& options)
    : n_layer_(config.n_layer),
      k_layout_{config.n_head_kv, config.head_dim, options.k_dtype},
      v_layout_{config.n_head_kv, config.head_dim_v, options.v_dtype} {
  if (config.head_dim_v != config.head_dim) {
    fail(ErrorCode::kUnsupported, "KV cache: key and value head sizes differ ({} and {}); not supported yet",
         config.head_dim, config.head_dim_v);
  }
  if (options.n_blocks <= 0)
    fail(ErrorCode::kInvalidArgument, "KV cache: {} blocks (need at least one)", options.n_blocks);
  for (DType t : {options.k_dtype, options.v_dtype}) {
    if (t != DType::kF32 && t != DType::kF16) {
      fail(ErrorCode::kInvalidArgument, "KV cache: type {} is not supported (f16, f32)", dtype_name(t));
    }
  }
  const auto n = static_cast<size_t>(options.n_blocks);
  for (const KvLayout* layout : {&k_layout_, &v_layout_}) {
    if (layout->block_bytes() == 0 || n > std::numeric_limits<size_t>::max() / layout->block_bytes()) {
      fail(ErrorCode::kInvalidArgument, "KV cache: {} blocks of {} bytes overflow", n, layout->block_bytes());
    }
  }
  for (int32_t l = 0; l < n_layer_; ++l) {
    k_pools_.emplace_back(n * k_layout_.block_bytes());
    v_pools_.emplace_back(n * v_layout_.block_bytes());
  }
  ref_counts_.assign(n, 0);
  free_.reserve(n);
  for (int32_t b = options.n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out 0, 1, 2, ... first
}

size_t KvCache::bytes() const noexcept {
  return static_cast<size_t>(n_layer_) * ref_counts_.size() * (k_layout_.block_bytes() + v_layout_.block_bytes());
}

KvCache::Sequence& KvCache::sequence(SeqId seq) {
  EMBER_CHECK_MSG(seq >= 0 && static_cast<size_t>(seq) < sequences_.size() && sequences_[static_cast<size_t>(seq)].live,
                  "KV cache: no such sequence");
  return sequences_[static_cast<size_t>(seq)];
}

const KvCache::Sequence& KvCache::sequence(SeqId seq) const { return const_cast<KvCache*>(this)->sequence(seq); }

int32_t KvCache::take_block() {
  EMBER_CHECK(!free_.empty());
  const int32_t block = free_.back();
  free_.pop_back();
  ref_counts_[static_cast<size_t>(block)] = 1;
  return block;
}

void KvCache::release_block(int32_t block) {
  int32_t& count = ref_counts_[static_cast<size_t>(block)];
  EMBER_CHECK(count > 0);
  if (--count == 0) free_.push_back(block);
}

void KvCache::copy_block(int32_t from, int32_t to) {
  for (int32_t l = 0; l < n_layer_; ++l) {
    std::byte* k = k_pools_[static_cast<size_t>(l)].data();
    std::byte* v = v_pools_[static_cast<size_t>(l)].data();
    std::memcpy(k + k_layout_.offset(to, 0, 0), k + k_layout_.offset(from, 0, 0), k_layout_.block_bytes());
    std::memcpy(v + v_layout_.offset(to, 0, 0), v + v_layout_.offset(from, 0, 0), v_layout_.block_bytes());
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
  return static_cast<SeqId>(i);
}

void KvCache::remove_sequence(SeqId seq) {
  Sequence& s = sequence(seq);
  for (int32_t block : s.blocks) release_block(block);
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
  return id;
}

int32_t KvCache::n_tokens(SeqId seq) const { return sequence(seq).n_tokens; }

// What reserve(seq, n_new) takes: the blocks the sequence must hold, and whether its partly filled
// last block is shared and must be copied before the next write lands in it.
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
  if (fresh == std::numeric_limits<int32_t>::max() || static_cast<size_t>(fresh) > free_.size()) return false;
  const Growth g = growth(seq, n_new);
  Sequence& s = sequence(seq);
  if (g.copy_last) {
    const int32_t copy = take_block();
    copy_block(s.blocks.back(), copy);
    release_block(s.blocks.back());
    s.blocks.back() = copy;
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
}

bool KvCache::contains(SeqId seq) const noexcept {
  return seq >= 0 && static_cast<size_t>(seq) < sequences_.size() && sequences_[static_cast<size_t>(seq)].live;
}

KvSeq KvCache::view(SeqId seq) const {
  const Sequence& s = sequence(seq);
  return {s.blocks, s.n_tokens};
}

PagedKvView KvCache::layer(int32_t layer) const {
  EMBER_CHECK(layer >= 0 && layer < n_layer_);
  return {.n_head_kv = k_layout_.n_head_kv,
          .head_dim = k_layout_.head_dim,
          .k_dtype = k_layout_.dtype,
          .v_dtype = v_layout_.dtype,
          .k = const_cast<std::byte*>(k_pools_[static_cast<size_t>(layer)].data()),
          .v = const_cast<std::byte*>(v_pools_[static_cast<size_t>(layer)].data()),
          .n_blocks = n_blocks()};
}

}  // namespace ember
