// KvCache: block accounting for growth, truncation, removal and forks; copy-on-write of a shared
// block keeps both sequences' data; running out of blocks changes nothing; prefix caching (match,
// adoption, publishing, LRU eviction, immutability of cached blocks, collisions).
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ember/error.h"

namespace ember {

// For gtest's failure messages.
std::ostream& operator<<(std::ostream& os, const KvCacheStats& s) {
  return os << "{total " << s.total << ", used " << s.used << ", cached " << s.cached << ", free " << s.free << "}";
}

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = c.head_dim_v = 8;
  return c;
}

// The first float of K at (layer, kv head 1, position) of a sequence, for reading and writing.
float* k_slot(const KvCache& cache, SeqId seq, int32_t layer, int32_t pos) {
  const PagedKvView view = cache.layer(layer);
  const KvSeq s = cache.view(seq);
  const int32_t block = s.block_table[static_cast<size_t>(pos / kKvBlockTokens)];
  return reinterpret_cast<float*>(static_cast<std::byte*>(view.k) +
                                  view.k_layout().offset(block, 1, pos % kKvBlockTokens));
}

float* v_slot(const KvCache& cache, SeqId seq, int32_t layer, int32_t pos) {
  const PagedKvView view = cache.layer(layer);
  const KvSeq s = cache.view(seq);
  const int32_t block = s.block_table[static_cast<size_t>(pos / kKvBlockTokens)];
  return reinterpret_cast<float*>(static_cast<std::byte*>(view.v) +
                                  view.v_layout().offset(block, 1, pos % kKvBlockTokens));
}

// Random non-zero token ids.
std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(1, 32000);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = id(rng);
  return tokens;
}

// K/V values that identify (layer, position, tag), as a forward pass would store them.
float kv_value(int32_t layer, int32_t pos, float tag) { return tag + static_cast<float>(1000 * layer + pos); }

// A new sequence that computes `tokens` (writing K = kv_value(tag), V = -K), then publishes them.
SeqId prefill(KvCache& cache, std::span<const int32_t> tokens, float tag = 0.0f) {
  const SeqId seq = cache.add_sequence();
  const auto n = static_cast<int32_t>(tokens.size());
  EXPECT_TRUE(cache.reserve(seq, n));
  for (int32_t pos = 0; pos < n; ++pos) {
    for (int32_t layer = 0; layer < 2; ++layer) {
      *k_slot(cache, seq, layer, pos) = kv_value(layer, pos, tag);
      *v_slot(cache, seq, layer, pos) = -kv_value(layer, pos, tag);
    }
  }
  cache.commit(seq, n);
  cache.cache_full_blocks(seq, tokens);
  return seq;
}

int32_t match_all(const KvCache& cache, std::span<const int32_t> tokens) {
  return cache.match_prefix(tokens, static_cast<int32_t>(tokens.size()));
}

// Host pools of F32 blocks.
KvCacheOptions f32_blocks(int32_t n_blocks) {
  KvCacheOptions o;
  o.n_blocks = n_blocks;
  o.k_dtype = DType::kF32;
  o.v_dtype = DType::kF32;
  return o;
}
const KvCacheOptions kF32 = f32_blocks(8);

