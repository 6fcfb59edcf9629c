// select_experts, the router's choice: the k most probable experts of each row, ties to the lower
// index, in decreasing order, weights renormalized on request; DeepSeek's selection bias, groups and
// weight scale; gate_router_logits' softmax and sigmoid.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model/moe.h"

namespace ember {
namespace {

TEST(Moe, SelectsTheMostProbableInDecreasingOrder) {
  const std::vector<float> probs = {0.10f, 0.40f, 0.05f, 0.30f, 0.15f,   // row 0
                                    0.50f, 0.02f, 0.18f, 0.20f, 0.10f};  // row 1
  std::vector<int32_t> experts(4);
  std::vector<float> weights(4);
  select_experts(probs.data(), 2, 5, 2, false, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{1, 3, 0, 3}));  // expert ids within each row
  EXPECT_EQ(weights, (std::vector<float>{0.40f, 0.30f, 0.50f, 0.20f}));
  select_experts(probs.data(), 2, 5, 2, true, experts.data(), weights.data());
  EXPECT_FLOAT_EQ(weights[0], 0.40f / 0.70f);
  EXPECT_FLOAT_EQ(weights[1], 0.30f / 0.70f);
  EXPECT_FLOAT_EQ(weights[2], 0.50f / 0.70f);
  EXPECT_FLOAT_EQ(weights[3], 0.20f / 0.70f);
}

TEST(Moe, TiesGoToTheLowerExpert) {
  const std::vector<float> probs = {0.1f, 0.3f, 0.3f, 0.3f};
  std::vector<int32_t> experts(3);
  std::vector<float> weights(3);
  select_experts(probs.data(), 1, 4, 2, false, experts.data(), weights.data());
  EXPECT_EQ(experts[0], 1);
  EXPECT_EQ(experts[1], 2);
  select_experts(probs.data(), 1, 4, 3, false, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{1, 2, 3}));
}

TEST(Moe, OneOrEveryExpert) {
  const std::vector<float> probs = {0.2f, 0.1f, 0.4f, 0.3f};
  std::vector<int32_t> experts(4);
  std::vector<float> weights(4);
  select_experts(probs.data(), 1, 4, 1, true, experts.data(), weights.data());
  EXPECT_EQ(experts[0], 2);
  EXPECT_FLOAT_EQ(weights[0], 1.0f);
  select_experts(probs.data(), 1, 4, 4, false, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{2, 3, 0, 1}));
}

// Random rows of 64 experts (probabilities rounded to a coarse grid, so ties are common) against a
// stable sort of each row.
TEST(Moe, MatchesAStableSortOnRandomRows) {
  constexpr int32_t kExperts = 64, kRows = 200;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(0, 15);
  std::vector<float> probs(static_cast<size_t>(kRows) * kExperts);
  for (float& p : probs) p = static_cast<float>(level(rng)) / 16.0f;
  for (int32_t k : {1, 2, 7, 64}) {
    SCOPED_TRACE(k);
    std::vector<int32_t> experts(static_cast<size_t>(kRows * k));
    std::vector<float> weights(static_cast<size_t>(kRows * k));
    select_experts(probs.data(), kRows, kExperts, k, false, experts.data(), weights.data());
    for (int32_t r = 0; r < kRows; ++r) {
      const float* row = probs.data() + static_cast<size_t>(r) * kExperts;
      std::vector<int32_t> order(kExperts);
      for (int32_t e = 0; e < kExperts; ++e) order[static_cast<size_t>(e)] = e;
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
      for (int32_t i = 0; i < k; ++i) {
        ASSERT_EQ(experts[static_cast<size_t>(r * k + i)], order[static_cast<size_t>(i)]) << "row " << r;
        ASSERT_EQ(weights[static_cast<size_t>(r * k + i)], row[order[static_cast<size_t>(i)]]);
      }
    }
  }
}

