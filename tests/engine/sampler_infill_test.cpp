// The infill step (llama.cpp's "infill" sampler, for code completion) on a small vocabulary with
// crafted logits, against float64 expectations worked out by hand: the end-of-generation collapse,
// tokens that begin another's text merged, the two thresholds and the end-of-turn fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/sampler_chain.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "sampler_test_util.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

using test::all_off;
using test::chain_distribution;
using test::expect_near;
using test::softmax64;

// 0 "<|endoftext|>" (control: EOS, no text), 1 "re", 2 "ret", 3 "return", 4 "x", 5 "y", 6 "z",
// 7 "w", 8 "v", 9 "u"; with `eot`, 10 "<eot>" named the end-of-turn token.
Tokenizer infill_vocab(bool eot = false) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  std::vector<std::string> tokens = {"<|endoftext|>", "re", "ret", "return", "x", "y", "z", "w", "v", "u"};
  std::vector<int32_t> types = {3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  if (eot) {
    tokens.push_back("<eot>");
    types.push_back(3);
    w.add<uint32_t>("tokenizer.ggml.eot_token_id", 10);
  }
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_array<int32_t>("tokenizer.ggml.token_type", types);
  const std::vector<std::string> merges = {"r e", "re t"};
  w.add_string_array("tokenizer.ggml.merges", merges);
  w.add<uint32_t>("tokenizer.ggml.eos_token_id", 0);
  return Tokenizer::from_gguf(GgufFile::parse(w.write_to_memory(), "infill.gguf"));
}

// Logits whose softmax is `p` (p > 0 everywhere it matters; a tiny value stands for "almost none").
std::vector<float> logits_of(const std::vector<double>& p) {
  std::vector<float> out;
  for (const double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

std::vector<double> infill_distribution(const Tokenizer& tokenizer, const std::vector<float>& logits) {
  SamplingParams p = all_off();
  p.order = {SamplerStep::kInfill};
  SamplerChain chain(p, static_cast<int32_t>(logits.size()), &tokenizer);
  return chain_distribution(chain, logits);
}

constexpr double kInfillTol = 2e-6;  // the chain's exp is float, summed in double

// Enough end-of-generation mass ends the answer: 3 * 0.1 * 10 candidates > 0.9.
TEST(SamplerInfill, EndOfGenerationTakesOverWhenLikelyEnough) {
  const Tokenizer t = infill_vocab();
  const std::vector<float> logits = logits_of({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1});
  std::vector<double> expected(10, 0.0);
  expected[0] = 1.0;
  expect_near(infill_distribution(t, logits), expected, kInfillTol, "collapse");
}

// "re" (0.30) takes "ret" (0.25) and "return" (0.20): 0.75, and nothing else reaches 0.2 but the
// end of generation, which always stays. The draw weighs the survivors by their own logits.
TEST(SamplerInfill, TokensThatBeginAnothersTextAreOneChoice) {
  const Tokenizer t = infill_vocab();
  const std::vector<double> p = {0.001, 0.30, 0.25, 0.20, 0.15, 0.099, 0.0, 0.0, 0.0, 0.0};
  std::vector<float> logits = logits_of(p);
  for (size_t i = 6; i < logits.size(); ++i) logits[i] = -INFINITY;
  expect_near(infill_distribution(t, logits), softmax64(logits, 1.0, {0, 1}), kInfillTol, "merged");
  // The likelier keeps the sum: with "ret" above "re", "ret" absorbs "re", then "return".
  const std::vector<double> q = {0.001, 0.25, 0.30, 0.20, 0.15, 0.099, 0.0, 0.0, 0.0, 0.0};
  std::vector<float> logits_q = logits_of(q);
  for (size_t i = 6; i < logits_q.size(); ++i) logits_q[i] = -INFINITY;
  expect_near(infill_distribution(t, logits_q), softmax64(logits_q, 1.0, {0, 2}), kInfillTol, "the likelier keeps");
}

// Two text tokens pass 0.2 (0.45 and 0.25, "x" and "y"; no prefixes); renormalized over what is
// left (with the end of generation's 0.004) they pass 1/3, so both stay.
TEST(SamplerInfill, TextTokensAboveTheThresholdsStay) {
  const Tokenizer t = infill_vocab();
  const std::vector<double> p = {0.004, 0.0, 0.0, 0.0, 0.45, 0.25, 0.1, 0.1, 0.05, 0.046};
  std::vector<float> logits = logits_of(p);
  for (size_t i = 1; i < 4; ++i) logits[i] = -INFINITY;
  expect_near(infill_distribution(t, logits), softmax64(logits, 1.0, {0, 4, 5}), kInfillTol, "two stay");
  // 0.6 and 0.21 pass 0.2 (0.18 does not); renormalized over them and the end's 0.004, 0.21 / 0.814
  // is below 1/3: "x" alone with the end.
  const std::vector<double> r = {0.004, 0.0, 0.0, 0.0, 0.6, 0.21, 0.18, 0.006, 0.0, 0.0};
  std::vector<float> logits_r = logits_of(r);
  for (const size_t i : {1, 2, 3, 8, 9}) logits_r[i] = -INFINITY;
  expect_near(infill_distribution(t, logits_r), softmax64(logits_r, 1.0, {0, 4}), kInfillTol, "second threshold");
}

// No text token reaches 0.2: the end of turn (here the EOS) alone.
TEST(SamplerInfill, NothingLikelyEnoughEndsTheAnswer) {
  const Tokenizer t = infill_vocab();
  const std::vector<float> logits = logits_of({0.0001, 0.0, 0.0, 0.0, 0.17, 0.17, 0.17, 0.17, 0.16, 0.1599});
  std::vector<float> adjusted = logits;
  for (size_t i = 1; i < 4; ++i) adjusted[i] = -INFINITY;
  std::vector<double> expected(10, 0.0);
  expected[0] = 1.0;
  expect_near(infill_distribution(t, adjusted), expected, kInfillTol, "fallback");
  // The end-of-turn token before the EOS, where both are candidates.
  const Tokenizer with_eot = infill_vocab(/*eot=*/true);
  std::vector<float> eleven = adjusted;
  eleven.push_back(std::log(0.0001f));
  std::vector<double> to_eot(11, 0.0);
  to_eot[10] = 1.0;
  expect_near(infill_distribution(with_eot, eleven), to_eot, kInfillTol, "end of turn first");
  // An end token the set no longer has (banned by a grammar or ignore_eos) is not brought back:
  // the likeliest token stays.
  adjusted[0] = -INFINITY;
  std::vector<double> likeliest(10, 0.0);
  likeliest[4] = 1.0;  // the first of the 0.17s (the better id on ties)
  expect_near(infill_distribution(t, adjusted), likeliest, kInfillTol, "no end token left");
}

// The name llama.cpp's clients send, in their order; without a tokenizer the step does nothing.
TEST(SamplerInfill, NamedInfillAndNoTokenizer) {
  const std::vector<SamplerStep> order = parse_sampler_order("top_k;top_p;infill");
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[2], SamplerStep::kInfill);
  EXPECT_EQ(sampler_step_name(SamplerStep::kInfill), "infill");
  SamplingParams p = all_off();
  p.order = {SamplerStep::kInfill};
  const std::vector<float> logits = logits_of({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1});
  SamplerChain chain(p, 10, nullptr);
  expect_near(chain_distribution(chain, logits), softmax64(logits, 1.0), kInfillTol, "no tokenizer");
}

}  // namespace
}  // namespace ember
