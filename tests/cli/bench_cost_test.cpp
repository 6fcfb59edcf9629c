// `ember bench`'s prefill FLOP count: matmul weights (less the output matrix) and each layer's
// attention over the positions its tokens see, sliding windows included.
#include <gtest/gtest.h>

#include "cli/bench_cost.h"

namespace ember::cli {
namespace {

TEST(BenchCost, PrefillFlopsCountWindowsPerLayer) {
  ModelCost cost;
  cost.matmul_params = 1000;
  cost.output_params = 100;
  cost.attention = {{10, 0}, {10, 4}};  // a global layer and a window of 4
  // n = 8: the global layer's tokens see 1..8 positions (mean 4.5); the windowed one's
  // 1, 2, 3, 4, 4, 4, 4, 4 (mean 3.25).
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 + 10 * 3.25);
  // A window at least as long as the prompt changes nothing.
  for (int64_t window : {8, 100}) {
    cost.attention[1].window = window;
    EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 * 2) << "window " << window;
  }
  cost.attention[1].window = 1;  // each token sees only itself
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 8), 1800.0 + 10 * 4.5 + 10 * 1.0);
  EXPECT_DOUBLE_EQ(prefill_flop_per_token(cost, 1), 1800.0 + 10 + 10);
}

}  // namespace
}  // namespace ember::cli