TEST(KvCache, GrowsTruncatesAndFreesBlocks) {
  KvCache cache(small_config(), f32_blocks(8));
  EXPECT_EQ(cache.free_blocks(), 8);
  EXPECT_EQ(cache.bytes(), size_t{2} * 8 * 2 * (2 * 16 * 8 * 4));  // layers × blocks × (K + V)
  const SeqId a = cache.add_sequence();
  ASSERT_TRUE(cache.reserve(a, 20));  // 2 blocks
  cache.commit(a, 20);
  EXPECT_EQ(cache.n_tokens(a), 20);
  EXPECT_EQ(cache.free_blocks(), 6);
  EXPECT_EQ(cache.view(a).block_table.size(), 2u);
  ASSERT_TRUE(cache.reserve(a, 12));  // 32 tokens: still 2 blocks
  cache.commit(a, 12);
  EXPECT_EQ(cache.free_blocks(), 6);
  cache.truncate(a, 17);  // speculative rollback: 2 blocks still hold tokens
  EXPECT_EQ(cache.free_blocks(), 6);
  cache.truncate(a, 16);
  EXPECT_EQ(cache.free_blocks(), 7);
  cache.truncate(a, 0);
  EXPECT_EQ(cache.free_blocks(), 8);
  // Out of blocks: nothing changes.
  EXPECT_FALSE(cache.reserve(a, 8 * 16 + 1));
  EXPECT_EQ(cache.free_blocks(), 8);
  EXPECT_EQ(cache.n_tokens(a), 0);
  ASSERT_TRUE(cache.reserve(a, 8 * 16));
  EXPECT_EQ(cache.free_blocks(), 0);
  cache.remove_sequence(a);
  EXPECT_EQ(cache.free_blocks(), 8);
}

TEST(KvCache, ForksShareBlocksAndCopyBeforeWriting) {
  KvCache cache(small_config(), f32_blocks(6));
  const SeqId a = cache.add_sequence();
  ASSERT_TRUE(cache.reserve(a, 20));
  for (int32_t pos = 0; pos < 20; ++pos) {
    for (int32_t layer = 0; layer < 2; ++layer) *k_slot(cache, a, layer, pos) = static_cast<float>(100 * layer + pos);
  }
  cache.commit(a, 20);
  EXPECT_EQ(cache.free_blocks(), 4);

  const SeqId b = cache.fork(a, 18);  // shares both blocks; the second is partly filled
  EXPECT_EQ(cache.free_blocks(), 4);
  EXPECT_EQ(cache.n_tokens(b), 18);
  EXPECT_EQ(cache.view(b).block_table[1], cache.view(a).block_table[1]);

  // b writes position 18, inside the shared block: it gets its own copy first.
  ASSERT_TRUE(cache.reserve(b, 1));
  EXPECT_EQ(cache.free_blocks(), 3);
  EXPECT_NE(cache.view(b).block_table[1], cache.view(a).block_table[1]);
  EXPECT_EQ(cache.view(b).block_table[0], cache.view(a).block_table[0]);  // the full block stays shared
  *k_slot(cache, b, 1, 18) = -1.0f;
  cache.commit(b, 1);
  for (int32_t pos = 0; pos < 18; ++pos) EXPECT_EQ(*k_slot(cache, b, 1, pos), 100.0f + pos) << pos;  // copied
  EXPECT_EQ(*k_slot(cache, a, 1, 18), 118.0f);  // a's data untouched
  EXPECT_EQ(*k_slot(cache, b, 1, 18), -1.0f);

  // Removing a frees only what b does not hold.
  cache.remove_sequence(a);
  EXPECT_EQ(cache.free_blocks(), 4);
  cache.remove_sequence(b);
  EXPECT_EQ(cache.free_blocks(), 6);
  // Removed ids are reused.
  EXPECT_EQ(cache.add_sequence(), a);
}

TEST(KvCache, ForkingAtABlockBoundaryCopiesNothing) {
  KvCache cache(small_config(), {.n_blocks = 4});
  const SeqId a = cache.add_sequence();
  ASSERT_TRUE(cache.reserve(a, 32));
  cache.commit(a, 32);
  const SeqId b = cache.fork(a, 16);
  EXPECT_EQ(cache.view(b).block_table.size(), 1u);
  ASSERT_TRUE(cache.reserve(b, 4));  // a fresh block, no copy
  EXPECT_EQ(cache.free_blocks(), 1);
  // A fork of nothing is an empty sequence.
  const SeqId c = cache.fork(a, 0);
  EXPECT_EQ(cache.n_tokens(c), 0);
  EXPECT_TRUE(cache.view(c).block_table.empty());
}

