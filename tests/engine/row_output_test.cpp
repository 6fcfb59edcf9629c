// What a sequence's row asks the model for (Batch::RowOutput): its greedy token for plain greedy
// decoding, its best logits for sampling that starts with top-k, its logits otherwise. The
// Generator's output through the token and top-k rows is the logits path's token for token (the
// same seeded draws), on the bundled ember-tiny.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/sequence_decoder.h"
#include "speculative_test_support.h"

namespace ember {
namespace {

using namespace test;  // NOLINT: the shared fixtures

const char* const kPromptForStops = "Blessed are the poor in spirit";

Batch::RowOutput row_output(const GenerateOptions& options) {
  const SequenceDecoder decoder(*models().tokenizer, models().target->config().n_vocab, options, tokens("Hello"));
  return decoder.next_row_output();
}

GenerateOptions sampled(int32_t max_tokens, uint64_t seed) {
  GenerateOptions o;  // the default sampling: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
  o.sampling.seed = seed;
  o.stop.max_tokens = max_tokens;
  return o;
}

TEST(RowOutput, TheRowReturnsWhatTheDecoderReads) {
  EXPECT_EQ(row_output(greedy(8)), Batch::kToken);
  EXPECT_EQ(row_output(sampled(8, 1)), Batch::kTopK);
  for (GenerateOptions o : {greedy(8), sampled(8, 1)}) {  // what needs the whole row, greedy or not
    SCOPED_TRACE(o.sampling.temperature);
    GenerateOptions changed = o;
    changed.sampling.logit_bias = {{5, 2.0f}};
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    changed = o;
    changed.sampling.repeat_penalty = 1.1f;
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    changed = o;
    changed.sampling.presence_penalty = 0.5f;
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    changed = o;
    changed.sampling.dry_multiplier = 0.8f;
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    changed = o;
    changed.logprobs = 0;
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    changed = o;
    changed.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = "[a-z ]+"};
    EXPECT_EQ(row_output(changed), Batch::kLogits);
    // A lazy constraint waiting for its trigger only follows the output.
    changed.constraint.triggers = {"<call>"};
    EXPECT_EQ(row_output(changed), o.sampling.temperature > 0.0f ? Batch::kTopK : Batch::kToken);
  }
  GenerateOptions o = sampled(8, 1);
  o.sampling.top_k = 0;
  EXPECT_EQ(row_output(o), Batch::kLogits);
  o.sampling.top_k = Batch::kMaxTopK + 1;
  EXPECT_EQ(row_output(o), Batch::kLogits);
  o = sampled(8, 1);
  o.sampling.mirostat = 2;
  EXPECT_EQ(row_output(o), Batch::kLogits);
  // Steps that are off at their neutral values change nothing.
  o = greedy(8);
  o.sampling.repeat_penalty = 1.0f;
  o.sampling.top_k = 5;
  o.sampling.min_p = 0.2f;
  EXPECT_EQ(row_output(o), Batch::kToken);
}

// The same generations with logprobs asked for (the logits path; logprobs do not change the
// choice) and without (the model's token rows): the same tokens and text. The model's tokens()
// shows which path the last step took.
TEST(RowOutput, GreedyGenerationEqualsTheLogitsPath) {
  auto g = generator(nullptr);
  const Model& model = *models().target;
  for (const char* prompt : {"And the LORD said unto Moses", "In the beginning"}) {
    SCOPED_TRACE(prompt);
    GenerateOptions o = greedy(40);
    o.logprobs = 0;
    const Output with_logits = run(*g, tokens(prompt), o);
    EXPECT_TRUE(model.tokens().empty());
    o.logprobs = -1;
    const Output with_tokens = run(*g, tokens(prompt), o);
    EXPECT_EQ(model.tokens().size(), 1u);
    EXPECT_EQ(with_tokens.ids, with_logits.ids);
    EXPECT_EQ(with_tokens.text, with_logits.text);
    EXPECT_EQ(with_tokens.stats.generated_tokens, with_logits.stats.generated_tokens);
    EXPECT_EQ(with_tokens.stats.finish, with_logits.stats.finish);
    EXPECT_GE(with_tokens.ids.size(), 10u);
  }
}

// The first token comes from the prompt's last row: a token row too, and the whole output of a
// one-token generation. A stop string and max_tokens end it as on the logits path.
TEST(RowOutput, PromptRowAndStopsOnTheTokenPath) {
  auto g = generator(nullptr);
  GenerateOptions o = greedy(1);
  const Output one = run(*g, tokens(kPromptForStops), o);
  o.logprobs = 0;
  const Output one_logits = run(*g, tokens(kPromptForStops), o);
  EXPECT_EQ(one.ids, one_logits.ids);
  ASSERT_EQ(one.ids.size(), 1u);

  o = greedy(60);
  const Output full = run(*g, tokens(kPromptForStops), o);
  ASSERT_GT(full.text.size(), 12u);
  o.stop.strings = {full.text.substr(8, 4)};
  const Output stopped = run(*g, tokens(kPromptForStops), o);
  o.logprobs = 0;
  const Output stopped_logits = run(*g, tokens(kPromptForStops), o);
  EXPECT_EQ(stopped.stats.finish, FinishReason::kStopString);
  EXPECT_EQ(stopped.text, stopped_logits.text);
  EXPECT_EQ(stopped.ids, stopped_logits.ids);
}

// Sampled generations through the top-k rows against the same with logprobs (the logits path):
// the same seeded tokens, with top-k alone, with typical-p and XTC after it, and a small k.
TEST(RowOutput, SampledGenerationEqualsTheLogitsPath) {
  auto g = generator(nullptr);
  const Model& model = *models().target;
  for (uint64_t seed : {1u, 2u, 3u}) {
    GenerateOptions o = sampled(40, seed);
    if (seed == 2) {
      o.sampling.typical_p = 0.9f;
      o.sampling.xtc_probability = 0.5f;
      o.sampling.xtc_threshold = 0.1f;
    }
    if (seed == 3) o.sampling.top_k = 3;
    SCOPED_TRACE(seed);
    o.logprobs = 0;
    const Output with_logits = run(*g, tokens("And the LORD said unto Moses"), o);
    EXPECT_TRUE(model.top_k().empty());
    o.logprobs = -1;
    const Output with_top = run(*g, tokens("And the LORD said unto Moses"), o);
    EXPECT_EQ(model.top_k().size(), static_cast<size_t>(o.sampling.top_k));
    EXPECT_EQ(with_top.ids, with_logits.ids);
    EXPECT_EQ(with_top.text, with_logits.text);
    EXPECT_GE(with_top.ids.size(), 10u);
  }
}

// A model whose logits are all NaN or -inf from some step on (NaN weights, an overflow) fails the
// generation with an error that says so, on every row path (token, top-k, logits) and in
// speculative verification — never a run of token 0 that looks like success. A row with only
// some NaN still generates (they are never drawn).
TEST(RowOutput, LogitsWithNoNumberFailTheGenerationOnEveryPath) {
  Model& model = *models().target;
  int forwards = 0, broken_from = 0;
  int64_t first_broken_rows = 0;  // the rows of the first broken step: > 1 in a verification
  bool some_nan_only = false;
  int64_t first_broken_row = 0;  // rows before it stay as they are (1: only a verification's draft rows)
  int64_t max_rows = 0;          // the most rows of any step
  const Hooks::Handle handle = model.hooks().add(HookPoint::kLogits, [&](const HookTensor& t) {
    max_rows = std::max(max_rows, t.n_rows);
    if (++forwards < broken_from) return;
    if (forwards == broken_from) first_broken_rows = t.n_rows;
    for (int64_t r = first_broken_row; r < t.n_rows; ++r) {
      float* row = t.data + r * t.n_cols;
      if (some_nan_only) {
        for (int64_t i = 0; i < t.n_cols; i += 2) row[i] = NAN;
      } else {
        std::fill(row, row + t.n_cols, NAN);
        row[r % t.n_cols] = -INFINITY;  // NaN and -inf alike: nothing above -inf
      }
    }
  });
  struct Remove {
    Model& m;
    Hooks::Handle h;
    ~Remove() { m.hooks().remove(h); }
  } remove{model, handle};
  const auto failure = [&](Generator& g, const GenerateOptions& o, int broken_at) -> std::string {
    forwards = 0;
    broken_from = broken_at;
    try {
      run(g, tokens("And the LORD said unto Moses"), o);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFormat);
      return e.what();
    }
    return "no error";
  };
  auto g = generator(nullptr);
  GenerateOptions with_logprobs = greedy(12);
  with_logprobs.logprobs = 0;
  for (const GenerateOptions& o : {greedy(12), sampled(12, 4), with_logprobs}) {
    SCOPED_TRACE(row_output(o));
    EXPECT_NE(failure(*g, o, 1).find("logits for output token 1 are all NaN or -inf"), std::string::npos);
    EXPECT_NE(failure(*g, o, 4).find("output token 4 "), std::string::npos);
  }
  auto speculating = generator(models().draft.get());
  GenerateOptions spec = greedy(30);
  spec.speculative.draft_max = 4;
  spec.speculative.p_min = 0.0f;  // a draft at every step
  const std::string message = failure(*speculating, spec, 3);
  EXPECT_NE(message.find("are all NaN or -inf"), std::string::npos) << message;
  EXPECT_GT(first_broken_rows, 1);  // the failure came in verification

  // Rows broken only after a draft token (an overflow the draft caused): verification keeps none of
  // those drafts, and the output is plain decoding's, as plain decoding never computes such a row.
  first_broken_row = 1;
  broken_from = 1;
  forwards = 0;
  max_rows = 0;
  const Output drafted = run(*speculating, tokens("And the LORD said unto Moses"), spec);
  broken_from = 1 << 30;
  const Output plain = run(*g, tokens("And the LORD said unto Moses"), greedy(30));
  EXPECT_EQ(drafted.ids, plain.ids);
  EXPECT_EQ(drafted.stats.accepted_tokens, 0);
  EXPECT_GT(max_rows, 1);  // drafts were verified (and dropped)
  first_broken_row = 0;

  some_nan_only = true;
  forwards = 0;
  broken_from = 1;
  const Output out = run(*g, tokens("And the LORD said unto Moses"), greedy(12));
  EXPECT_EQ(out.ids.size(), 12u);
  for (int32_t id : out.ids) EXPECT_EQ(id % 2, 1);  // the NaN (even) ids never drawn
}

}  // namespace
}  // namespace ember
