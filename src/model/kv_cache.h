// KvCache: the paged KV cache's memory and bookkeeping (DESIGN.md §6). Per layer a K and a V pool
// of fixed 16-token blocks (cpu/kv_layout.h); each sequence a block table into them. Blocks are
// ref-counted so sequences can share a prefix (fork), and a shared block is copied before a
// sequence writes into it. Sequences grow by reserve + commit and shrink by truncate (speculative
// rollback, prompt reuse). Automatic prefix caching: full blocks are keyed by a hash chain of their
// tokens, stay cached (LRU) once released, and a new sequence adopts the longest cached prefix.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "cpu/kv_layout.h"
#include "model/model_config.h"

namespace ember {

// Where the pools of the layers a GPU runs live (hybrid offload): the CUDA backend allocates them in
// device memory and copies blocks there (on the stream its kernels run on, so a copy-on-write copy
// is ordered before the step that writes the block).
class KvPoolMemory {
 public:
  virtual ~KvPoolMemory() = default;
  // `bytes` of pool memory, freed when the last owner lets go. Throws Error(kOutOfMemory).
  virtual std::shared_ptr<void> allocate(size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
};

struct KvCacheOptions {
  int32_t n_blocks = 0;  // per layer; 16 tokens each, shared by all sequences
  DType k_dtype = DType::kF16;
  DType v_dtype = DType::kF16;
  // Layers [first_device_layer, n_layer) keep their pools in `device` memory (nullptr: every pool
  // in host memory). Model::kv_options sets both for a model with GPU layers.
  int32_t first_device_layer = 0;
  std::shared_ptr<KvPoolMemory> device = nullptr;
};

// Throws unless the cache can hold K and V of these types for this model: Error(kInvalidArgument)
// for a type other than F16, F32 and Q8_0, Error(kUnsupported) for Q8_0 when head_dim is not a
// multiple of 32 (a Q8_0 block is 32 values of one head).
void check_kv_dtypes(const ModelConfig& config, DType k_dtype, DType v_dtype);
// The cache types by name, any case ("f16", "F32", "q8_0"; --kv-type, ember_load_params.kv_type);
// nullopt for another name.
std::optional<DType> kv_type_from_name(std::string_view name) noexcept;

using SeqId = int32_t;

// Block counts by state; total = used + cached + free.
struct KvCacheStats {
  int32_t total = 0;
  int32_t used = 0;    // held by a sequence (ref > 0)
  int32_t cached = 0;  // held by none but keyed: reusable by a prefix match until evicted (LRU)
  int32_t free = 0;    // held by none, not keyed
  bool operator==(const KvCacheStats&) const = default;
};

class KvCache {
 public:
  // Allocates n_layer K and V pools (K only for latent attention, whose values are the key rows:
  // then K and V must have one type). Throws Error(kInvalidArgument) for an impossible size (no
  // blocks, a type the kernels do not store, bytes overflowing), Error(kUnsupported) for Q8_0 pools
  // of a head size that is not a multiple of 32, and Error(kOutOfMemory).
  KvCache(const ModelConfig& config, const KvCacheOptions& options);

  int32_t n_blocks() const noexcept { return static_cast<int32_t>(ref_counts_.size()); }
  // What reserve() can take: free blocks plus cached ones (evicted on demand).
  int32_t free_blocks() const noexcept { return static_cast<int32_t>(free_.size()) + lru_size_; }
  KvCacheStats stats() const noexcept;
  size_t bytes() const noexcept;
  DType k_dtype() const noexcept { return k_layout_.dtype; }
  DType v_dtype() const noexcept { return v_layout_.dtype; }

  // A new, empty sequence.
  SeqId add_sequence();
  // Forgets a sequence; its blocks return to the pool once no other sequence holds them (keyed
  // ones to the cache).
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
  // Keeps the first n_tokens positions; whole blocks past them return to the pool (keyed ones to
  // the cache). A keyed block kept partly filled keeps its content until the sequence writes.
  void truncate(SeqId seq, int32_t n_tokens);

  // Prefix caching. A full block's key is hash(key of the block before it, its 16 tokens); a
  // keyed block also stores its tokens and the exact keyed block before it, both compared on
  // lookup, so a 64-bit hash collision can never reuse the wrong K/V. A keyed block is never
  // written again (a sole owner that writes into it unkeys it first; a shared one is copied).
  // Released keyed blocks stay cached (LRU) until take_block() needs them.

