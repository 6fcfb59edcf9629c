// The batch-first forward pass: several sequences at different positions in one call, prefix
// sharing (fork) and rollback (truncate) of the KV cache, logits only where asked, hooks, and
// the errors of inconsistent batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "ember/error.h"
#include "model/forward_test_support.h"

namespace ember {
namespace {

using test::Logits;
using test::RandomModelSpec;
using test::RefLogits;
using test::TwinModels;

RandomModelSpec small_spec(const std::string& arch, DType type = DType::kF32) {
  RandomModelSpec s;
  s.arch = arch;
  s.weight_type = type;
  s.embd_type = type;
  s.n_vocab = 70;
  if (arch == "gemma2" || arch == "gemma3") {  // windows the test sequences exceed
    s.extra_keys = [arch](GgufWriter& w) { w.add<uint32_t>(arch + ".attention.sliding_window", 5); };
  }
  return s;
}

// Rows [begin, end) of the reference logits of `tokens`.
RefLogits reference_rows(const TwinModels& m, const std::vector<int32_t>& tokens, size_t begin, size_t end) {
  const RefLogits all = m.reference->forward(tokens);
  return {all.begin() + static_cast<int64_t>(begin), all.begin() + static_cast<int64_t>(end)};
}

// Every architecture of the X-macro list.
const std::vector<std::string> kArchs = {
#define EMBER_ARCH(id, gguf_name, reader) gguf_name,
#include "model/arch/arch_list.inc"
#undef EMBER_ARCH
};

// Three sequences in one batch, their rows interleaved: A continues a 7-token prefix by one decode
// token, B (3 tokens so far) by a 5-token chunk, C starts with 6 tokens; the batch spans several
// internal steps of 4 rows. Each row equals the reference run of its sequence alone, and equals
// ember's own run of that sequence alone token by token — bit for bit where every row count takes
// the same matmul kernels (rows_invariant: the GEMV, or avx512's integer panels with decode on
// them), else (decode rows on the GEMV, batched rows on the GEMM) within tolerance. (Quantized
// mixtures of experts: against their own run alone only, see below.)
TEST(ForwardBatch, SequencesAtDifferentPositionsInOneBatch) {
  for (const std::string& arch : kArchs) {
    for (const auto& [type, tolerance] : {std::pair{DType::kF32, 2e-6}, {DType::kQ8_0, 0.06}, {DType::kQ4_0, 0.06}}) {
      SCOPED_TRACE(arch + " " + std::string(dtype_name(type)));
      TwinModels m = TwinModels::make(small_spec(arch, type), {.max_step_tokens = 4});
      const int64_t n_vocab = m.model->config().n_vocab;
      const std::vector<int32_t> a = test::random_tokens(8, n_vocab, 1), b = test::random_tokens(8, n_vocab, 2),
                                 c = test::random_tokens(6, n_vocab, 3);
      const Logits alone_a = test::run_sequence(m, a, true), alone_b = test::run_sequence(m, b, true),
                   alone_c = test::run_sequence(m, c, true);
      const SeqId sa = m.kv->add_sequence(), sb = m.kv->add_sequence(), sc = m.kv->add_sequence();
      Batch prefix;
      for (int32_t i = 0; i < 7; ++i) prefix.add(a[i], i, sa, false);
      for (int32_t i = 0; i < 3; ++i) prefix.add(b[i], i, sb, false);
      EXPECT_TRUE(m.model->forward(prefix, *m.kv).empty());  // no row asked for logits

      Batch batch;
      size_t next_b = 3, next_c = 0;
      std::vector<std::pair<char, size_t>> order;  // (sequence, position) of each logits row
      for (int i = 0; i < 6; ++i) {
        if (i == 2) {
          batch.add(a[7], 7, sa, true);
          order.emplace_back('a', 7);
        }
        if (next_b < 8) {
          batch.add(b[next_b], static_cast<int32_t>(next_b), sb, true);
          order.emplace_back('b', next_b++);
        }
        batch.add(c[next_c], static_cast<int32_t>(next_c), sc, true);
        order.emplace_back('c', next_c++);
      }
      const Logits got = test::rows_of(m.model->forward(batch, *m.kv), n_vocab, 0, batch.size());
      ASSERT_EQ(got.size(), order.size());
      const RefLogits ra = m.reference->forward(a), rb = m.reference->forward(b), rc = m.reference->forward(c);
      const bool exact = m.backend->rows_invariant(type, false);
      double worst = 0;
      for (size_t r = 0; r < got.size(); ++r) {
        const auto& [seq, pos] = order[r];
        const RefLogits& ref = seq == 'a' ? ra : seq == 'b' ? rb : rc;
        const Logits& alone = seq == 'a' ? alone_a : seq == 'b' ? alone_b : alone_c;
        worst = std::max(worst, test::max_abs_diff({got[r]}, {ref[pos]}) / test::max_abs(ref));
        if (exact) {
          EXPECT_EQ(got[r], alone[pos]) << seq << " at " << pos;
        } else {
          const RefLogits alone_row = {std::vector<double>(alone[pos].begin(), alone[pos].end())};
          EXPECT_LE(test::max_abs_diff({got[r]}, alone_row) / test::max_abs(ref), tolerance) << seq << " at " << pos;
        }
      }
      // A quantized mixture of experts may pick another expert than exact math where two are within
      // the noise of a tie (granitemoe Q4_0 here: 9.4e-2): against the reference, its rows are
      // forward_reference_test's job; here they must equal the sequence alone (checked above).
      if (type == DType::kF32 || m.model->config().moe.n_expert == 0) {
        EXPECT_LE(worst, tolerance);
      }
      EXPECT_EQ(m.kv->n_tokens(sa), 8);
      EXPECT_EQ(m.kv->n_tokens(sb), 8);
      EXPECT_EQ(m.kv->n_tokens(sc), 6);
    }
  }
}

// Logits only for the rows that ask, in batch order, equal to the same rows of a full request.
TEST(ForwardBatch, LogitsOnlyForTheRowsAskedFor) {
  TwinModels m = TwinModels::make(small_spec("llama", DType::kQ8_0));
  const int64_t n_vocab = m.model->config().n_vocab;
  const std::vector<int32_t> tokens = test::random_tokens(10, n_vocab, 4);
  const Logits all = test::run_sequence(m, tokens, false);
  const SeqId seq = m.kv->add_sequence();
  Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.add(tokens[i], static_cast<int32_t>(i), seq, i == 2 || i == 9);
  const Logits some = test::rows_of(m.model->forward(batch, *m.kv), n_vocab, 0, 2);
  EXPECT_EQ(some[0], all[2]);
  EXPECT_EQ(some[1], all[9]);
}

// A fork shares its parent's first positions; the two then continue differently. truncate rolls a
// sequence back (speculative decoding, prompt reuse) and recomputing gives the same logits.
void fork_and_truncate(const std::string& arch);

TEST(ForwardBatch, ForkAndTruncate) {
  for (const char* arch : {"qwen3", "deepseek2"}) {  // deepseek2: values kept in the key rows
    SCOPED_TRACE(arch);
    fork_and_truncate(arch);
  }
}

void fork_and_truncate(const std::string& arch) {
  TwinModels m = TwinModels::make(small_spec(arch));
  const int64_t n_vocab = m.model->config().n_vocab;
  const std::vector<int32_t> parent = test::random_tokens(20, n_vocab, 5);
  std::vector<int32_t> child(parent.begin(), parent.begin() + 13);  // 13: mid-block, copy-on-write
  for (int32_t t : test::random_tokens(6, n_vocab, 6)) child.push_back(t);

  const SeqId sp = m.kv->add_sequence();
  Batch batch;
  for (int32_t i = 0; i < 20; ++i) batch.add(parent[i], i, sp, i == 19);
  m.model->forward(batch, *m.kv);
  const SeqId sc = m.kv->fork(sp, 13);
  batch.clear();
  for (int32_t i = 13; i < 19; ++i) batch.add(child[i], i, sc, true);
  const Logits got_child = test::rows_of(m.model->forward(batch, *m.kv), n_vocab, 0, 6);
  EXPECT_LE(test::max_abs_diff(got_child, reference_rows(m, child, 13, 19)), 1e-5);

  // The parent is intact: roll it back to 15 and recompute its tail.
  m.kv->truncate(sp, 15);
  batch.clear();
  for (int32_t i = 15; i < 20; ++i) batch.add(parent[i], i, sp, true);
  const Logits got_parent = test::rows_of(m.model->forward(batch, *m.kv), n_vocab, 0, 5);
  EXPECT_LE(test::max_abs_diff(got_parent, reference_rows(m, parent, 15, 20)), 1e-5);
}

TEST(ForwardBatch, InconsistentBatchesAreErrorsAndChangeNothing) {
  TwinModels m = TwinModels::make(small_spec("llama"), {.kv_tokens = 32});
  const SeqId seq = m.kv->add_sequence();
  Batch ok;
  ok.add(1, 0, seq, true);
  m.model->forward(ok, *m.kv);
  const int32_t free_blocks = m.kv->free_blocks();
  const auto expect_error = [&](const Batch& batch, ErrorCode code, const std::string& text) {
    try {
      m.model->forward(batch, *m.kv);
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
    EXPECT_EQ(m.kv->n_tokens(seq), 1);
  };
  Batch b;
  b.add(70, 1, seq, true);
  expect_error(b, ErrorCode::kInvalidArgument, "token id 70 is outside the vocabulary");
  b.clear();
  b.add(-1, 1, seq, true);
  expect_error(b, ErrorCode::kInvalidArgument, "token id -1");
  b.clear();
  b.add(3, 2, seq, true);
  expect_error(b, ErrorCode::kInvalidArgument, "continues at position 1, not 2");
  b.clear();
  b.add(3, 1, seq, true);
  b.add(4, 1, seq, true);
  expect_error(b, ErrorCode::kInvalidArgument, "continues at position 2, not 1");
  b.clear();
  b.add(3, 0, seq + 1, true);
  expect_error(b, ErrorCode::kInvalidArgument, "no sequence 1");
  b.clear();
  for (int32_t i = 1; i < 40; ++i) b.add(3, i, seq, false);
  expect_error(b, ErrorCode::kOutOfMemory, "KV cache full");
  b = ok;
  b.pos.pop_back();
  expect_error(b, ErrorCode::kInvalidArgument, "1 tokens but 0 positions");
  EXPECT_EQ(m.kv->free_blocks(), free_blocks);
  EXPECT_TRUE(m.model->forward(Batch{}, *m.kv).empty());
}

// A batch that does not fit reserves nothing, even when its first sequences would fit alone.
TEST(ForwardBatch, KvCacheFullReservesNothing) {
  TwinModels m = TwinModels::make(small_spec("llama"), {.kv_tokens = 32});  // 2 blocks
  const SeqId a = m.kv->add_sequence(), b = m.kv->add_sequence();
  Batch batch;
  for (int32_t i = 0; i < 16; ++i) batch.add(1, i, a, false);
  for (int32_t i = 0; i < 17; ++i) batch.add(2, i, b, i == 16);
  EXPECT_THROW(m.model->forward(batch, *m.kv), Error);
  EXPECT_EQ(m.kv->free_blocks(), 2);
  batch.clear();
  for (int32_t i = 0; i < 17; ++i) batch.add(2, i, b, i == 16);
  EXPECT_EQ(m.model->forward(batch, *m.kv).size(), static_cast<size_t>(m.model->config().n_vocab));
  EXPECT_EQ(m.kv->n_tokens(b), 17);
}

// A hook that throws mid-batch (here in the second of three steps) leaves every sequence as it was
// before the batch; the same batch then runs.
TEST(ForwardBatch, AThrowingHookRollsTheBatchBack) {
  TwinModels m = TwinModels::make(small_spec("qwen2"), {.max_step_tokens = 8});
  const SeqId seq = m.kv->add_sequence();
  Batch first;
  first.add(3, 0, seq, false);
  m.model->forward(first, *m.kv);
  int calls = 0;
  const Hooks::Handle h = m.model->hooks().add(HookPoint::kEmbeddings, [&](const HookTensor&) {
    if (++calls == 2) throw std::runtime_error("hook failed");
  });
  Batch batch;
  for (int32_t i = 1; i <= 20; ++i) batch.add(i % 7, i, seq, i == 20);
  EXPECT_THROW(m.model->forward(batch, *m.kv), std::runtime_error);
  EXPECT_EQ(m.kv->n_tokens(seq), 1);
  m.model->hooks().remove(h);
  const Logits got = test::rows_of(m.model->forward(batch, *m.kv), m.model->config().n_vocab, 0, 1);
  std::vector<int32_t> tokens = {3};
  for (int32_t i = 1; i <= 20; ++i) tokens.push_back(i % 7);
  EXPECT_LE(test::max_abs_diff(got, reference_rows(m, tokens, 20, 21)), 1e-5);
}

// A callback may remove itself (or add others) while hooks run: the others still run this time.
TEST(ForwardBatch, AHookMayRemoveItself) {
  TwinModels m = TwinModels::make(small_spec("llama"));
  Hooks& hooks = m.model->hooks();
  std::vector<int> calls(3);
  Hooks::Handle first = 0;
  first = hooks.add(HookPoint::kLogits, [&](const HookTensor&) {
    ++calls[0];
    hooks.remove(first);
  });
  hooks.add(HookPoint::kLogits, [&](const HookTensor&) { ++calls[1]; });
  hooks.add(HookPoint::kLogits, [&](const HookTensor&) { ++calls[2]; });
  test::run_sequence(m, {1, 2}, true);
  EXPECT_EQ(calls, (std::vector<int>{1, 2, 2}));
}

// Hooks see every named intermediate, each the right data: a layer's residual is the previous one
// plus its attention and FFN outputs; removed hooks are not called.
TEST(ForwardBatch, HooksRead) {
  // Every point on a dense model, on a mixture of experts (whose FFN takes its own branch) and on
  // granite (the outputs as added: after its residual scale, the embeddings after theirs).
  for (const char* arch : {"qwen2moe", "llama", "granite"}) {
    SCOPED_TRACE(arch);
    TwinModels m = TwinModels::make(small_spec(arch));
    const ModelConfig& c = m.model->config();
    std::vector<int> calls(kHookPointCount);
    std::vector<float> logits_seen, embeddings;
    const auto n_layer = static_cast<size_t>(c.n_layer);
    std::vector<std::vector<float>> attention(n_layer), ffn(n_layer), residual(n_layer);
    std::vector<Hooks::Handle> handles;
    for (int p = 0; p < kHookPointCount; ++p) {
      handles.push_back(m.model->hooks().add(static_cast<HookPoint>(p), [&](const HookTensor& t) {
        ++calls[static_cast<size_t>(t.point)];
        EXPECT_EQ(t.n_cols, t.point == HookPoint::kLogits         ? c.n_vocab
                            : t.point == HookPoint::kRouterLogits ? c.moe.n_expert
                                                                  : c.n_embd);
        EXPECT_EQ(static_cast<size_t>(t.n_rows), t.batch_rows.size());
        const std::vector<float> data(t.data, t.data + t.n_rows * t.n_cols);
        const auto layer = static_cast<size_t>(std::max(t.layer, 0));
        if (t.point == HookPoint::kLogits) logits_seen = data;
        if (t.point == HookPoint::kEmbeddings) embeddings = data;
        if (t.point == HookPoint::kAttentionOutput) attention[layer] = data;
        if (t.point == HookPoint::kFfnOutput) ffn[layer] = data;
        if (t.point == HookPoint::kResidual) residual[layer] = data;
      }));
    }
    const std::vector<int32_t> tokens = {5, 9, 13};
    const Logits logits = test::run_sequence(m, tokens, false);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kEmbeddings)], 1);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kAttentionOutput)], c.n_layer);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kFfnOutput)], c.n_layer);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kResidual)], c.n_layer);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kFinalNorm)], 1);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kRouterLogits)], c.moe.n_expert > 0 ? c.n_layer : 0);
    ASSERT_EQ(logits_seen.size(), 3u * c.n_vocab);
    std::vector<float> returned;
    for (const auto& row : logits) returned.insert(returned.end(), row.begin(), row.end());
    EXPECT_EQ(logits_seen, returned);
    // x += attention output, then x += FFN output: float adds, so exactly.
    for (size_t il = 0; il < n_layer; ++il) {
      const std::vector<float>& before = il == 0 ? embeddings : residual[il - 1];
      ASSERT_EQ(residual[il].size(), before.size());
      ASSERT_EQ(attention[il].size(), before.size());
      ASSERT_EQ(ffn[il].size(), before.size());
      for (size_t i = 0; i < before.size(); ++i) {
        ASSERT_EQ(residual[il][i], (before[i] + attention[il][i]) + ffn[il][i]) << "layer " << il << " value " << i;
      }
    }
    for (Hooks::Handle h : handles) m.model->hooks().remove(h);
    test::run_sequence(m, tokens, false);
    EXPECT_EQ(calls[static_cast<size_t>(HookPoint::kEmbeddings)], 1);
  }
}

// Steering: token 9's embedding in row 1 replaced by token 22's.
TEST(ForwardBatch, HooksSteer) {
  TwinModels m = TwinModels::make(small_spec("llama"));
  const std::vector<int32_t> tokens = {5, 9, 13};
  std::vector<float> embedding_22;
  m.model->hooks().add(HookPoint::kEmbeddings, [&](const HookTensor& t) {
    if (t.n_rows == 1) embedding_22.assign(t.data, t.data + t.n_cols);
  });
  test::run_sequence(m, {22}, false);
  m.model->hooks().clear();
  m.model->hooks().add(HookPoint::kEmbeddings, [&](const HookTensor& t) {
    for (int64_t r = 0; r < t.n_rows; ++r) {
      if (t.batch_rows[static_cast<size_t>(r)] == 1)
        std::copy(embedding_22.begin(), embedding_22.end(), t.data + r * t.n_cols);
    }
  });
  const Logits steered = test::run_sequence(m, tokens, false);
  EXPECT_LE(test::max_abs_diff(steered, m.reference->forward({5, 22, 13})), 1e-5);
}

}  // namespace
}  // namespace ember
