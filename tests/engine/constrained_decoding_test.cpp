// SequenceDecoder with an output constraint: only allowed tokens are drawn (random logits at
// temperature 1, greedy, NaN rows), the generation ends when the language is complete, logprobs
// stay the model's, and a constraint that does not compile is an error naming its position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "engine/logprobs.h"
#include "engine/sequence_decoder.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tok =
      Tokenizer::from_gguf(GgufFile::open((fs::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf").string()));
  return tok;
}

GenerateOptions constrained(OutputConstraint::Kind kind, std::string text, uint64_t seed) {
  GenerateOptions o;
  o.sampling = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed};
  o.stop.max_tokens = 500;
  o.constraint = {.kind = kind, .text = std::move(text), .strict = false};
  return o;
}

struct Generation {
  std::string text;
  FinishReason finish;
  int32_t tokens;
};

Generation generate(const GenerateOptions& options, uint64_t logit_seed, float scale = 3.0f) {
  const Tokenizer& tok = tiny_tokenizer();
  const int32_t n_vocab = tok.vocab().size();
  SequenceDecoder d(tok, n_vocab, options, {});
  std::mt19937 rng(static_cast<uint32_t>(logit_seed));
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  GeneratedToken token;
  while (!d.finished()) {
    for (float& v : logits) v = normal(rng);
    d.on_logits(logits, token);
  }
  d.take_tail(token);
  return {d.text(), d.stats().finish, d.stats().generated_tokens};
}

TEST(ConstrainedDecoding, GbnfChoiceAlwaysHoldsAndEndsByItself) {
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const Generation r =
        generate(constrained(OutputConstraint::Kind::kGbnf, "root ::= (\"yes\" | \"no\") \"!\"", seed), seed);
    EXPECT_TRUE(r.text == "yes!" || r.text == "no!") << r.text;
    EXPECT_EQ(r.finish, FinishReason::kEndOfGeneration);
    seen.insert(r.text);
  }
  EXPECT_EQ(seen.size(), 2u);  // both branches drawn: the mask did not collapse to one token
}

TEST(ConstrainedDecoding, RegexOutputsMatchUnderRandomLogits) {
  const std::regex re("[0-9]{3}-[a-z]{2,4}( ok)?");
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const Generation r =
        generate(constrained(OutputConstraint::Kind::kRegex, "[0-9]{3}-[a-z]{2,4}( ok)?", seed), seed + 100);
    EXPECT_TRUE(std::regex_match(r.text, re)) << r.text;
    EXPECT_EQ(r.finish, FinishReason::kEndOfGeneration);
  }
}

TEST(ConstrainedDecoding, JsonModeGivesAnObjectWithGreedyAndNanLogits) {
  GenerateOptions o = constrained(OutputConstraint::Kind::kJsonObject, "", 1);
  o.sampling.temperature = 0.0f;  // greedy: the best allowed token each step
  const Generation greedy = generate(o, 3);
  EXPECT_EQ(greedy.finish, FinishReason::kEndOfGeneration) << greedy.text;
  EXPECT_TRUE(nlohmann::json::accept(greedy.text)) << greedy.text;
  EXPECT_EQ(greedy.text.front(), '{');

  // Every allowed logit NaN (a number left only where the grammar forbids, at "z"): nothing can be
  // drawn on merit, the lowest allowed id is taken — still valid.
  const Tokenizer& tok = tiny_tokenizer();
  const GenerateOptions abc = constrained(OutputConstraint::Kind::kGbnf, "root ::= [a-c]{3}", 1);
  SequenceDecoder d(tok, tok.vocab().size(), abc, {});
  std::vector<float> nan_row(static_cast<size_t>(tok.vocab().size()), std::numeric_limits<float>::quiet_NaN());
  const std::vector<int32_t> z = tok.encode("z", {.add_special = false, .parse_special = false});
  ASSERT_FALSE(z.empty());
  std::vector<float> nan_where_allowed = nan_row;
  nan_where_allowed[static_cast<size_t>(z.back())] = 5.0f;
  GeneratedToken token;
  while (!d.finished()) d.on_logits(nan_where_allowed, token);
  d.take_tail(token);
  EXPECT_EQ(d.text().size(), 3u);
  EXPECT_EQ(d.text().find_first_not_of("abc"), std::string::npos) << d.text();

  // Every logit NaN: a broken model, whose request fails rather than print a valid-looking "aaa".
  SequenceDecoder broken(tok, tok.vocab().size(), abc, {});
  try {
    broken.on_logits(nan_row, token);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFormat);
    EXPECT_NE(std::string(e.what()).find("are all NaN or -inf"), std::string::npos) << e.what();
  }
}

TEST(ConstrainedDecoding, IgnoreEosStillEndsWhenNothingCanFollow) {
  GenerateOptions o = constrained(OutputConstraint::Kind::kGbnf, "root ::= \"ab\" \"c\"?", 4);
  o.stop.ignore_eos = true;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    o.sampling.seed = seed;
    const Generation r = generate(o, seed);
    // End tokens are never allowed with ignore_eos, so "ab" always goes on to "abc".
    EXPECT_EQ(r.text, "abc");
    EXPECT_EQ(r.finish, FinishReason::kEndOfGeneration);
  }
}