  // Length of the longest cached prefix of `tokens` made of full blocks, at most max_tokens
  // (pass tokens.size() - 1 so the last prompt token is still computed). 0 when caching is off.
  int32_t match_prefix(std::span<const int32_t> tokens, int32_t max_tokens) const;
  // A new sequence holding that prefix's cached blocks (shared, taken off the LRU); its length,
  // also stored in *n_matched when not null, is the match length (maybe 0).
  SeqId add_sequence(std::span<const int32_t> tokens, int32_t max_tokens, int32_t* n_matched);
  // Keys the blocks of `seq` that are full and not keyed yet; `tokens` holds at least
  // n_tokens(seq) tokens, the sequence's (the rest are ignored). Call after each step; cheap when
  // no block filled. A block whose key another block already owns stays unkeyed.
  void cache_full_blocks(SeqId seq, std::span<const int32_t> tokens);
  // Off: nothing is keyed or matched, and what was cached is dropped. On by default.
  void set_prefix_caching(bool on);
  bool prefix_caching() const noexcept { return caching_; }

  // Tests only: replaces the block hash (to force collisions). Call before any block is keyed.
  using BlockHash = uint64_t (*)(uint64_t parent_key, std::span<const int32_t> block_tokens);
  void set_block_hash_for_testing(BlockHash hash);

  // What the kernels read: a sequence's block table and length, a layer's pools.
  KvSeq view(SeqId seq) const;
  // Layers from here on keep their pools in device memory (n_layer: none).
  int32_t first_device_layer() const noexcept { return first_device_layer_; }
  // Pools of layers >= first_device_layer() are device memory.
  PagedKvView layer(int32_t layer) const;

 private:
  void* pool(const std::vector<AlignedBuffer>& host, const std::vector<std::shared_ptr<void>>& device,
             int32_t layer) const;
  // One keyed block, exactly: a block id's generation changes whenever it is unkeyed.
  struct Instance {
    int32_t block = -1;  // -1: the root, before block 0
    uint32_t generation = 0;
    bool operator==(const Instance&) const = default;
  };
  // A sequence's chain entry for one full block: its key and the keyed block holding that
  // content (its own block, or an identical one another sequence keyed first).
  struct Link {
    uint64_t key;
    Instance holder;
  };
  struct Sequence {
    bool live = false;
    int32_t n_tokens = 0;
    int32_t reserved = 0;  // positions made writable, >= n_tokens
    std::vector<int32_t> blocks;
    std::vector<Link> links;    // the first links.size() full blocks are published
    bool chain_broken = false;  // block links.size() cannot be keyed (collision): publish no more
  };
  // Per block, for prefix caching.
  struct BlockInfo {
    bool keyed = false;
    uint32_t generation = 0;
    uint64_t key = 0;
    Instance parent;  // the keyed block before this one
    int32_t lru_prev = -1, lru_next = -1;
    std::array<int32_t, kKvBlockTokens> tokens{};
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
  template <typename F>
  int32_t match_blocks(std::span<const int32_t> tokens, int32_t max_tokens, F&& on_block) const;
  Instance instance(int32_t block) const noexcept;
  bool holds(const Instance& i) const noexcept;
  void unkey(int32_t block);
  void lru_push_back(int32_t block);
  void lru_remove(int32_t block);

  int32_t n_layer_;
  KvLayout k_layout_, v_layout_;
  // Latent attention (MlaConfig): a token's value row is its key row, so the V pools are the K
  // pools (half the memory; the kernels read values from the keys' memory).
  bool values_in_keys_ = false;
  std::vector<AlignedBuffer> k_pools_, v_pools_;  // the host layers' pools, [first_device_layer_]
  int32_t first_device_layer_ = 0;                // == n_layer_ when every pool is on the host
  std::shared_ptr<KvPoolMemory> device_;
  std::vector<std::shared_ptr<void>> device_k_pools_, device_v_pools_;  // layers [first_device_layer_, n_layer_)
  std::vector<int32_t> ref_counts_;                                     // per block
  std::vector<int32_t> free_;                                           // free block ids (a stack)
  std::vector<Sequence> sequences_;                                     // by SeqId; ids of removed ones are reused
  // Prefix caching: keyed blocks by key, and the keyed blocks no sequence holds, least recently
  // released first (evicted from the head when the free stack is empty).
  bool caching_ = true;
  BlockHash hash_;
  std::vector<BlockInfo> info_;  // per block
  std::unordered_map<uint64_t, int32_t> index_;
  int32_t lru_head_ = -1, lru_tail_ = -1, lru_size_ = 0;
};

}  // namespace ember