// The bias decides which experts, not how much: the weights are the unbiased probabilities, then
// normalized (by their sum), then scaled.
TEST(Moe, ABiasChoosesButTheProbabilitiesWeigh) {
  const std::vector<float> probs = {0.9f, 0.8f, 0.2f, 0.1f};
  const std::vector<float> bias = {0.0f, 0.0f, 1.0f, 0.65f};  // biased: 0.9, 0.8, 1.2, 0.75
  std::vector<int32_t> experts(2);
  std::vector<float> weights(2);
  ExpertRouting routing{.n_expert = 4, .k = 2, .bias = bias.data()};
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{2, 0}));
  EXPECT_EQ(weights, (std::vector<float>{0.2f, 0.9f}));
  routing.normalize = true;
  routing.scale = 2.5f;
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  EXPECT_FLOAT_EQ(weights[0], 0.2f / 1.1f * 2.5f);
  EXPECT_FLOAT_EQ(weights[1], 0.9f / 1.1f * 2.5f);
  routing.scale = 1.0f;  // (1 and 0 are no scale)
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  EXPECT_FLOAT_EQ(weights[0], 0.2f / 1.1f);
}

// Tiny probabilities: the sum is clamped to 2^-14 before dividing (llama.cpp's), so the weights stay small.
TEST(Moe, TheNormalizedSumIsClampedAwayFromZero) {
  const std::vector<float> probs = {1e-6f, 3e-6f, 2e-6f};
  std::vector<int32_t> experts(2);
  std::vector<float> weights(2);
  select_experts(probs.data(), 1, ExpertRouting{.n_expert = 3, .k = 2, .normalize = true}, experts.data(),
                 weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{1, 2}));
  EXPECT_FLOAT_EQ(weights[0], 3e-6f / 6.103515625e-5f);
  EXPECT_FLOAT_EQ(weights[1], 2e-6f / 6.103515625e-5f);
}

// Group-limited choice: 8 experts in 4 groups of 2, a row chooses within the 2 groups whose two
// (biased) probabilities sum highest, even over a better single expert elsewhere.
TEST(Moe, GroupsLimitTheChoice) {
  //                              group 0     group 1     group 2     group 3
  const std::vector<float> probs = {0.9f, 0.0f, 0.5f, 0.5f, 0.4f, 0.4f, 0.3f, 0.2f};
  std::vector<int32_t> experts(3);
  std::vector<float> weights(3);
  ExpertRouting routing{.n_expert = 8, .k = 3, .n_group = 4, .n_group_used = 2};
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  // Group sums 0.9, 1.0, 0.8, 0.5: groups 1 and 0; expert 0 then 2, 3 (a tie: the lower first).
  EXPECT_EQ(experts, (std::vector<int32_t>{0, 2, 3}));
  const std::vector<float> bias = {0.0f, 0.0f, 0.0f, 0.0f, 0.1f, 0.1f, 0.0f, 0.0f};  // group 2 sums 1.0 too
  routing.bias = bias.data();
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  // Groups 1 and 2 tie at 1.0 and beat group 0: experts 2, 3, 4 (0.5 each biased, the lower first).
  EXPECT_EQ(experts, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(weights, (std::vector<float>{0.5f, 0.5f, 0.4f}));
  routing.n_group = 0;  // no groups: the best three anywhere (biased 0.9, 0.5, 0.5, 0.5, 0.5 ...)
  select_experts(probs.data(), 1, routing, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{0, 2, 3}));
}

TEST(Moe, GatingIsASoftmaxOrASigmoid) {
  CpuBackendOptions options;
  options.n_threads = 1;
  CpuBackend backend(options);
  std::vector<float> logits = {0.5f, -1.0f, 2.0f};
  gate_router_logits(backend, ExpertGating::kSigmoid, logits.data(), 1, 3);
  EXPECT_FLOAT_EQ(logits[0], 1.0f / (1.0f + std::exp(-0.5f)));
  EXPECT_FLOAT_EQ(logits[1], 1.0f / (1.0f + std::exp(1.0f)));
  EXPECT_FLOAT_EQ(logits[2], 1.0f / (1.0f + std::exp(-2.0f)));
  logits = {0.5f, -1.0f, 2.0f};
  gate_router_logits(backend, ExpertGating::kSoftmax, logits.data(), 1, 3);
  const float sum = std::exp(0.5f) + std::exp(-1.0f) + std::exp(2.0f);
  EXPECT_NEAR(logits[0], std::exp(0.5f) / sum, 1e-6);
  EXPECT_NEAR(logits[2], std::exp(2.0f) / sum, 1e-6);
}

}  // namespace
}  // namespace ember
