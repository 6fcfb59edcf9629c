// `ember perplexity`'s arithmetic without a model: the chunk and strided-window plans, the
// log-softmax NLL and the accumulator's mean, perplexity and uncertainty.
#include "cli/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ember::cli {
namespace {

// Every text token index scored by the plan, in order.
std::vector<int64_t> scored_tokens(const std::vector<PerplexityWindow>& windows) {
  std::vector<int64_t> scored;
  for (const PerplexityWindow& w : windows) {
    for (int64_t t = w.score_begin; t < w.end; ++t) scored.push_back(t);
  }
  return scored;
}

std::vector<int64_t> range(int64_t first, int64_t end) {
  std::vector<int64_t> v;
  for (int64_t t = first; t < end; ++t) v.push_back(t);
  return v;
}

TEST(PerplexityPlan, ChunksScoreTheSecondHalfOfEachChunkAsLlamaPerplexity) {
  // 10 tokens, ctx 4: two chunks; rows ctx/2 .. ctx-2 (= 2) predict token 3 of each chunk.
  const std::vector<PerplexityWindow> w = plan_chunks(10, 4, 0, true);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].begin, 0);
  EXPECT_EQ(w[0].end, 4);
  EXPECT_EQ(w[1].begin, 4);
  EXPECT_EQ(w[1].end, 8);
  EXPECT_TRUE(w[0].bos_first);
  EXPECT_EQ(scored_tokens(w), (std::vector<int64_t>{3, 7}));
  // Odd ctx: ctx - ctx/2 - 1 tokens per chunk.
  const std::vector<PerplexityWindow> odd = plan_chunks(7, 7, 0, false);
  ASSERT_EQ(odd.size(), 1u);
  EXPECT_FALSE(odd[0].bos_first);
  EXPECT_EQ(scored_tokens(odd), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(plan_chunks(256 * 3 + 255, 256, 0, true).size(), 3u);
  for (const PerplexityWindow& c : plan_chunks(1000, 256, 0, true)) EXPECT_EQ(c.scored(), 127);
  EXPECT_EQ(plan_chunks(3, 3, 0, true).at(0).scored(), 1);
}

TEST(PerplexityPlan, ChunksStopAtTheLimit) {
  EXPECT_EQ(plan_chunks(100, 10, 3, true).size(), 3u);
  EXPECT_EQ(plan_chunks(100, 10, 30, true).size(), 10u);
}

TEST(PerplexityPlan, StridedWindowsScoreEveryTokenButTheFirstOnce) {
  for (int32_t ctx : {2, 3, 8, 16}) {
    for (int32_t stride = 1; stride <= ctx; ++stride) {
      for (int64_t n : {2, 3, 7, 8, 9, 31, 64}) {
        SCOPED_TRACE(testing::Message() << "ctx " << ctx << " stride " << stride << " n " << n);
        const std::vector<PerplexityWindow> w = plan_strided(n, ctx, stride, 0);
        ASSERT_FALSE(w.empty());
        // Stride = ctx: a lone last token would be a window's first, not scored: no window for it.
        EXPECT_EQ(w.back().end, stride == ctx && (n - 1) % ctx == 0 ? n - 1 : n);
        for (size_t k = 0; k < w.size(); ++k) {
          EXPECT_EQ(w[k].begin, static_cast<int64_t>(k) * stride);
          EXPECT_LE(w[k].end - w[k].begin, ctx);
          EXPECT_GT(w[k].score_begin, w[k].begin);  // a token is scored with a token before it
          EXPECT_GE(w[k].scored(), 1);
          EXPECT_FALSE(w[k].bos_first);
        }
        if (stride < ctx) {
          EXPECT_EQ(scored_tokens(w), range(1, n));
        } else {
          // Disjoint windows: each window's first token has nothing before it.
          std::vector<int64_t> expected;
          for (int64_t t = 1; t < n; ++t) {
            if (t % ctx != 0) expected.push_back(t);
          }
          EXPECT_EQ(scored_tokens(w), expected);
        }
      }
    }
  }
}

TEST(PerplexityPlan, StridedWindowsAsInTheHuggingFaceGuide) {
  // n 10, ctx 4, stride 2: [0,4) scores 1..3; [2,6) scores 4,5; [4,8) 6,7; [6,10) 8,9.
  const std::vector<PerplexityWindow> w = plan_strided(10, 4, 2, 0);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].score_begin, 1);
  EXPECT_EQ(w[1].score_begin, 4);
  EXPECT_EQ(w[3].begin, 6);
  EXPECT_EQ(w[3].score_begin, 8);
  // A text within one window: one window whatever the stride.
  EXPECT_EQ(plan_strided(5, 8, 1, 0).size(), 1u);
  EXPECT_EQ(plan_strided(5, 8, 1, 0)[0].end, 5);
  // Stride = ctx: [4,8) scores 5..7, the partial last window [8,11) 9 and 10.
  const std::vector<PerplexityWindow> tail = plan_strided(11, 4, 4, 0);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[2].end, 11);
  EXPECT_EQ(tail[2].score_begin, 9);
  EXPECT_EQ(plan_strided(100, 4, 1, 5).size(), 5u);
}

TEST(PerplexityNll, IsTheNegativeLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(token_nll(logits, 0), std::log(z) - 1.0, 1e-12);
  EXPECT_NEAR(token_nll(logits, 2), std::log(z) - 3.0, 1e-12);
  // Large logits do not overflow.
  const std::vector<float> big = {1000.0f, 1000.0f};
  EXPECT_NEAR(token_nll(big, 1), std::log(2.0), 1e-12);
}

TEST(PerplexityNll, AccumulatorGivesLlamaCppsUncertainty) {
  NllAccumulator a;
  EXPECT_EQ(a.count(), 0);
  EXPECT_EQ(a.mean_error(), 0.0);
  const std::vector<double> values = {1.0, 2.0, 4.0, 1.5};
  for (double v : values) a.add(v);
  const double m = 8.5 / 4;
  double m2 = 0;
  for (double v : values) m2 += v * v / 4;
  EXPECT_DOUBLE_EQ(a.mean(), m);
  EXPECT_NEAR(a.mean_error(), std::sqrt((m2 - m * m) / 3), 1e-12);
  EXPECT_NEAR(a.ppl(), std::exp(m), 1e-12);
  EXPECT_NEAR(a.ppl_error(), std::exp(m) * a.mean_error(), 1e-12);
  // Merging accumulators is adding their values.
  NllAccumulator b, c;
  b.add(1.0);
  b.add(2.0);
  c.add(4.0);
  c.add(1.5);
  b.add(c);
  EXPECT_EQ(b.count(), 4);
  EXPECT_DOUBLE_EQ(b.mean(), a.mean());
  EXPECT_DOUBLE_EQ(b.mean_error(), a.mean_error());
  // One value, or all equal: no spread to report.
  NllAccumulator one;
  one.add(3.0);
  EXPECT_EQ(one.mean_error(), 0.0);
}

}  // namespace
}  // namespace ember::cli