TEST(KvCache, ImpossibleSizesAreErrors) {
  EXPECT_THROW(KvCache(small_config(), {.n_blocks = 0}), Error);
  EXPECT_THROW(KvCache(small_config(), {.n_blocks = 4, .k_dtype = DType::kQ4_K}), Error);
  ModelConfig mla = small_config();
  mla.head_dim_v = 16;
  EXPECT_THROW(KvCache(mla, {.n_blocks = 4}), Error);
}

// Latent attention: the value rows are the key rows, so there are K pools only, each layer's V view
// is its K pool, K and V must share a type, and a copy-on-write copies the one pool.
TEST(KvCache, LatentAttentionKeepsValuesInTheKeyRows) {
  ModelConfig mla = small_config();
  mla.n_head_kv = 1;
  mla.mla.kv_lora_rank = 4;  // (rows of 4 + 4 rope values)
  const KvCache plain(small_config(), f32_blocks(6));
  KvCache cache(mla, f32_blocks(6));
  const KvLayout row{1, 8, DType::kF32};
  EXPECT_EQ(cache.bytes(), size_t{2} * 6 * row.block_bytes());
  EXPECT_EQ(cache.layer(1).v, cache.layer(1).k);
  EXPECT_NE(cache.layer(0).k, cache.layer(1).k);
  EXPECT_NE(plain.layer(1).v, plain.layer(1).k);
  EXPECT_THROW(KvCache(mla, {.n_blocks = 4, .k_dtype = DType::kF16, .v_dtype = DType::kF32}), Error);

  const SeqId a = cache.add_sequence();
  ASSERT_TRUE(cache.reserve(a, 20));
  const auto slot = [&](SeqId seq, int32_t layer, int32_t pos) {
    const PagedKvView view = cache.layer(layer);
    const int32_t block = cache.view(seq).block_table[static_cast<size_t>(pos / kKvBlockTokens)];
    return reinterpret_cast<float*>(static_cast<std::byte*>(view.k) +
                                    view.k_layout().offset(block, 0, pos % kKvBlockTokens));
  };
  for (int32_t pos = 0; pos < 20; ++pos) *slot(a, 1, pos) = kv_value(1, pos, 0.5f);
  cache.commit(a, 20);
  const SeqId b = cache.fork(a, 18);
  ASSERT_TRUE(cache.reserve(b, 1));  // copies the shared, partly filled block
  EXPECT_NE(cache.view(b).block_table[1], cache.view(a).block_table[1]);
  for (int32_t pos = 16; pos < 18; ++pos) EXPECT_EQ(*slot(b, 1, pos), kv_value(1, pos, 0.5f)) << pos;
}

TEST(KvCachePrefix, MatchesTheLongestCachedFullBlockPrefix) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> tokens = random_tokens(3 * 16 + 5, 1);
  const SeqId a = prefill(cache, tokens);
  const auto len = static_cast<int32_t>(tokens.size());
  EXPECT_EQ(cache.match_prefix(tokens, len - 1), 48);  // the partial 4th block is not cached
  EXPECT_EQ(cache.match_prefix(tokens, 47), 32);       // capped to full blocks below max_tokens
  EXPECT_EQ(cache.match_prefix(tokens, 20), 16);
  EXPECT_EQ(cache.match_prefix(tokens, 0), 0);
  EXPECT_EQ(cache.match_prefix(tokens, -1), 0);
  EXPECT_EQ(cache.match_prefix({}, 100), 0);
  // A prompt that is exactly the cached blocks never matches whole: its last token is computed.
  const std::span<const int32_t> three_blocks(tokens.data(), 48);
  EXPECT_EQ(cache.match_prefix(three_blocks, 47), 32);
  EXPECT_EQ(cache.match_prefix(std::span(tokens.data(), 40), 39), 32);
  // A different token in block 2 keeps block 1 only; in block 1, nothing.
  std::vector<int32_t> other = tokens;
  other[20] += 1;
  EXPECT_EQ(cache.match_prefix(other, len - 1), 16);
  other[3] += 1;
  EXPECT_EQ(cache.match_prefix(other, len - 1), 0);
  // Matching has no side effects.
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 4, .cached = 0, .free = 4}));
  cache.remove_sequence(a);
  EXPECT_EQ(cache.match_prefix(tokens, len - 1), 48);  // released keyed blocks stay cached
}

