// KvCache: block accounting for growth, truncation, removal and forks; copy-on-write of a shared
// block keeps both sequences' data; running out of blocks changes nothing.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>

#include "ember/error.h"

namespace ember {
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

TEST(KvCache, GrowsTruncatesAndFreesBlocks) {
  KvCache cache(small_config(), {.n_blocks = 8, .k_dtype = DType::kF32, .v_dtype = DType::kF32});
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
  KvCache cache(small_config(), {.n_blocks = 6, .k_dtype = DType::kF32, .v_dtype = DType::kF32});
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

}  // namespace
}  // namespace ember
