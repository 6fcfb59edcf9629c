// DRY: the penalty of each token that would extend a repeat (a brute-force oracle on random
// histories), sequence breakers of one and of several tokens, the look-back window, breakers
// from text through a real tokenizer, and DRY inside the chain.
#include "engine/sampler_dry.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/sampler_chain.h"
#include "sampler_test_util.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

SamplingParams dry_params(float multiplier = 0.8f, float base = 1.75f, int32_t allowed = 2, int32_t last_n = -1) {
  SamplingParams p = test::all_off();
  p.dry_multiplier = multiplier;
  p.dry_base = base;
  p.dry_allowed_length = allowed;
  p.dry_penalty_last_n = last_n;
  return p;
}

std::map<int32_t, float> penalties(DryPenalty& dry, const std::vector<int32_t>& history) {
  std::map<int32_t, float> out;
  for (const auto& [token, amount] : dry.compute(history)) {
    EXPECT_FALSE(out.contains(token)) << "token " << token << " twice";
    out[token] = amount;
  }
  return out;
}

TEST(Dry, PenalizesTheTokenThatWouldExtendARepeat) {
  DryPenalty dry(dry_params(), 16, {});
  // "1 2 3 4 1 2 3": the suffix 1 2 3 (3 tokens) was followed by 4 before.
  EXPECT_EQ(penalties(dry, {1, 2, 3, 4, 1, 2, 3}), (std::map<int32_t, float>{{4, 0.8f * 1.75f}}));
  // A repeat of exactly allowed_length (2) costs the multiplier alone; shorter ones nothing.
  EXPECT_EQ(penalties(dry, {7, 2, 3, 4, 1, 2, 3}), (std::map<int32_t, float>{{4, 0.8f}}));
  EXPECT_TRUE(penalties(dry, {7, 8, 3, 4, 1, 2, 3}).empty());
  // Two earlier continuations: each token gets its own longest repeat.
  EXPECT_EQ(penalties(dry, {1, 2, 3, 5, 9, 2, 3, 6, 1, 2, 3}),
            (std::map<int32_t, float>{{5, 0.8f * 1.75f}, {6, 0.8f}}));
  // Nothing when the history is no longer than allowed_length.
  EXPECT_TRUE(penalties(dry, {3, 3}).empty());
}

TEST(Dry, SequenceBreakersCutTheRepeat) {
  // "5 1 2 3 4 8 5 1 2 3": the repeat 5 1 2 3 would continue with 4 (length 4: 0.8 * 1.75^2).
  const std::vector<int32_t> history = {5, 1, 2, 3, 4, 8, 5, 1, 2, 3};
  DryPenalty none(dry_params(), 16, {});
  EXPECT_EQ(penalties(none, history), (std::map<int32_t, float>{{4, 0.8f * 1.75f * 1.75f}}));
  DryPenalty eight(dry_params(), 16, {{8}});  // before the repeat: no effect
  EXPECT_EQ(penalties(eight, history), (std::map<int32_t, float>{{4, 0.8f * 1.75f * 1.75f}}));
  DryPenalty one(dry_params(), 16, {{1}});  // inside it: only "2 3" counts
  EXPECT_EQ(penalties(one, history), (std::map<int32_t, float>{{4, 0.8f}}));
  DryPenalty two(dry_params(), 16, {{2}});  // only "3": shorter than allowed
  EXPECT_TRUE(penalties(two, history).empty());
  // A two-token breaker "1 2" ends after 2: only "3" is left.
  DryPenalty pair(dry_params(), 16, {{1, 2}});
  EXPECT_TRUE(penalties(pair, history).empty());
  DryPenalty other_pair(dry_params(), 16, {{1, 9}});  // "1 9" never occurs: no effect
  EXPECT_EQ(penalties(other_pair, history), (std::map<int32_t, float>{{4, 0.8f * 1.75f * 1.75f}}));
  // A token that is itself a breaker is never penalized.
  DryPenalty four(dry_params(), 16, {{4}});
  EXPECT_TRUE(penalties(four, {5, 1, 2, 3, 4, 7, 5, 1, 2, 3}).empty());
}

