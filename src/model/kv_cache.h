// KvCache: the paged KV cache's memory and bookkeeping (DESIGN.md §6). Per layer a K and a V pool
// of fixed 16-token blocks (cpu/kv_layout.h); each sequence a block table into them. Blocks are
// ref-counted so sequences can share a prefix (fork), and a shared block is copied before a
// sequence writes into it. Sequences grow by reserve + commit and shrink by truncate (speculative
// rollback, prompt reuse). Prefix hashing and eviction come with the scheduler.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "cpu/kv_layout.h"
#include "model/model_config.h"

namespace ember {

struct KvCacheOptions {
  int32_t n_blocks = 0;  // per layer; 16 tokens each, shared by all sequences
  DType k_dtype = DType::kF16;
  DType v_dtype = DType::kF16;
};

using SeqId = int32_t;

class KvCache {
 public:
  // Allocates n_layer K and V pools. Throws Error(kInvalidArgument) for an impossible size (no
  // blocks, a type the kernels do not store, bytes overflowing) and Error(kOutOfMemory).
  KvCache(const ModelConfig& config, const KvCacheOptions& options);

  int32_t n_blocks() const noexcept { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t free_blocks() const noexcept { return static_cast<int32_t>(free_.size()); }
  size_t bytes() const noexcept;

  // A new, empty sequence.
  SeqId add_sequence();
  // Forgets a sequence; its blocks return to the free list once no other sequence holds them.
  void remove_sequence(SeqId seq);
  // A new sequence holding the first n_tokens of `from` (n_tokens <= its length) by sharing its
  // blocks: no copy until one of the two writes into a shared block.
  SeqId fork(SeqId from, int32_t n_tokens);

  // Whether `seq` is a live sequence of this cache.
  bool contains(SeqId seq) const noexcept;
  int32_t n_tokens(SeqId seq) const;
  // Makes positions [n_tokens, n_tokens + n_new) writable: allocates blocks, and copies a shared
  // last block first (copy-on-write). Returns false, changing nothing, when the free blocks do
  // not suffice.
  bool reserve(SeqId seq, int32_t n_new);
  // The free blocks reserve(seq, n_new) would take (new blocks plus a copy-on-write copy);
  // INT32_MAX when the sequence cannot grow that far.
  int32_t blocks_to_reserve(SeqId seq, int32_t n_new) const;
  // Marks n_new reserved positions as holding K/V (after store_kv).
  void commit(SeqId seq, int32_t n_new);
  // Keeps the first n_tokens positions; whole blocks past them return to the pool.
  void truncate(SeqId seq, int32_t n_tokens);

  // What the kernels read: a sequence's block table and length, a layer's pools.
  KvSeq view(SeqId seq) const;
  PagedKvView layer(int32_t layer) const;

 private:
  struct Sequence {
    bool live = false;
    int32_t n_tokens = 0;
    int32_t reserved = 0;  // positions made writable, >= n_tokens
    std::vector<int32_t> blocks;
  };
  struct Growth {
    size_t blocks;   // blocks the sequence holds once grown
    bool copy_last;  // its shared, partly filled last block is copied first
    bool possible;   // false: positions would pass INT32_MAX
  };
  Growth growth(SeqId seq, int32_t n_new) const;
  Sequence& sequence(SeqId seq);
  const Sequence& sequence(SeqId seq) const;
  int32_t take_block();
  void release_block(int32_t block);
  void copy_block(int32_t from, int32_t to);

  int32_t n_layer_;
  KvLayout k_layout_, v_layout_;
  std::vector<AlignedBuffer> k_pools_, v_pools_;  // one per layer
  std::vector<int32_t> ref_counts_;               // per block
  std::vector<int32_t> free_;                     // free block ids (a stack)
  std::vector<Sequence> sequences_;               // by SeqId; ids of removed ones are reused
};

}  // namespace ember