TEST(KvCachePrefix, PublishesBlocksAsTheyFill) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> tokens = random_tokens(40, 2);
  const SeqId a = cache.add_sequence();
  // Prefill 10 tokens, then decode one at a time, publishing after every step as the engine does.
  ASSERT_TRUE(cache.reserve(a, 10));
  cache.commit(a, 10);
  cache.cache_full_blocks(a, std::span(tokens.data(), 10));
  EXPECT_EQ(match_all(cache, tokens), 0);
  for (int32_t n = 11; n <= 40; ++n) {
    ASSERT_TRUE(cache.reserve(a, 1));
    cache.commit(a, 1);
    cache.cache_full_blocks(a, tokens);  // more tokens than the sequence holds: the rest is ignored
    EXPECT_EQ(match_all(cache, tokens), n / 16 * 16) << n;
  }
  EXPECT_EQ(cache.stats().used, 3);
}

TEST(KvCachePrefix, IdenticalBlocksUnderDifferentParentsDoNotMatch) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> x = random_tokens(16, 3), y = random_tokens(16, 4), z = random_tokens(16, 5);
  std::vector<int32_t> xy = x, zy = z;
  xy.insert(xy.end(), y.begin(), y.end());
  zy.insert(zy.end(), y.begin(), y.end());
  prefill(cache, xy);
  EXPECT_EQ(match_all(cache, xy), 32);
  EXPECT_EQ(match_all(cache, zy), 0);
  EXPECT_EQ(match_all(cache, y), 0);  // y's block exists, but not at the root
  prefill(cache, zy);
  EXPECT_EQ(match_all(cache, zy), 32);
  EXPECT_EQ(match_all(cache, xy), 32);
  EXPECT_EQ(cache.stats().used, 4);  // same tokens, different prefixes: different K/V, two blocks
}

// A weak hash: the parent key and the first token only, so blocks that differ elsewhere collide.
uint64_t weak_hash(uint64_t parent_key, std::span<const int32_t> block_tokens) {
  return parent_key * 31 + static_cast<uint64_t>(block_tokens[0]);
}

TEST(KvCachePrefix, HashCollisionsNeverReuseTheWrongBlocks) {
  KvCache cache(small_config(), kF32);
  cache.set_block_hash_for_testing(weak_hash);
  std::vector<int32_t> tokens = random_tokens(32, 6);
  std::vector<int32_t> collides = tokens;  // the same keys, other tokens in block 1
  collides[5] += 1;
  const SeqId a = prefill(cache, tokens);
  EXPECT_EQ(match_all(cache, tokens), 32);
  EXPECT_EQ(match_all(cache, collides), 0);  // key found, tokens differ

  // A colliding block 1 is not keyed (its key is taken), so its sequence publishes no more.
  const SeqId b = prefill(cache, collides, 7.0f);
  EXPECT_EQ(match_all(cache, collides), 0);
  EXPECT_EQ(cache.stats().used, 4);
  cache.remove_sequence(b);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 2, .cached = 0, .free = 6}));  // b's were unkeyed

  // An orphan: a's block 2 stays cached while its parent, block 1, is rewritten (unkeyed).
  cache.truncate(a, 8);              // block 2 to the LRU; block 1 kept, partly
  ASSERT_TRUE(cache.reserve(a, 1));  // writing into it unkeys it
  EXPECT_EQ(match_all(cache, tokens), 0);
  EXPECT_EQ(cache.stats().cached, 1);
  // A new block 1 with the old key (a collision) and a's block 2 tokens: the cached block 2 has
  // the right key, tokens and parent key, but chains from the old block 1, so it must not match.
  const SeqId c = prefill(cache, collides, 9.0f);
  std::vector<int32_t> query = collides;
  query.push_back(1);
  EXPECT_EQ(cache.match_prefix(query, 32), 16);
  cache.remove_sequence(c);
  EXPECT_EQ(cache.match_prefix(query, 32), 16);
}