TEST(Dry, LooksBackOnlyOverItsWindow) {
  const std::vector<int32_t> history = {1, 2, 3, 4, 9, 9, 7, 1, 2, 3};
  DryPenalty all(dry_params(0.8f, 1.75f, 2, -1), 16, {});
  EXPECT_EQ(penalties(all, history), (std::map<int32_t, float>{{4, 0.8f * 1.75f}}));
  DryPenalty ten(dry_params(0.8f, 1.75f, 2, 10), 16, {});
  EXPECT_EQ(penalties(ten, history), (std::map<int32_t, float>{{4, 0.8f * 1.75f}}));
  DryPenalty nine(dry_params(0.8f, 1.75f, 2, 9), 16, {});  // "2 3 4 ... 1 2 3": repeat of 2
  EXPECT_EQ(penalties(nine, history), (std::map<int32_t, float>{{4, 0.8f}}));
  DryPenalty six(dry_params(0.8f, 1.75f, 2, 6), 16, {});
  EXPECT_TRUE(penalties(six, history).empty());
}

TEST(Dry, MatchesABruteForceOracleOnRandomHistories) {
  std::mt19937 rng(3);
  for (int round = 0; round < 200; ++round) {
    const int32_t alphabet = 2 + round % 4;
    std::uniform_int_distribution<int32_t> token(0, alphabet - 1);
    std::vector<int32_t> history(1 + rng() % 60);
    for (int32_t& t : history) t = token(rng);
    const int32_t allowed = 1 + round % 3;
    DryPenalty dry(dry_params(1.0f, 2.0f, allowed), alphabet, {});
    // Oracle: for each earlier position j, the longest run ending at j equal to the history's end.
    std::map<int32_t, int32_t> longest;
    const auto n = static_cast<int32_t>(history.size());
    for (int32_t j = 0; j + 1 < n; ++j) {
      int32_t len = 0;
      while (len <= j && history[static_cast<size_t>(j - len)] == history[static_cast<size_t>(n - 1 - len)]) ++len;
      if (len >= allowed && n > allowed) {
        const int32_t next = history[static_cast<size_t>(j + 1)];
        longest[next] = std::max(longest[next], len);
      }
    }
    std::map<int32_t, float> expected;
    for (const auto& [t, len] : longest) expected[t] = std::pow(2.0f, static_cast<float>(len - allowed));
    EXPECT_EQ(penalties(dry, history), expected) << "round " << round;
  }
}

TEST(Dry, HugeRepeatsStayFinite) {
  DryPenalty dry(dry_params(1.0f, 3.0f, 2), 4, {});
  const std::vector<int32_t> history(500, 1);
  const auto p = penalties(dry, history);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(std::isfinite(p.at(1)));
}

