// Logprobs: the log-softmax of the raw logits against float64, the top-N in order with ties to
// the lower id, and huge, -inf, +inf and NaN logits.
#include "engine/logprobs.h"
#include "support/float_values.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace ember {
namespace {

using test::kInf;
using test::kNaN;

std::vector<double> log_softmax64(const std::vector<float>& x) {
  double max = -INFINITY;
  for (const float v : x) max = std::max(max, double{v});
  double total = 0.0;
  for (const float v : x) total += std::exp(v - max);
  std::vector<double> out;
  for (const float v : x) out.push_back(v - max - std::log(total));
  return out;
}

TEST(Logprobs, MatchTheFloat64LogSoftmax) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (const size_t n : {1ul, 7ul, 1000ul, 151936ul}) {
    std::vector<float> logits(n);
    for (float& x : logits) x = normal(rng);
    const std::vector<double> expected = log_softmax64(logits);
    TokenLogprobs out;
    for (const int32_t chosen : {0, static_cast<int32_t>(n / 2), static_cast<int32_t>(n - 1)}) {
      compute_logprobs(logits, chosen, 5, out);
      EXPECT_EQ(out.chosen.token, chosen);
      EXPECT_NEAR(out.chosen.logprob, expected[static_cast<size_t>(chosen)], 2e-5) << n;
    }
    ASSERT_EQ(out.top.size(), std::min<size_t>(5, n));
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(out.top.size()), order.end(),
                      [&](size_t a, size_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (size_t i = 0; i < out.top.size(); ++i) {
      EXPECT_EQ(out.top[i].token, static_cast<int32_t>(order[i]));
      EXPECT_NEAR(out.top[i].logprob, expected[order[i]], 2e-5);
    }
    double mass = 0.0;
    for (const double lp : expected) mass += std::exp(lp);
    EXPECT_NEAR(mass, 1.0, 1e-9);
  }
}

TEST(Logprobs, TopNIsBestFirstWithTiesToTheLowerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f, 3.0f};
  TokenLogprobs out;
  compute_logprobs(logits, 4, 4, out);
  ASSERT_EQ(out.top.size(), 4u);
  EXPECT_EQ(out.top[0].token, 1);
  EXPECT_EQ(out.top[1].token, 3);
  EXPECT_EQ(out.top[2].token, 5);
  EXPECT_EQ(out.top[3].token, 2);
  EXPECT_EQ(out.top[0].logprob, out.top[1].logprob);
  compute_logprobs(logits, 0, 0, out);
  EXPECT_TRUE(out.top.empty());
  compute_logprobs(logits, 0, 100, out);  // clamped to the vocabulary
  EXPECT_EQ(out.top.size(), logits.size());
  EXPECT_EQ(out.top.back().token, 4);
}

TEST(Logprobs, HugeInfiniteAndNaNLogits) {
  TokenLogprobs out;
  // Huge finite values: max-subtracted, no overflow.
  compute_logprobs(std::vector<float>{3e38f, 3e38f - 3e32f, -3e38f}, 0, 3, out);
  EXPECT_FLOAT_EQ(out.chosen.logprob, 0.0f);
  EXPECT_NEAR(out.top[1].logprob, -3e32f, 1e31f);  // 3e32 below the best (its exp underflows to 0)
  EXPECT_EQ(out.top[2].logprob, -kInf);            // 6e38 below: past float's range
  // -inf and NaN: probability 0, never above a live token.
  const std::vector<float> masked = {kNaN, 0.0f, -kInf, 0.0f, kNaN};
  compute_logprobs(masked, 0, 5, out);
  EXPECT_EQ(out.chosen.logprob, -kInf);
  EXPECT_EQ(out.top[0].token, 1);
  EXPECT_EQ(out.top[1].token, 3);
  EXPECT_NEAR(out.top[0].logprob, std::log(0.5), 1e-6);
  for (size_t i = 2; i < 5; ++i) EXPECT_EQ(out.top[i].logprob, -kInf);
  compute_logprobs(masked, 2, 1, out);
  EXPECT_EQ(out.chosen.logprob, -kInf);
  // +inf: the infinite ones share everything.
  compute_logprobs(std::vector<float>{1.0f, kInf, 2.0f, kInf}, 3, 2, out);
  EXPECT_NEAR(out.chosen.logprob, std::log(0.5), 1e-6);
  EXPECT_EQ(out.top[0].token, 1);
  compute_logprobs(std::vector<float>{1.0f, kInf, 2.0f, kInf}, 0, 2, out);
  EXPECT_EQ(out.chosen.logprob, -kInf);
  // Nothing live: every logprob is -inf, never NaN.
  compute_logprobs(std::vector<float>{-kInf, kNaN}, 1, 2, out);
  EXPECT_EQ(out.chosen.logprob, -kInf);
  for (const TokenLogprob& t : out.top) EXPECT_EQ(t.logprob, -kInf);
}

}  // namespace
}  // namespace ember
