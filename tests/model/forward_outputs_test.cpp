// What a forward pass returns per row: logits, greedy tokens (Batch::kToken), hidden states
// (Batch::kHidden, for embeddings) or nothing, and the batch-invariant mode
// (ModelOptions::batch_invariant), in which a row's logits do not depend on what shares its batch
// or on how its sequence was chunked, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/error.h"
#include "engine/sampler_math.h"
#include "model/forward_test_support.h"

namespace ember {
namespace {

using test::Logits;

// A random model loaded by ember alone (no reference), with its backend and an F16 KV cache.
struct Loaded {
  std::vector<std::byte> bytes;
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> kv;
};

Loaded load(const test::RandomModelSpec& spec, std::optional<Isa> isa, int32_t max_step_tokens, bool batch_invariant) {
  Loaded m;
  m.bytes = test::write_random_model(spec);
  // Batch invariance must not lean on the backend's decode default: with it off, the model has to ask
  // prepare() for panels on every row count itself.
  m.backend = std::make_unique<CpuBackend>(CpuBackendOptions{
      .n_threads = 2, .isa = isa, .decode_on_packed = batch_invariant ? std::optional<bool>(false) : std::nullopt});
  ModelOptions options;
  options.max_step_tokens = max_step_tokens;
  options.batch_invariant = batch_invariant;
  m.model = Model::from_file(GgufFile::parse(m.bytes, "random.gguf"), *m.backend, options);
  m.kv = std::make_unique<KvCache>(m.model->config(), m.model->kv_options(1024));
  return m;
}

test::RandomModelSpec spec_for(const std::string& arch, DType type) {
  test::RandomModelSpec s;
  s.arch = arch;
  s.weight_type = type;
  s.embd_type = type;
  s.n_vocab = 70;
  s.context_length = 1024;
  if (arch == "gemma2") {  // a window the test sequences exceed
    s.extra_keys = [](GgufWriter& w) { w.add<uint32_t>("gemma2.attention.sliding_window", 37); };
  }
  return s;
}

std::vector<float> copy_row(const float* data, int64_t n) { return {data, data + n}; }

// One mixed batch, run twice from the same KV state: once with its output kinds, once with every
// output row asking for logits. Rows are captured at the kFinalNorm and kLogits hooks.
struct MixedRun {
  std::vector<float> logits;
  std::vector<float> hidden;
  std::vector<int32_t> tokens;
  std::vector<int32_t> norm_rows;  // batch rows the kFinalNorm hook saw, and their values
  std::vector<std::vector<float>> norm_values;
  std::vector<int32_t> logit_rows;  // batch rows the kLogits hook saw
};

// Sequence A has 3 tokens cached, B none; the batch continues A by 6 rows and B by 7, interleaved,
// in steps of 4 rows (max_step_tokens), with the given kind per row.
MixedRun run_mixed(Loaded& m, const std::vector<uint8_t>& kinds) {
  const int64_t n_vocab = m.model->config().n_vocab, n_embd = m.model->config().n_embd;
  const std::vector<int32_t> a = test::random_tokens(9, n_vocab, 11), b = test::random_tokens(7, n_vocab, 12);
  const SeqId sa = m.kv->add_sequence(), sb = m.kv->add_sequence();
  Batch prefix;
  for (int32_t i = 0; i < 3; ++i) prefix.add(a[i], i, sa, false);
  m.model->forward(prefix, *m.kv);

  Batch batch;
  int32_t next_a = 3, next_b = 0;
  for (size_t r = 0; r < kinds.size(); ++r) {
    const bool take_a = next_b == 7 || (r % 3 == 1 && next_a < 9);
    if (take_a) {
      batch.add(a[next_a], next_a, sa, static_cast<Batch::RowOutput>(kinds[r]));
      ++next_a;
    } else {
      batch.add(b[next_b], next_b, sb, static_cast<Batch::RowOutput>(kinds[r]));
      ++next_b;
    }
  }
  MixedRun run;
  Hooks& hooks = m.model->hooks();
  const Hooks::Handle norm = hooks.add(HookPoint::kFinalNorm, [&](const HookTensor& t) {
    EXPECT_EQ(t.n_cols, n_embd);
    for (int64_t i = 0; i < t.n_rows; ++i) {
      run.norm_rows.push_back(t.batch_rows[static_cast<size_t>(i)]);
      run.norm_values.push_back(copy_row(t.data + i * n_embd, n_embd));
    }
  });
  const Hooks::Handle logits = hooks.add(HookPoint::kLogits, [&](const HookTensor& t) {
    run.logit_rows.insert(run.logit_rows.end(), t.batch_rows.begin(), t.batch_rows.end());
  });
  const std::span<const float> out = m.model->forward(batch, *m.kv);
  run.logits.assign(out.begin(), out.end());
  run.hidden.assign(m.model->hidden().begin(), m.model->hidden().end());
  run.tokens.assign(m.model->tokens().begin(), m.model->tokens().end());
  hooks.remove(norm);
  hooks.remove(logits);
  m.kv->remove_sequence(sa);
  m.kv->remove_sequence(sb);
  return run;
}

// Hidden-state rows are the final-normed rows a kFinalNorm hook sees, equal to what the same rows
// see when they ask for logits instead; they skip the LM head (the kLogits hook never sees them),
// and the logits rows beside them are unchanged. 13 rows in steps of 4: 4 internal steps, one of
// them with hidden rows only.
TEST(ForwardOutputs, HiddenRowsAreTheFinalNormOfTheirRows) {
  const std::vector<uint8_t> kinds = {2, 0, 1, 2, 2, 1, 0, 2, 2, 2, 2, 1, 2};
  std::vector<uint8_t> as_logits = kinds;
  for (uint8_t& k : as_logits) k = k == 0 ? 0 : 1;
  for (const char* arch : {"llama", "gemma2"}) {
    for (DType type : {DType::kF32, DType::kQ8_0}) {
      SCOPED_TRACE(std::string(arch) + " " + std::string(dtype_name(type)));
      Loaded m = load(spec_for(arch, type), std::nullopt, 4, false);
      const int64_t n_vocab = m.model->config().n_vocab, n_embd = m.model->config().n_embd;
      const MixedRun mixed = run_mixed(m, kinds);
      const MixedRun all = run_mixed(m, as_logits);

      std::vector<int32_t> output_rows, logit_rows, hidden_rows;
      for (size_t r = 0; r < kinds.size(); ++r) {
        if (kinds[r] != 0) output_rows.push_back(static_cast<int32_t>(r));
        if (kinds[r] == 1) logit_rows.push_back(static_cast<int32_t>(r));
        if (kinds[r] == 2) hidden_rows.push_back(static_cast<int32_t>(r));
      }
      EXPECT_EQ(mixed.norm_rows, output_rows);  // the hook sees both kinds, in batch order
      EXPECT_EQ(all.norm_rows, output_rows);
      EXPECT_EQ(mixed.norm_values, all.norm_values);
      EXPECT_EQ(mixed.logit_rows, logit_rows);  // no LM head for the hidden rows
      ASSERT_EQ(mixed.hidden.size(), hidden_rows.size() * static_cast<size_t>(n_embd));
      ASSERT_EQ(mixed.logits.size(), logit_rows.size() * static_cast<size_t>(n_vocab));
      ASSERT_EQ(all.logits.size(), output_rows.size() * static_cast<size_t>(n_vocab));
      EXPECT_TRUE(all.hidden.empty());
      for (size_t h = 0, l = 0, o = 0; o < output_rows.size(); ++o) {
        const auto r = static_cast<size_t>(output_rows[o]);
        if (kinds[r] == 2) {
          EXPECT_EQ(copy_row(mixed.hidden.data() + h * static_cast<size_t>(n_embd), n_embd), all.norm_values[o])
              << "row " << r;
          ++h;
        } else {
          EXPECT_EQ(copy_row(mixed.logits.data() + l * static_cast<size_t>(n_vocab), n_vocab),
                    copy_row(all.logits.data() + o * static_cast<size_t>(n_vocab), n_vocab))
              << "row " << r;
          ++l;
        }
      }
    }
  }
}

// Token rows (Batch::kToken) return the greedy token of the logits the same row gives when it asks
// for them; they pass through the LM head and the kLogits hook (in batch order with the logits
// rows), and the logits and hidden rows beside them are unchanged. 13 rows in steps of 4.
TEST(ForwardOutputs, TokenRowsAreTheArgmaxOfTheirLogits) {
  const std::vector<uint8_t> kinds = {3, 0, 1, 2, 3, 1, 0, 3, 3, 3, 3, 1, 2};
  std::vector<uint8_t> as_logits = kinds;
  for (uint8_t& k : as_logits) k = k == 0 ? 0 : 1;
  for (const char* arch : {"llama", "gemma2"}) {  // gemma2: the final soft-cap before the argmax
    SCOPED_TRACE(arch);
    Loaded m = load(spec_for(arch, DType::kQ8_0), std::nullopt, 4, false);
    const int64_t n_vocab = m.model->config().n_vocab, n_embd = m.model->config().n_embd;
    const MixedRun mixed = run_mixed(m, kinds);
    const MixedRun all = run_mixed(m, as_logits);

    std::vector<int32_t> output_rows, head_rows;
    for (size_t r = 0; r < kinds.size(); ++r) {
      if (kinds[r] != 0) output_rows.push_back(static_cast<int32_t>(r));
      if (kinds[r] == 1 || kinds[r] == 3) head_rows.push_back(static_cast<int32_t>(r));
    }
    EXPECT_EQ(mixed.logit_rows, head_rows);
    ASSERT_EQ(all.logits.size(), output_rows.size() * static_cast<size_t>(n_vocab));
    ASSERT_EQ(mixed.tokens.size(), 6u);
    ASSERT_EQ(mixed.logits.size(), 3 * static_cast<size_t>(n_vocab));
    ASSERT_EQ(mixed.hidden.size(), 2 * static_cast<size_t>(n_embd));
    std::vector<int32_t> distinct;
    for (size_t t = 0, l = 0, h = 0, o = 0; o < output_rows.size(); ++o) {
      const auto r = static_cast<size_t>(output_rows[o]);
      const float* want = all.logits.data() + o * static_cast<size_t>(n_vocab);
      if (kinds[r] == 3) {
        EXPECT_EQ(mixed.tokens[t], test::greedy_of(want, n_vocab)) << "row " << r;
        distinct.push_back(mixed.tokens[t++]);
      } else if (kinds[r] == 1) {
        EXPECT_EQ(copy_row(mixed.logits.data() + l++ * static_cast<size_t>(n_vocab), n_vocab), copy_row(want, n_vocab))
            << "row " << r;
      } else {
        EXPECT_EQ(copy_row(mixed.hidden.data() + h++ * static_cast<size_t>(n_embd), n_embd), all.norm_values[o])
            << "row " << r;
      }
    }
    std::sort(distinct.begin(), distinct.end());
    EXPECT_GT(std::unique(distinct.begin(), distinct.end()) - distinct.begin(), 1);  // not one constant token
  }
}

// The greedy rule's edges, set by a kLogits hook (which runs before the choice): a tie takes the
// lower id, a NaN is never chosen, and a row with no number above -inf (all -inf; NaN and -inf)
// gives -1 — where a plain argmax would give the first -inf.
TEST(ForwardOutputs, TokenRowsFollowTheGreedyRuleOnTiesNanAndInfinity) {
  Loaded m = load(spec_for("llama", DType::kF32), std::nullopt, 64, false);
  const int64_t n_vocab = m.model->config().n_vocab;
  const Hooks::Handle handle = m.model->hooks().add(HookPoint::kLogits, [&](const HookTensor& t) {
    ASSERT_EQ(t.n_rows, 4);
    float* row = t.data;
    row[5] = 1e9f;  // a tie: 5 wins over 60
    row[60] = 1e9f;
    row += n_vocab;
    row[0] = NAN;  // NaN before the max
    row[33] = 1e9f;
    row += n_vocab;
    std::fill(row, row + n_vocab, -INFINITY);
    row += n_vocab;
    std::fill(row, row + n_vocab, -INFINITY);
    row[0] = NAN;
  });
  const SeqId seq = m.kv->add_sequence();
  Batch batch;
  for (int32_t i = 0; i < 4; ++i) batch.add(i + 1, i, seq, Batch::kToken);
  EXPECT_TRUE(m.model->forward(batch, *m.kv).empty());
  const std::vector<int32_t> tokens(m.model->tokens().begin(), m.model->tokens().end());
  EXPECT_EQ(tokens, (std::vector<int32_t>{5, 33, -1, -1}));
  m.model->hooks().remove(handle);
  batch.clear();
  batch.add(9, 4, seq, Batch::kLogits);
  m.model->forward(batch, *m.kv);
  EXPECT_TRUE(m.model->tokens().empty());  // a forward without token rows clears tokens()
}

// Top-k rows on the host path: the sampler's select_top_k of the logits, set by a kLogits hook
// (which runs before the selection) to stress it: ties across the k-th place, NaN (ranked as -inf),
// -0 beside +0, +inf, fewer than k numbers above -inf; with k 1, 5 and the whole vocabulary.
TEST(ForwardOutputs, TopKRowsAreTheSamplersTopKOfTheirLogits) {
  Loaded m = load(spec_for("llama", DType::kF32), std::nullopt, 64, false);
  const int64_t n_vocab = m.model->config().n_vocab;
  std::vector<std::vector<float>> rows;
  const Hooks::Handle handle = m.model->hooks().add(HookPoint::kLogits, [&](const HookTensor& t) {
    ASSERT_EQ(t.n_rows, 5);
    float* row = t.data;
    for (int64_t i = 0; i < n_vocab; ++i) row[i] = std::round(row[i]);  // ties everywhere
    row += n_vocab;
    for (int64_t i = 0; i < n_vocab; i += 4) row[i] = NAN;
    row[9] = INFINITY;
    row += n_vocab;
    for (int64_t i = 0; i < n_vocab; ++i) row[i] = i % 3 == 0 ? -0.0f : i % 3 == 1 ? 0.0f : -std::abs(row[i]) - 1.0f;
    row += n_vocab;
    std::fill(row, row + n_vocab, -INFINITY);
    row[30] = 1.0f;
    row[2] = NAN;
    row += n_vocab;
    std::fill(row, row + n_vocab, NAN);
    for (int64_t r = 0; r < 5; ++r) rows.emplace_back(t.data + r * n_vocab, t.data + (r + 1) * n_vocab);
  });
  for (const int32_t k : {1, 5, 70}) {
    SCOPED_TRACE(k);
    rows.clear();
    const SeqId seq = m.kv->add_sequence();
    Batch batch;
    for (int32_t i = 0; i < 5; ++i) batch.add(i + 1, i, seq, Batch::kTopK);
    batch.top_k = k;
    EXPECT_TRUE(m.model->forward(batch, *m.kv).empty());
    const std::span<const TopCandidate> got = m.model->top_k();
    ASSERT_EQ(got.size(), 5u * static_cast<size_t>(k));
    ASSERT_EQ(rows.size(), 5u);
    std::vector<sampling::Candidate> want;
    for (size_t r = 0; r < 5; ++r) {
      sampling::select_top_k(rows[r], static_cast<size_t>(k), want);
      for (size_t i = 0; i < static_cast<size_t>(k); ++i) {
        const TopCandidate& c = got[r * static_cast<size_t>(k) + i];
        EXPECT_EQ(c.id, want[i].id) << "row " << r << " place " << i;
        EXPECT_EQ(std::memcmp(&c.logit, &want[i].logit, sizeof(float)), 0) << "row " << r << " place " << i;
      }
    }
    m.kv->remove_sequence(seq);
  }
  m.model->hooks().remove(handle);
}

// A batch of hidden rows only returns no logits; the next forward without any clears hidden().
TEST(ForwardOutputs, HiddenOnlyBatchAndClearing) {
  Loaded m = load(spec_for("llama", DType::kF32), std::nullopt, 64, false);
  const int64_t n_embd = m.model->config().n_embd;
  const SeqId seq = m.kv->add_sequence();
  Batch batch;
  for (int32_t i = 0; i < 5; ++i) batch.add(i + 1, i, seq, Batch::kHidden);
  EXPECT_TRUE(m.model->forward(batch, *m.kv).empty());
  EXPECT_EQ(m.model->hidden().size(), static_cast<size_t>(5 * n_embd));
  batch.clear();
  batch.add(9, 5, seq, true);
  EXPECT_EQ(m.model->forward(batch, *m.kv).size(), static_cast<size_t>(m.model->config().n_vocab));
  EXPECT_TRUE(m.model->hidden().empty());
}

TEST(ForwardOutputs, OtherOutputKindsAreErrors) {
  Loaded m = load(spec_for("llama", DType::kF32), std::nullopt, 64, false);
  const SeqId seq = m.kv->add_sequence();
  Batch batch;
  batch.add(1, 0, seq, Batch::kHidden);
  batch.add(2, 1, seq, Batch::kLogits);
  batch.add(3, 2, seq, Batch::kNoOutput);
  batch.logits[1] = 5;
  try {
    m.model->forward(batch, *m.kv);
    ADD_FAILURE() << "no error for output kind 5";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("batch row 1: output kind 5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m.kv->n_tokens(seq), 0);
  // A top-k row needs a top_k of 1 to min(kMaxTopK, n_vocab) (70 here).
  batch.logits[1] = Batch::kTopK;
  for (const int32_t k : {0, -3, 71, Batch::kMaxTopK + 1}) {
    batch.top_k = k;
    try {
      m.model->forward(batch, *m.kv);
      ADD_FAILURE() << "no error for top_k " << k;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("batch row 1: top_k " + std::to_string(k) + " is not 1 to 70"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(m.kv->n_tokens(seq), 0);
  }
  batch.top_k = 70;
  m.model->forward(batch, *m.kv);
  EXPECT_EQ(m.model->top_k().size(), 70u);
}

// A sequence's tokens and the rows it adds at each step of the batched run (0: it sits out).
struct Schedule {
  std::vector<int32_t> tokens;
  std::vector<int32_t> chunks;
};

// Batch-invariant mode on every ISA the machine has, for F32 weights (the GEMV everywhere: only
// split-K attention can differ) and the types whose packed GEMM would differ from the GEMV (F16 /
// BF16 panels; every packed type off avx512). Four sequences run together: a 594-token prefill
// beside a 20-token one, then decode rows of a 600-token context (long enough for split-K to cut
// it differently alone and in a batch) beside prefill chunks of another sequence; rows contiguous
// in even steps, round-robin in odd ones; internal steps of 16 rows. Every row's logits equal,
// byte for byte, those of its sequence decoded alone one token per forward(). (Without the option,
// 14 of these 18 cases fail where decode runs on the packed panels: all but avx512's Q8_0,
// invariant already, and avx2's BF16, whose bf16-rounded activations happen to absorb split-K's
// last-bit changes here. With the option, avx512's Q8_0 decodes on the panels whatever the
// backend's default.)
TEST(ForwardOutputs, BatchInvariantRowsEqualTheSequenceAlone) {
  for (Isa isa : supported_isas()) {
    for (const char* arch : {"llama", "gemma2", "qwen3moe"}) {  // qwen3moe: experts see varying row counts
      for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
        if (isa == Isa::kScalar && type != DType::kF32) continue;  // no GEMM: F32 says it all (and fast)
        SCOPED_TRACE(std::string(isa_name(isa)) + " " + arch + " " + std::string(dtype_name(type)));
        Loaded m = load(spec_for(arch, type), isa, 16, true);
        if (isa == Isa::kAvx512 && type == DType::kQ8_0) {
          EXPECT_GT(m.backend->packed_bytes(), 0u);  // invariant on its panels, at full prefill speed
        }
        const int64_t n_vocab = m.model->config().n_vocab;
        const std::vector<Schedule> plan = {
            {test::random_tokens(600, n_vocab, 21), {594, 1, 1, 1, 1, 1, 1}},
            {test::random_tokens(26, n_vocab, 22), {20, 1, 1, 1, 1, 1, 1}},
            {test::random_tokens(45, n_vocab, 23), {0, 31, 9, 0, 5}},
            {test::random_tokens(7, n_vocab, 24), {1, 1, 1, 1, 1, 1, 1}},
        };
        std::vector<Logits> alone;
        for (const Schedule& s : plan) alone.push_back(test::run_tokens(*m.model, *m.kv, s.tokens, true));

        std::vector<SeqId> ids;
        for (size_t j = 0; j < plan.size(); ++j) ids.push_back(m.kv->add_sequence());
        std::vector<int32_t> next(plan.size(), 0);
        int mismatches = 0;
        for (size_t step = 0; step < 7; ++step) {
          Batch batch;
          std::vector<size_t> row_seq;
          const auto add_row = [&](size_t j) {
            batch.add(plan[j].tokens[static_cast<size_t>(next[j])], next[j], ids[j], true);
            row_seq.push_back(j);
            ++next[j];
          };
          std::vector<int32_t> left(plan.size(), 0);
          for (size_t j = 0; j < plan.size(); ++j) left[j] = step < plan[j].chunks.size() ? plan[j].chunks[step] : 0;
          for (size_t k = 0; k < plan.size(); ++k) {  // rotate which sequence comes first
            const size_t j = (step + k) % plan.size();
            for (; step % 2 == 0 && left[j] > 0; --left[j]) add_row(j);
          }
          for (bool more = true; more;) {  // odd steps: one row of each sequence in turn
            more = false;
            for (size_t j = 0; j < plan.size(); ++j) {
              if (left[j] == 0) continue;
              add_row(j);
              --left[j];
              more = true;
            }
          }
          const std::span<const float> logits = m.model->forward(batch, *m.kv);
          ASSERT_EQ(logits.size(), batch.size() * static_cast<size_t>(n_vocab));
          for (size_t r = 0; r < batch.size(); ++r) {
            const std::vector<float>& want = alone[row_seq[r]][static_cast<size_t>(batch.pos[r])];
            if (std::memcmp(logits.data() + r * static_cast<size_t>(n_vocab), want.data(),
                            sizeof(float) * want.size()) != 0 &&
                mismatches++ < 3) {
              ADD_FAILURE() << "step " << step << ": sequence " << row_seq[r] << " at " << batch.pos[r]
                            << " differs from the sequence alone";
            }
          }
        }
        EXPECT_EQ(mismatches, 0);
        for (size_t j = 0; j < plan.size(); ++j) EXPECT_EQ(next[j], static_cast<int32_t>(plan[j].tokens.size()));
      }
    }
  }
}

}  // namespace
}  // namespace ember
