// Speculative decoding in the Generator on the bundled ember-tiny with ember-tiny-draft (and with
// prompt lookup): greedy output is plain decoding's token for token, under a constraint too; a
// rollback leaves the KV cache as if the rejected drafts had never been seen; a draft of another
// vocabulary is refused. (The sampled distribution: speculative_distribution_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/draft_model.h"
#include "engine/generator.h"
#include "engine/sequence_decoder.h"
#include "speculative_test_support.h"

namespace ember {
namespace {

using namespace test;  // NOLINT: the shared fixtures

void expect_position_stats_consistent(const GenerationStats& s) {
  ASSERT_EQ(s.drafted_at.size(), s.accepted_at.size());
  int32_t drafted = 0, accepted = 0;
  for (size_t i = 0; i < s.drafted_at.size(); ++i) {
    EXPECT_LE(s.accepted_at[i], s.drafted_at[i]) << i;
    if (i > 0) {
      EXPECT_LE(s.drafted_at[i], s.drafted_at[i - 1]) << i;  // a draft reaching i reached i - 1
      EXPECT_LE(s.accepted_at[i], s.accepted_at[i - 1]) << i;
    }
    drafted += s.drafted_at[i];
    accepted += s.accepted_at[i];
  }
  EXPECT_EQ(drafted, s.draft_tokens);
  EXPECT_EQ(accepted, s.accepted_tokens);
}

const char* const kPrompt = "And the LORD said unto Moses";

TEST(SpeculativeGenerator, DraftModelKeepsGreedyOutput) {
  const std::vector<int32_t> prompt = tokens(kPrompt);
  auto plain = generator(nullptr);
  auto spec = generator(models().draft.get());
  for (const int32_t max_tokens : {120, 9}) {
    for (const char* stop : {"", " the tent"}) {
      SCOPED_TRACE(std::to_string(max_tokens) + " '" + stop + "'");
      GenerateOptions o = greedy(max_tokens);
      if (*stop != '\0') o.stop.strings = {stop};
      const Output a = run(*plain, prompt, o);
      o.speculative.draft_max = 6;
      o.speculative.p_min = 0.0f;               // every draft to its full length: rejections happen
      o.speculative.pause_when_slower = false;  // count the steps: not on timing
      const Output b = run(*spec, prompt, o);
      EXPECT_EQ(b.ids, a.ids);
      EXPECT_EQ(b.text, a.text);
      EXPECT_EQ(b.stats.finish, a.stats.finish);
      EXPECT_EQ(b.stats.generated_tokens, a.stats.generated_tokens);
      EXPECT_GT(b.stats.draft_tokens, 0);
      EXPECT_GT(b.stats.accepted_tokens, 0);
      EXPECT_LT(b.stats.accepted_tokens, b.stats.draft_tokens);  // the small model is wrong at times
      EXPECT_LT(b.stats.decode_steps, a.stats.decode_steps);
      expect_position_stats_consistent(b.stats);
    }
  }
}

TEST(SpeculativeGenerator, PMinCutsUnsureDraftsNotTheOutput) {
  // speculative.p_min ends a draft where the draft model is unsure: greedy output stays plain
  // decoding's (sampled output keeps its distribution: speculative_distribution_tests), fewer
  // tokens are drafted, and a larger share of them is kept.
  const std::vector<int32_t> prompt = tokens(kPrompt);
  auto spec = generator(models().draft.get());
  for (const float temperature : {0.0f, 0.8f}) {
    SCOPED_TRACE(temperature);
    GenerateOptions o = greedy(120);
    o.sampling.temperature = temperature;
    o.sampling.seed = 11;
    o.speculative.draft_max = 6;
    o.speculative.pause_when_slower = false;  // count the steps: not on timing
    std::vector<Output> runs;
    for (const float p_min : {0.0f, 0.5f, 0.9f}) {
      o.speculative.p_min = p_min;
      runs.push_back(run(*spec, prompt, o));
      expect_position_stats_consistent(runs.back().stats);
    }
    if (temperature == 0.0f) {
      EXPECT_EQ(runs[1].ids, runs[0].ids);
      EXPECT_EQ(runs[2].ids, runs[0].ids);
    }
    const auto kept = [](const Output& r) {
      return static_cast<double>(r.stats.accepted_tokens) / std::max(r.stats.draft_tokens, 1);
    };
    EXPECT_GT(runs[1].stats.draft_tokens, 0);
    EXPECT_LT(runs[1].stats.draft_tokens, runs[0].stats.draft_tokens);
    EXPECT_LT(runs[2].stats.draft_tokens, runs[1].stats.draft_tokens);
    EXPECT_GT(kept(runs[1]), kept(runs[0]));
  }
  // A p_min outside [0, 1] is refused.
  GenerateOptions bad = greedy(4);
  bad.speculative.draft_max = 4;
  for (const float p_min : {-0.1f, 1.5f, std::nanf("")}) {
    bad.speculative.p_min = p_min;
    EXPECT_THROW(run(*spec, prompt, bad), Error) << p_min;
  }
}

TEST(SpeculativeGenerator, TargetAsItsOwnDraftIsAlwaysAccepted) {
  // q = p: greedy keeps every draft, and so does sampling (min(1, p / q) = 1).
  const std::vector<int32_t> prompt = tokens(kPrompt);
  auto plain = generator(nullptr);
  auto self = generator(models().target.get());
  for (const float temperature : {0.0f, 0.9f}) {
    GenerateOptions o = greedy(40);
    o.sampling.temperature = temperature;
    o.sampling.seed = 7;
    o.speculative.draft_max = 4;
    o.speculative.pause_when_slower = false;  // count the steps: not on timing
    const Output b = run(*self, prompt, o);
    EXPECT_GT(b.stats.draft_tokens, 0);
    EXPECT_EQ(b.stats.accepted_tokens, b.stats.draft_tokens) << temperature;
    if (temperature == 0.0f) {
      o.speculative.draft_max = 0;
      EXPECT_EQ(b.ids, run(*plain, prompt, o).ids);
    }
  }
}

TEST(SpeculativeGenerator, DraftModelUnderAConstraint) {
  // The draft is drawn under the constraint's mask: its tokens are always allowed, and the output
  // is plain constrained decoding's.
  const std::vector<int32_t> prompt = tokens(kPrompt);
  GenerateOptions o = greedy(40);
  o.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = "(, [a-z]+)+\\."};
  auto plain = generator(nullptr);
  const Output a = run(*plain, prompt, o);
  o.speculative.draft_max = 5;
  o.speculative.pause_when_slower = false;  // count the steps: not on timing
  auto spec = generator(models().draft.get());
  const Output b = run(*spec, prompt, o);
  EXPECT_EQ(b.ids, a.ids);
  EXPECT_EQ(b.text, a.text);
  EXPECT_GT(b.stats.accepted_tokens, 0);
}

TEST(SpeculativeGenerator, ADraftThatCompletesTheConstraintEndsTheOutput) {
  // Prompt lookup drafts what followed " LORD" in the prompt: an end-of-generation token, or
  // " said" — after either the constrained output is complete. Verification stops there (nothing
  // can follow) instead of failing on the empty mask after it; the output is plain decoding's.
  Models& m = models();
  std::vector<int32_t> prompt = tokens("And the LORD said unto Moses, and the");  // <s> And the LORD said ...
  const int32_t lord = prompt[3];
  ASSERT_EQ(m.tokenizer->decode(std::vector<int32_t>{lord}), "LORD");  // " LORD" after other text
  const auto eos = m.tokenizer->vocab().special().eos;
  ASSERT_TRUE(eos.has_value());
  std::vector<int32_t> with_eos = prompt;
  with_eos.insert(with_eos.begin() + 4, *eos);  // And the LORD </s> said unto Moses, and the
  for (const bool ignore_eos : {false, true}) {
    SCOPED_TRACE(ignore_eos ? "ignore_eos" : "eos ends");
    GenerateOptions o = greedy(20);
    o.constraint = {.kind = OutputConstraint::Kind::kRegex,
                    .text = ignore_eos ? " LORD( said)?" : " LORD( said unto Moses)?"};
    o.stop.ignore_eos = ignore_eos;
    o.sampling.logit_bias = {{lord, 50.0f}};  // the first token is " LORD"
    // The draft after " LORD": </s> (ends the output), or " said" (completes " LORD( said)?").
    const std::vector<int32_t>& context = ignore_eos ? prompt : with_eos;
    auto plain = generator(nullptr);
    const Output a = run(*plain, context, o);
    o.speculative.draft_max = 4;
    o.speculative.pause_when_slower = false;  // count the steps: not on timing
    auto spec = generator(nullptr);
    const Output b = run(*spec, context, o);
    EXPECT_EQ(b.ids, a.ids);
    EXPECT_EQ(b.text, a.text);
    EXPECT_EQ(b.stats.finish, a.stats.finish);
    EXPECT_GT(b.stats.draft_tokens, 0);
  }
}

TEST(SpeculativeGenerator, ADraftModelThatThrowsLeavesTheConstraintWhereItWas) {
  // propose() walks the constraint along the draft; a draft model failing part way must not leave
  // it ahead: the next token is the one a fresh decoder picks from the same logits.
  Models& m = models();
  const int32_t n_vocab = m.target->config().n_vocab;
  GenerateOptions o = greedy(10);
  o.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = " And the LORD said unto Moses"};
  o.speculative.draft_max = 4;
  o.speculative.p_min = 0.0f;  // the made-up logits are flat: drafting must not stop for them
  const std::vector<int32_t> prompt = tokens("And");
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) logits[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 101) / 10.0f;
  SequenceDecoder broken(*m.tokenizer, n_vocab, o, prompt);
  std::vector<int32_t> draft;
  std::vector<speculative::Distribution> proposals;
  int calls = 0;
  EXPECT_THROW(broken.propose(
                   logits, 4,
                   [&](int32_t) -> std::span<const float> {
                     if (++calls == 2) throw Error(ErrorCode::kOutOfMemory, "the draft model failed");
                     return logits;
                   },
                   draft, proposals),
               Error);
  SequenceDecoder fresh(*m.tokenizer, n_vocab, o, prompt);
  GeneratedToken a, b;
  for (int step = 0; step < 3; ++step) {
    ASSERT_TRUE(fresh.on_logits(logits, a));
    ASSERT_TRUE(broken.on_logits(logits, b));
    EXPECT_EQ(b.id, a.id) << step;
  }
  EXPECT_EQ(broken.text(), fresh.text());
}

