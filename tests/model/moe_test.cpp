// select_experts, the router's choice: the k most probable experts of each row, ties to the lower
// index, in decreasing order, weights renormalized on request.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace ember