TEST(KvCachePrefix, EvictsReleasedBlocksLeastRecentlyReleasedFirst) {
  KvCache cache(small_config(), f32_blocks(6));
  const std::vector<int32_t> ta = random_tokens(32, 8), tb = random_tokens(32, 9);
  const SeqId a = prefill(cache, ta), b = prefill(cache, tb);
  cache.remove_sequence(a);  // its last block is released first: the LRU evicts a prefix's tail first
  cache.remove_sequence(b);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 0, .cached = 4, .free = 2}));
  EXPECT_EQ(cache.free_blocks(), 6);

  const SeqId c = cache.add_sequence();
  ASSERT_TRUE(cache.reserve(c, 32));  // the two free blocks
  cache.commit(c, 32);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 2, .cached = 4, .free = 0}));
  const int32_t evicted[] = {16, 0};
  for (int32_t i = 0; i < 2; ++i) {  // a's blocks, tail first
    ASSERT_TRUE(cache.reserve(c, 16));
    cache.commit(c, 16);
    EXPECT_EQ(match_all(cache, ta), evicted[i]);
    EXPECT_EQ(match_all(cache, tb), 32);
  }
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 4, .cached = 2, .free = 0}));
  // Adopting b's blocks takes them off the LRU: nothing is left to evict.
  int32_t matched = -1;
  const SeqId d = cache.add_sequence(tb, 31, &matched);
  EXPECT_EQ(matched, 16);
  EXPECT_EQ(cache.n_tokens(d), 16);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 5, .cached = 1, .free = 0}));
  EXPECT_EQ(cache.blocks_to_reserve(c, 32), 2);
  EXPECT_FALSE(cache.reserve(c, 32));  // changes nothing
  EXPECT_EQ(match_all(cache, tb), 32);
  ASSERT_TRUE(cache.reserve(c, 16));  // evicts b's block 2
  EXPECT_EQ(match_all(cache, tb), 16);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 6, .cached = 0, .free = 0}));
  cache.remove_sequence(c);
  cache.remove_sequence(d);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 6, .used = 0, .cached = 1, .free = 5}));
}

TEST(KvCachePrefix, AdoptedBlocksHoldTheWrittenKV) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> tokens = random_tokens(40, 10);
  const SeqId a = prefill(cache, tokens, 0.5f);
  const std::vector<int32_t> a_blocks(cache.view(a).block_table.begin(), cache.view(a).block_table.end());
  cache.remove_sequence(a);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 0, .cached = 2, .free = 6}));

  int32_t matched = -1;
  const SeqId b = cache.add_sequence(tokens, 39, &matched);
  EXPECT_EQ(matched, 32);
  EXPECT_EQ(cache.n_tokens(b), 32);
  ASSERT_EQ(cache.view(b).block_table.size(), 2u);
  EXPECT_EQ(cache.view(b).block_table[0], a_blocks[0]);
  EXPECT_EQ(cache.view(b).block_table[1], a_blocks[1]);
  for (int32_t layer = 0; layer < 2; ++layer) {
    for (int32_t pos = 0; pos < 32; ++pos) {
      EXPECT_EQ(*k_slot(cache, b, layer, pos), kv_value(layer, pos, 0.5f)) << layer << " " << pos;
      EXPECT_EQ(*v_slot(cache, b, layer, pos), -kv_value(layer, pos, 0.5f)) << layer << " " << pos;
    }
  }
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 2, .cached = 0, .free = 6}));
  // A second adopter shares them; growing takes a fresh block (no copy at a block boundary).
  const SeqId c = cache.add_sequence(tokens, 39, &matched);
  EXPECT_EQ(cache.view(c).block_table[1], a_blocks[1]);
  EXPECT_EQ(cache.blocks_to_reserve(c, 8), 1);
  // Nothing cached: an empty sequence, as add_sequence().
  const SeqId d = cache.add_sequence(random_tokens(40, 11), 39, &matched);
  EXPECT_EQ(matched, 0);
  EXPECT_EQ(cache.n_tokens(d), 0);
  EXPECT_EQ(cache.add_sequence(tokens, 39, nullptr), d + 1);
}