TEST(SpeculativeGenerator, RollbackLeavesTheCacheAsIfTheDraftsWereNeverSeen) {
  // A generation with many rejected drafts; then the next token's logprobs over what the cache
  // holds must equal those of a fresh cache that saw only those tokens.
  for (Model* draft : {models().draft.get(), static_cast<Model*>(nullptr)}) {
    const std::vector<int32_t> prompt = tokens(kPrompt);
    auto spec = generator(draft, /*reuse_prefix=*/true);
    GenerateOptions o = greedy(80);
    o.sampling.temperature = 1.0f;
    o.sampling.seed = 3;
    o.speculative.draft_max = 6;
    o.speculative.p_min = 0.0f;               // unsure drafts too: many rejections
    o.speculative.pause_when_slower = false;  // count the steps: not on timing
    const Output r = run(*spec, prompt, o);
    ASSERT_GT(r.stats.draft_tokens, r.stats.accepted_tokens);  // rejections happened
    std::vector<int32_t> context(spec->cached_tokens().begin(), spec->cached_tokens().end());
    ASSERT_GT(context.size(), prompt.size() + 20);
    // The cache holds the prompt and the output but its last token (never stored), and maybe
    // drafts verification kept past the token limit: kept, they are what the model would say.
    std::vector<int32_t> output = prompt;
    output.insert(output.end(), r.ids.begin(), r.ids.end() - 1);
    ASSERT_GE(context.size(), output.size());
    EXPECT_TRUE(std::equal(output.begin(), output.end(), context.begin()));

    const size_t n_cached = context.size();
    context.push_back(r.ids.back());
    GenerateOptions probe = greedy(1);
    probe.logprobs = 20;
    const Output reused = run(*spec, context, probe);  // runs only the last token on the kept cache
    EXPECT_EQ(reused.stats.cached_tokens, static_cast<int32_t>(n_cached));
    auto fresh = generator(nullptr);
    const Output clean = run(*fresh, context, probe);
    ASSERT_EQ(reused.ids, clean.ids);
    ASSERT_EQ(reused.logprobs.size(), 1u);
    EXPECT_EQ(reused.logprobs[0], clean.logprobs[0]);  // bit for bit
  }
}