// A control token inside the language (Mistral's [TOOL_CALLS]; here ember-tiny's BOS "<s>") is
// drawn by the grammar and printed as its text; as a lazy trigger it starts the grammar after it.
TEST(ConstrainedDecoding, ControlTokensOfTheLanguagePrintAsTheirText) {
  const Tokenizer& tok = tiny_tokenizer();
  ASSERT_EQ(tok.encode("<s>", {.add_special = false, .parse_special = true}).size(), 1u);
  GenerateOptions o = constrained(OutputConstraint::Kind::kGbnf, "root ::= \"<s>\" [a-c]{2}", 3);
  o.constraint.control_tokens = {"<s>"};
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const Generation r = generate(o, seed);
    EXPECT_TRUE(r.text.starts_with("<s>")) << r.text;
    EXPECT_EQ(r.text.size(), 5u) << r.text;
  }
  GenerateOptions lazy = constrained(OutputConstraint::Kind::kGbnf, "root ::= \"x\" [0-9]", 3);
  lazy.constraint.triggers = {"<s>"};
  lazy.constraint.trigger_in_grammar = false;
  const Tokenizer& t = tok;
  SequenceDecoder d(t, t.vocab().size(), lazy, {});
  std::vector<float> logits(static_cast<size_t>(t.vocab().size()), 0.0f);
  const int32_t bos = t.encode("<s>", {.add_special = false, .parse_special = true})[0];
  logits[static_cast<size_t>(bos)] = 100.0f;  // the "model" emits the trigger first
  GeneratedToken token;
  ASSERT_TRUE(d.on_logits(logits, token));
  EXPECT_EQ(token.id, bos);
  std::fill(logits.begin(), logits.end(), 0.0f);
  while (!d.finished()) d.on_logits(logits, token);
  d.take_tail(token);
  ASSERT_EQ(d.text().size(), 5u) << d.text();
  EXPECT_TRUE(d.text().starts_with("<s>x")) << d.text();
  EXPECT_TRUE(d.text()[4] >= '0' && d.text()[4] <= '9') << d.text();
}

TEST(ConstrainedDecoding, AnEmptyLanguageEndsAtOnce) {
  const Tokenizer& tok = tiny_tokenizer();
  GenerateOptions o = constrained(OutputConstraint::Kind::kGbnf, "root ::= \"\"", 1);
  o.stop.ignore_eos = true;  // no end token allowed: the decoder must see there is nothing to do
  SequenceDecoder d(tok, tok.vocab().size(), o, {});
  std::vector<float> logits(static_cast<size_t>(tok.vocab().size()), 0.0f);
  GeneratedToken token;
  EXPECT_FALSE(d.on_logits(logits, token));
  EXPECT_EQ(d.stats().finish, FinishReason::kEndOfGeneration);
  EXPECT_EQ(d.text(), "");
}

TEST(ConstrainedDecoding, LogprobsStayTheModelsDistribution) {
  const Tokenizer& tok = tiny_tokenizer();
  const int32_t n_vocab = tok.vocab().size();
  GenerateOptions o = constrained(OutputConstraint::Kind::kGbnf, "root ::= \"z\"+ \".\"", 2);
  o.logprobs = 2;
  SequenceDecoder d(tok, n_vocab, o, {});
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : logits) v = normal(rng);
  GeneratedToken token;
  ASSERT_TRUE(d.on_logits(logits, token));
  TokenLogprobs expected;
  compute_logprobs(logits, token.id, 2, expected);
  EXPECT_FLOAT_EQ(token.logprob, expected.chosen.logprob);
  ASSERT_EQ(token.top.size(), 2u);
  EXPECT_EQ(token.top[0].token, expected.top[0].token);  // the model's best, allowed or not
}

TEST(ConstrainedDecoding, ConstraintsThatDoNotCompileAreErrorsWithTheirPosition) {
  const Tokenizer& tok = tiny_tokenizer();
  const auto message = [&](OutputConstraint::Kind kind, const std::string& text) -> std::string {
    try {
      SequenceDecoder d(tok, tok.vocab().size(), constrained(kind, text, 0), {});
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(OutputConstraint::Kind::kGbnf, "root ::= \"a\"\nx ::= [b-a]").find("grammar:2:"),
            std::string::npos);
  EXPECT_NE(message(OutputConstraint::Kind::kGbnf, "item ::= \"a\"").find("root"), std::string::npos);
  EXPECT_NE(message(OutputConstraint::Kind::kRegex, "(a").find("regex:"), std::string::npos);
  EXPECT_NE(
      message(OutputConstraint::Kind::kJsonSchema, R"({"type": "array", "uniqueItems": true})").find("uniqueItems"),
      std::string::npos);
  EXPECT_NE(message(OutputConstraint::Kind::kJsonSchema, "{not json").find("JSON"), std::string::npos);
}

}  // namespace
}  // namespace ember
