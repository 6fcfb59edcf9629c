// Speculative decoding's pure parts: prompt-lookup drafts on crafted histories, and verification
// by modified rejection sampling — greedy keeps exactly the matching drafts; sampled, the first and
// the second emitted token follow the target's distribution (chi-square), with a draft model's
// proposals and with deterministic ones.
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/sampler_chain.h"
#include "sampler_test_util.h"

namespace ember::speculative {
namespace {

using test::chi_square;

using test::kChi2Critical;
constexpr int kTrials = 40000;

TEST(NgramDraft, ProposesWhatFollowedTheLatestLongestMatch) {
  const std::vector<int32_t> h = {1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 2, 3};
  // The last 2 tokens (2 3) occurred at 1 and 7: the latest, at 7, was followed by 7 8 2 3.
  EXPECT_EQ(ngram_draft(h, 1, 2, 3), (std::vector<int32_t>{7, 8, 2}));
  // A longer n first: (8 2 3) never occurred before, (2 3) did.
  EXPECT_EQ(ngram_draft(h, 2, 3, 8), (std::vector<int32_t>{7, 8, 2, 3}));
  // Cut at the history's end and at max_tokens.
  EXPECT_EQ(ngram_draft(h, 2, 2, 1), (std::vector<int32_t>{7}));
  // Nothing matches.
  EXPECT_TRUE(ngram_draft(std::vector<int32_t>{1, 2, 3, 4}, 1, 3, 5).empty());
  EXPECT_TRUE(ngram_draft(std::vector<int32_t>{}, 1, 3, 5).empty());
  EXPECT_TRUE(ngram_draft(h, 2, 2, 0).empty());
  // The longest match wins over a later shorter one.
  const std::vector<int32_t> g = {5, 6, 7, 1, 9, 6, 7, 2, 5, 6, 7};
  EXPECT_EQ(ngram_draft(g, 2, 3, 2), (std::vector<int32_t>{1, 9}));  // (5 6 7) at 0, not (6 7) at 5
  EXPECT_EQ(ngram_draft(g, 1, 2, 2), (std::vector<int32_t>{2, 5}));  // (6 7) latest at 5
}

Distribution one_hot(int32_t token) { return {{token, 1.0}}; }

// Runs n plain (paused) steps of `ms` each; false if the pause ended early.
bool plain_steps(SlowerPause& pause, int n, double ms) {
  for (int i = 0; i < n; ++i) {
    if (!pause.paused()) return false;
    pause.weigh(false, ms, 1);
  }
  return true;
}

TEST(SlowerPause, PausesWhileDraftingIsSlowerPerTokenAndBacksOff) {
  SlowerPause off(false, false);
  EXPECT_FALSE(off.paused());
  for (int i = 0; i < 20; ++i) off.weigh(true, 10.0, 1);
  EXPECT_FALSE(off.paused());

  SlowerPause pause(true, false);
  ASSERT_TRUE(pause.paused());  // one plain step first: what drafting has to beat
  pause.weigh(false, 1.0, 1);
  ASSERT_FALSE(pause.paused());
  // Drafting steps that emit 3 tokens in 2 ms beat 1 ms per token: no pause.
  for (int i = 0; i < 10; ++i) pause.weigh(true, 2.0, 3);
  EXPECT_FALSE(pause.paused());
  // Steps that tried to draft and emitted one token (nothing drafted, or all rejected) cost more
  // than plain ones: a pause of kFirstPauseSteps plain steps, then a fresh try.
  pause.weigh(true, 1.5, 1);
  pause.weigh(true, 1.5, 1);
  ASSERT_TRUE(pause.paused());
  EXPECT_TRUE(plain_steps(pause, SlowerPause::kFirstPauseSteps, 1.0));
  ASSERT_FALSE(pause.paused());
  // Still slower: twice as long, and so on up to kMaxPauseSteps.
  int expected = 2 * SlowerPause::kFirstPauseSteps;
  for (int round = 0; round < 8; ++round) {
    pause.weigh(true, 3.0, 1);
    ASSERT_TRUE(pause.paused()) << round;
    EXPECT_TRUE(plain_steps(pause, expected, 1.0)) << round;
    EXPECT_FALSE(pause.paused()) << round;
    expected = std::min(2 * expected, SlowerPause::kMaxPauseSteps);
  }
  // Paying again resets the back-off.
  pause.weigh(true, 1.0, 4);
  EXPECT_FALSE(pause.paused());
  pause.weigh(true, 3.0, 1);
  ASSERT_TRUE(pause.paused());
  EXPECT_TRUE(plain_steps(pause, SlowerPause::kFirstPauseSteps, 1.0));
}

TEST(SlowerPause, TheCatchUpStepAfterAPauseIsNotWeighed) {
  SlowerPause pause(true, /*catches_up=*/true);
  pause.weigh(false, 1.0, 1);
  pause.weigh(true, 5.0, 1);
  ASSERT_TRUE(pause.paused());
  ASSERT_TRUE(plain_steps(pause, SlowerPause::kFirstPauseSteps, 1.0));
  pause.weigh(true, 50.0, 1);  // the draft model catching up on the paused steps: ignored
  EXPECT_FALSE(pause.paused());
  pause.weigh(true, 1.0, 3);
  EXPECT_FALSE(pause.paused());
}

TEST(TopProbability, IsTheSoftmaxMaximumAtTemperatureOne) {
  const float ln3 = std::log(3.0f);
  EXPECT_NEAR(top_probability(std::vector<float>{0.0f, ln3}), 0.75, 1e-7);
  EXPECT_NEAR(top_probability(std::vector<float>{2.0f, 2.0f, 2.0f, 2.0f}), 0.25, 1e-12);
  EXPECT_NEAR(top_probability(std::vector<float>{-7.0f, 1.0f, -INFINITY}), 1.0 / (1.0 + std::exp(-8.0)), 1e-12);
  EXPECT_EQ(top_probability(std::vector<float>{5.0f}), 1.0);
  EXPECT_EQ(top_probability(std::vector<float>{-INFINITY, -INFINITY}), 0.0);
  EXPECT_EQ(top_probability(std::vector<float>{}), 0.0);
  // Among the allowed tokens only: {1, 3} of {9, 0, 8, ln 3}.
  const std::vector<uint64_t> mask = {0b1010};
  EXPECT_NEAR(top_probability(std::vector<float>{9.0f, 0.0f, 8.0f, ln3}, mask), 0.75, 1e-7);
  EXPECT_EQ(top_probability(std::vector<float>{9.0f, 0.0f, 8.0f, ln3}, std::vector<uint64_t>{0b1000}), 1.0);
  EXPECT_EQ(top_probability(std::vector<float>{9.0f, -INFINITY}, std::vector<uint64_t>{0b10}), 0.0);
  // Logits 20 or more below the top are left out; closer ones count.
  EXPECT_EQ(top_probability(std::vector<float>{0.0f, -25.0f, -30.0f}), 1.0);
  EXPECT_NEAR(top_probability(std::vector<float>{0.0f, -19.0f}), 1.0 / (1.0 + std::exp(-19.0)), 1e-15);
}

TEST(NextDraftLength, GrowsOnFullDraftsKeptShrinksOnRejectionsWithinBounds) {
  EXPECT_EQ(next_draft_length(4, 4, 4, 1, 8), 6);  // kept whole at the full length
  EXPECT_EQ(next_draft_length(4, 4, 2, 1, 8), 3);  // a rejection
  EXPECT_EQ(next_draft_length(4, 2, 2, 1, 8), 4);  // cut short (p_min, a short match) and kept: stays
  EXPECT_EQ(next_draft_length(4, 2, 1, 1, 8), 3);
  EXPECT_EQ(next_draft_length(7, 7, 7, 1, 8), 8);  // bounded above
  EXPECT_EQ(next_draft_length(2, 2, 0, 2, 8), 2);  // and below
  EXPECT_EQ(next_draft_length(1, 1, 0, 0, 8), 1);  // never below 1
}

TEST(SpeculativeVerify, GreedyKeepsExactlyTheMatchingPrefix) {
  std::mt19937_64 rng(1);
  const std::vector<int32_t> draft = {4, 7, 9};
  {
    const std::vector<Distribution> target = {one_hot(4), one_hot(7), one_hot(9), one_hot(2)};
    const Verdict v = verify(draft, {}, target, rng);
    EXPECT_EQ(v.accepted, 3);
    EXPECT_EQ(v.next, 2);  // the target's token after the whole draft
  }
  {
    const std::vector<Distribution> target = {one_hot(4), one_hot(5), one_hot(9), one_hot(2)};
    const Verdict v = verify(draft, {}, target, rng);
    EXPECT_EQ(v.accepted, 1);
    EXPECT_EQ(v.next, 5);  // the target's own choice where the draft went wrong
  }
  {
    // A greedy draft model (one-hot proposals) and a greedy target.
    const std::vector<Distribution> proposals = {one_hot(4), one_hot(7), one_hot(9)};
    const std::vector<Distribution> target = {one_hot(3), one_hot(7), one_hot(9), one_hot(2)};
    const Verdict v = verify(draft, proposals, target, rng);
    EXPECT_EQ(v.accepted, 0);
    EXPECT_EQ(v.next, 3);
  }
  const Verdict empty = verify({}, {}, std::vector<Distribution>{one_hot(6)}, rng);
  EXPECT_EQ(empty.accepted, 0);
  EXPECT_EQ(empty.next, 6);
}

std::vector<double> dense(const Distribution& d, size_t n) {
  std::vector<double> out(n, 0.0);
  for (const auto& [t, p] : d) out[static_cast<size_t>(t)] = p;
  return out;
}

int32_t draw_from(const Distribution& d, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double x = u(rng), sum = 0.0;
  for (const auto& [t, p] : d) {
    sum += p;
    if (x < sum) return t;
  }
  return d.back().first;
}

// Two positions: target p1, p2 (p2 independent of the first token, so each emitted token must
// follow its own p), draft q1, q2 unlike them (one token q gives weight p does not, one p gives
// that q does not). The first and the second emitted tokens are tallied.
TEST(SpeculativeVerify, EmittedTokensFollowTheTargetDistribution) {
  constexpr size_t kVocab = 6;
  const Distribution p1 = {{0, 0.30}, {1, 0.25}, {2, 0.20}, {3, 0.15}, {4, 0.10}};
  const Distribution p2 = {{1, 0.05}, {2, 0.15}, {3, 0.40}, {5, 0.40}};
  const Distribution q1 = {{0, 0.10}, {1, 0.40}, {2, 0.05}, {3, 0.25}, {5, 0.20}};
  const Distribution q2 = {{0, 0.20}, {2, 0.30}, {3, 0.30}, {5, 0.20}};
  const Distribution p3 = {{0, 0.5}, {4, 0.5}};
  for (const bool model : {true, false}) {
    SCOPED_TRACE(model ? "draft model" : "deterministic proposals");
    std::mt19937_64 rng(model ? 11 : 12);
    std::vector<int32_t> first, second;
    int64_t accepted = 0;
    for (int trial = 0; trial < kTrials; ++trial) {
      // A draft model draws from q; deterministic proposals are fixed tokens (one p1 rarely picks).
      const std::vector<int32_t> draft =
          model ? std::vector<int32_t>{draw_from(q1, rng), draw_from(q2, rng)} : std::vector<int32_t>{4, 3};
      const std::vector<Distribution> proposals = {q1, q2};
      const std::vector<Distribution> target = {p1, p2, p3};
      const Verdict v = verify(
          draft, model ? std::span<const Distribution>(proposals) : std::span<const Distribution>(), target, rng);
      accepted += v.accepted;
      std::vector<int32_t> emitted(draft.begin(), draft.begin() + v.accepted);
      emitted.push_back(v.next);
      first.push_back(emitted[0]);
      if (emitted.size() >= 2) second.push_back(emitted[1]);
    }
    EXPECT_LT(chi_square(first, dense(p1, kVocab)), kChi2Critical[4]);
    ASSERT_GT(second.size(), 2000u);
    EXPECT_LT(chi_square(second, dense(p2, kVocab)), kChi2Critical[3]);
    EXPECT_GT(accepted, 0);
    // A wrong rule must show: drawing the next token from p rather than the residual.
    EXPECT_GT(chi_square(first, dense(q1, kVocab)), kChi2Critical[4]);
  }
}

// A copy of the sampler draws verification's coins (XTC); take_rng hands them back, so the next
// step's copy draws new ones: XTC then fires about as often as on the live chain.
TEST(SpeculativeVerify, CopiedSamplerCoinsAdvanceTheChain) {
  SamplingParams p = test::all_off();
  p.xtc_probability = 0.5f;
  p.xtc_threshold = 0.1f;
  p.seed = 7;
  const std::vector<float> logits = {3.0f, 2.9f, 2.8f, 0.0f, -1.0f, -2.0f};
  SamplerChain chain(p, 6, nullptr);
  Distribution out;
  int fired = 0;
  for (int i = 0; i < 400; ++i) {
    SamplerChain probe = chain;
    probe.distribution(logits, out);
    fired += out.size() < 6 ? 1 : 0;  // XTC dropped the top choices
    chain.take_rng(probe);
  }
  EXPECT_GT(fired, 150);
  EXPECT_LT(fired, 250);
}

}  // namespace
}  // namespace ember::speculative
