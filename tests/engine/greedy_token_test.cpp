// Plain greedy decoding through the model's greedy tokens (Batch::kToken): SequenceDecoder asks
// for logits only when the choice is not their argmax, and the Generator's output through the
// token rows is the logits path's token for token, on the bundled ember-tiny.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/sequence_decoder.h"
#include "speculative_test_support.h"

namespace ember {
namespace {

using namespace test;  // NOLINT: the shared fixtures

const char* const kPromptForStops = "Blessed are the poor in spirit";

bool needs_logits(const GenerateOptions& options) {
  const SequenceDecoder decoder(*models().tokenizer, models().target->config().n_vocab, options, tokens("Hello"));
  return decoder.needs_logits();
}

TEST(GreedyToken, LogitsAreNeededOnlyWhenTheChoiceIsNotTheirArgmax) {
  EXPECT_FALSE(needs_logits(greedy(8)));
  GenerateOptions o = greedy(8);
  o.sampling.temperature = 0.7f;
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.sampling.logit_bias = {{5, 2.0f}};
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.sampling.repeat_penalty = 1.1f;
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.sampling.presence_penalty = 0.5f;
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.sampling.dry_multiplier = 0.8f;
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.logprobs = 0;
  EXPECT_TRUE(needs_logits(o));
  o = greedy(8);
  o.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = "[a-z ]+"};
  EXPECT_TRUE(needs_logits(o));
  // A lazy constraint waiting for its trigger only follows the output.
  o.constraint.triggers = {"<call>"};
  EXPECT_FALSE(needs_logits(o));
  // Steps that are off at their neutral values change nothing.
  o = greedy(8);
  o.sampling.repeat_penalty = 1.0f;
  o.sampling.top_k = 5;
  o.sampling.min_p = 0.2f;
  EXPECT_FALSE(needs_logits(o));
}

// The same generations with logprobs asked for (the logits path; logprobs do not change the
// choice) and without (the model's token rows): the same tokens and text. The model's tokens()
// shows which path the last step took.
TEST(GreedyToken, GeneratorOutputEqualsTheLogitsPath) {
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
TEST(GreedyToken, PromptRowAndStopsOnTheTokenPath) {
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

}  // namespace
}  // namespace ember