TEST(KvCachePrefix, ForksOfCachedBlocksCopyBeforeWriting) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> tokens = random_tokens(32, 12);
  const SeqId a = prefill(cache, tokens);
  const SeqId b = cache.fork(a, 24);  // shares both keyed blocks; the second partly
  EXPECT_EQ(cache.stats().used, 2);
  EXPECT_EQ(cache.blocks_to_reserve(b, 1), 1);
  ASSERT_TRUE(cache.reserve(b, 1));  // copy-on-write
  EXPECT_NE(cache.view(b).block_table[1], cache.view(a).block_table[1]);
  EXPECT_EQ(cache.view(b).block_table[0], cache.view(a).block_table[0]);
  *k_slot(cache, b, 1, 24) = -5.0f;
  cache.commit(b, 1);
  EXPECT_EQ(*k_slot(cache, a, 1, 24), kv_value(1, 24, 0.0f));
  EXPECT_EQ(match_all(cache, tokens), 32);
  // The fork publishes its own blocks once full; its first block is already keyed (shared).
  std::vector<int32_t> b_tokens(tokens.begin(), tokens.begin() + 24);
  b_tokens.push_back(77);
  ASSERT_TRUE(cache.reserve(b, 7));
  cache.commit(b, 7);
  b_tokens.resize(32, 78);
  cache.cache_full_blocks(b, b_tokens);
  EXPECT_EQ(match_all(cache, b_tokens), 32);
  EXPECT_EQ(match_all(cache, tokens), 32);

  // A fork left alone in a keyed block (its source removed) unkeys it before writing.
  const SeqId c = cache.fork(a, 24);
  cache.remove_sequence(a);
  EXPECT_EQ(cache.blocks_to_reserve(c, 1), 0);
  ASSERT_TRUE(cache.reserve(c, 1));
  EXPECT_EQ(match_all(cache, tokens), 16);
  *k_slot(cache, c, 1, 24) = -6.0f;
  cache.commit(c, 1);
  EXPECT_EQ(match_all(cache, b_tokens), 32);
}

TEST(KvCachePrefix, TruncatingIntoAKeyedBlockKeepsCachedContentIntact) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> tokens = random_tokens(48, 13);
  // Sole owner: the kept block stays matchable until the sequence writes into it, then is unkeyed.
  const SeqId a = prefill(cache, tokens);
  cache.truncate(a, 40);
  EXPECT_EQ(match_all(cache, tokens), 48);  // content intact
  EXPECT_EQ(cache.blocks_to_reserve(a, 1), 0);
  ASSERT_TRUE(cache.reserve(a, 8));
  EXPECT_EQ(match_all(cache, tokens), 32);  // its key is gone before the write
  std::vector<int32_t> rewritten = tokens;
  for (int32_t pos = 40; pos < 48; ++pos) {
    rewritten[static_cast<size_t>(pos)] = 5;
    *k_slot(cache, a, 0, pos) = -1.0f;
  }
  cache.commit(a, 8);
  cache.cache_full_blocks(a, rewritten);
  EXPECT_EQ(match_all(cache, tokens), 32);
  EXPECT_EQ(match_all(cache, rewritten), 48);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 3, .cached = 0, .free = 5}));

  // Shared: the writer copies, the cached block keeps its content.
  int32_t matched = 0;
  const SeqId b = cache.add_sequence(rewritten, 48, &matched);
  EXPECT_EQ(matched, 48);
  cache.truncate(b, 44);
  EXPECT_EQ(cache.blocks_to_reserve(b, 1), 1);
  ASSERT_TRUE(cache.reserve(b, 1));
  *k_slot(cache, b, 0, 44) = 123.0f;
  cache.commit(b, 1);
  EXPECT_EQ(*k_slot(cache, a, 0, 44), -1.0f);
  EXPECT_EQ(match_all(cache, rewritten), 48);
  // Truncating to a block boundary releases whole blocks; keyed ones stay cached.
  cache.remove_sequence(b);
  cache.truncate(a, 16);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 1, .cached = 2, .free = 5}));
  EXPECT_EQ(match_all(cache, rewritten), 48);
  // The chain was cut with the blocks: republishing the same content reuses the cached keys.
  ASSERT_TRUE(cache.reserve(a, 16));
  cache.commit(a, 16);
  cache.cache_full_blocks(a, rewritten);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 2, .cached = 2, .free = 4}));
  cache.remove_sequence(a);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 0, .cached = 3, .free = 5}));
}