// A Q8_0 target cache: speculation still gives plain decoding's tokens (rejected drafts' rows are
// overwritten in place). The draft's cache takes Q8_0 where its heads fit (ember-tiny-draft: 32
// values), F16 where they do not (stories260K: 8), rather than failing.
TEST(SpeculativeGenerator, Q8_0CacheKeepsGreedyOutputAndDraftsFallBackToF16) {
  Models& m = models();
  const std::vector<int32_t> prompt = tokens(kPrompt);
  const auto q8_generator = [&](Model* draft) {
    return std::make_unique<Generator>(*m.target, *m.tokenizer,
                                       GeneratorOptions{.context = 256, .kv_type = DType::kQ8_0, .draft_model = draft},
                                       nullptr);
  };
  GenerateOptions o = greedy(60);
  const Output plain = run(*q8_generator(nullptr), prompt, o);
  o.speculative.draft_max = 6;
  o.speculative.p_min = 0.0f;
  o.speculative.pause_when_slower = false;
  const Output spec = run(*q8_generator(m.draft.get()), prompt, o);
  EXPECT_EQ(spec.ids, plain.ids);
  EXPECT_GT(spec.stats.draft_tokens, spec.stats.accepted_tokens);  // rejections happened
  EXPECT_EQ(DraftModel(*m.draft, 64, DType::kQ8_0, nullptr).kv().k_dtype(), DType::kQ8_0);

  const fs::path file =
      fs::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "models" / "stories260K" / "stories260K.gguf";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is absent: the F16 fallback was not checked";
  ModelOptions options;
  options.context_size = 256;
  const std::unique_ptr<Model> small_heads = Model::load(file.string(), *m.backend, options);
  const DraftModel fallback(*small_heads, 64, DType::kQ8_0, nullptr);
  EXPECT_EQ(fallback.kv().k_dtype(), DType::kF16);
  EXPECT_EQ(fallback.kv().v_dtype(), DType::kF16);
}

TEST(SpeculativeGenerator, DraftOfAnotherVocabularyIsRefused) {
  // A model of another family (512 tokens): the case users meet.
  const fs::path file =
      fs::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "models" / "stories260K" / "stories260K.gguf";
  if (!fs::exists(file)) GTEST_SKIP() << file << " is absent: no model of another vocabulary to try";
  Models& m = models();
  ModelOptions options;
  options.context_size = 256;
  const std::unique_ptr<Model> other = Model::load(file.string(), *m.backend, options);
  try {
    check_draft_vocabulary(*m.target, *other);
    ADD_FAILURE() << "a draft of another vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Generator(*m.target, *m.tokenizer, GeneratorOptions{.context = 64, .draft_model = other.get()}, nullptr),
               Error);
  EXPECT_NO_THROW(check_draft_vocabulary(*m.target, *m.draft));
}

}  // namespace
}  // namespace ember