TEST(Dry, ThePenaltySaturatesBelowFloatMax) {
  // multiplier * base^exponent past float's range (2 * 1.75^158 > FLT_MAX; 0.5 * 3^81 has 3^81
  // itself beyond it; a huge multiplier leaves little room): the exponent is clamped, the penalty
  // stays finite.
  const std::vector<int32_t> history(600, 1);
  for (const auto& [multiplier, base] :
       {std::pair{2.0f, 1.75f}, std::pair{0.5f, 3.0f}, std::pair{1e30f, 2.0f}, std::pair{FLT_MAX, 1.5f}}) {
    DryPenalty dry(dry_params(multiplier, base, 2), 4, {});
    const auto p = penalties(dry, history);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_TRUE(std::isfinite(p.at(1))) << multiplier << " " << base;
    EXPECT_GT(p.at(1), 1e30f) << multiplier << " " << base;
  }
  DryPenalty near_one(dry_params(2.0f, 1.0001f, 2), 4, {});  // far from the clamp: exact
  EXPECT_FLOAT_EQ(penalties(near_one, history).at(1), 2.0f * std::pow(1.0001f, 597.0f));
  // In the chain: a +inf logit stays certain (inf - inf would be NaN, and greedy would skip it);
  // a finite favourite loses to the others.
  for (const float temperature : {0.0f, 1.0f}) {
    SamplingParams p = dry_params(2.0f, 1.75f, 2);
    p.temperature = temperature;
    SamplerChain chain(p, 4, std::vector<std::vector<int32_t>>{});
    for (const int32_t t : history) chain.accept(t);
    EXPECT_EQ(chain.sample(std::vector<float>{0.0f, INFINITY, 0.0f, 0.0f}), 1);
    const std::vector<float> favour_one = {0.0f, 50.0f, 0.0f, 0.0f};
    EXPECT_NE(chain.sample(favour_one), 1);
    if (temperature > 0.0f) {
      const std::vector<double> d = test::chain_distribution(chain, favour_one);
      EXPECT_EQ(d[1], 0.0);
      for (const size_t i : {0u, 2u, 3u}) EXPECT_NEAR(d[i], 1.0 / 3.0, 1e-6);
    }
  }
}

TEST(Dry, InTheChainItLowersTheRepeatingToken) {
  const std::vector<float> logits(8, 0.0f);
  SamplerChain chain(dry_params(), 8, std::vector<std::vector<int32_t>>{});
  for (const int32_t t : {1, 2, 3, 4, 1, 2, 3}) chain.accept(t);
  std::vector<float> expected = logits;
  expected[4] -= 0.8f * 1.75f;
  test::expect_near(test::chain_distribution(chain, logits), test::softmax64(expected, 1.0), 2e-6, "dry in the chain");
  // DRY applies in greedy mode too, and only when it is in the order.
  SamplingParams greedy = dry_params(10.0f);
  greedy.temperature = 0.0f;
  SamplerChain g(greedy, 8, std::vector<std::vector<int32_t>>{});
  for (const int32_t t : {1, 2, 3, 4, 1, 2, 3}) g.accept(t);
  std::vector<float> favour_four(8, 0.0f);
  favour_four[4] = 1.0f;
  EXPECT_NE(g.sample(favour_four), 4);
  greedy.order = {SamplerStep::kTopK};
  SamplerChain off(greedy, 8, std::vector<std::vector<int32_t>>{});
  for (const int32_t t : {1, 2, 3, 4, 1, 2, 3}) off.accept(t);
  EXPECT_EQ(off.sample(favour_four), 4);
}

TEST(Dry, BreakersFromTextThroughARealVocabulary) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const Tokenizer tokenizer =
      Tokenizer::from_gguf(GgufFile::open((data / "models/stories260K/stories260K.gguf").string()));
  const std::vector<std::string> breakers = {"\n", "ly"};
  const std::vector<std::vector<int32_t>> sequences = dry_breaker_sequences(tokenizer, breakers);
  ASSERT_FALSE(sequences.empty());
  std::string piece;
  for (const std::vector<int32_t>& s : sequences) {
    piece.clear();
    tokenizer.append_piece(s.front(), true, piece);
    if (s.size() == 1) {
      EXPECT_TRUE(piece.find('\n') != std::string::npos || piece.find("ly") != std::string::npos) << piece;
    } else {
      EXPECT_EQ(piece.back(), 'l') << "a token ending with the start of \"ly\", then the rest: " << piece;
    }
  }
  // The byte token of "\n" is a one-token breaker.
  const std::vector<TokenId> newline = tokenizer.encode("\n", {.add_special = false});
  ASSERT_FALSE(newline.empty());
  EXPECT_NE(std::find(sequences.begin(), sequences.end(), std::vector<int32_t>{newline.back()}), sequences.end());
}

}  // namespace
}  // namespace ember