TEST(KvCachePrefix, DuplicatesStayUnkeyedAndLaterBlocksStillChain) {
  KvCache cache(small_config(), kF32);
  const std::vector<int32_t> prefix = random_tokens(16, 14);
  std::vector<int32_t> ta = prefix, tb = prefix;
  const std::vector<int32_t> sa = random_tokens(16, 15), sb = random_tokens(16, 16);
  ta.insert(ta.end(), sa.begin(), sa.end());
  tb.insert(tb.end(), sb.begin(), sb.end());
  // Both compute the shared prefix before either publishes (concurrent prefill).
  const SeqId a = prefill(cache, ta), b = prefill(cache, tb);
  EXPECT_EQ(match_all(cache, ta), 32);
  EXPECT_EQ(match_all(cache, tb), 32);  // b's second block chains from a's first
  cache.remove_sequence(b);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 2, .cached = 1, .free = 5}));  // b's copy freed
  cache.remove_sequence(a);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 0, .cached = 3, .free = 5}));
}

TEST(KvCachePrefix, StatsFollowALifecycle) {
  KvCache cache(small_config(), {.n_blocks = 4});
  const std::vector<int32_t> tokens = random_tokens(40, 17);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 0, .cached = 0, .free = 4}));
  const SeqId a = prefill(cache, tokens);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 3, .cached = 0, .free = 1}));
  cache.remove_sequence(a);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 0, .cached = 2, .free = 2}));
  EXPECT_EQ(cache.free_blocks(), 4);
  int32_t matched = 0;
  const SeqId b = cache.add_sequence(tokens, 39, &matched);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 2, .cached = 0, .free = 2}));
  const SeqId c = cache.fork(b, 32);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 2, .cached = 0, .free = 2}));
  ASSERT_TRUE(cache.reserve(c, 32));
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 4, .cached = 0, .free = 0}));
  cache.remove_sequence(b);
  cache.remove_sequence(c);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 4, .used = 0, .cached = 2, .free = 2}));
}

TEST(KvCachePrefix, CachingCanBeTurnedOff) {
  KvCache cache(small_config(), kF32);
  EXPECT_TRUE(cache.prefix_caching());
  const std::vector<int32_t> tokens = random_tokens(40, 18);
  const SeqId a = prefill(cache, tokens);
  EXPECT_EQ(match_all(cache, tokens), 32);
  cache.set_prefix_caching(false);
  EXPECT_EQ(match_all(cache, tokens), 0);
  int32_t matched = -1;
  const SeqId b = cache.add_sequence(tokens, 39, &matched);
  EXPECT_EQ(matched, 0);
  cache.remove_sequence(b);
  cache.cache_full_blocks(a, tokens);  // keys nothing
  cache.remove_sequence(a);
  EXPECT_EQ(cache.stats(), (KvCacheStats{.total = 8, .used = 0, .cached = 0, .free = 8}));
  // On again: a sequence publishes from its first block.
  const SeqId c = prefill(cache, tokens);
  cache.set_prefix_caching(false);
  cache.set_prefix_caching(true);
  EXPECT_EQ(match_all(cache, tokens), 0);
  cache.cache_full_blocks(c, tokens);
  EXPECT_EQ(match_all(cache, tokens), 32);
}

}  // namespace
}  // namespace ember
