// select_top_candidates (the model's host-path and the sampler's top-k) against a full stable sort
// in Batch::kTopK's order, on random rows with ties, NaN, ±0 and infinities, lengths around the
// 16-value skip blocks, and every k of short rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/top_candidates.h"

namespace ember {
namespace {

// The spec: every entry (NaN as -inf), stably sorted by the larger logit; stable keeps lower ids
// first among equal logits (-0 equals +0).
std::vector<TopCandidate> sorted_candidates(const std::vector<float>& x) {
  std::vector<TopCandidate> all;
  for (size_t i = 0; i < x.size(); ++i) {
    all.push_back({std::isnan(x[i]) ? -std::numeric_limits<float>::infinity() : x[i], static_cast<int32_t>(i)});
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const TopCandidate& a, const TopCandidate& b) { return a.logit > b.logit; });
  return all;
}

std::vector<float> random_row(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> kind(0, 19);
  std::uniform_int_distribution<int> coarse(-6, 6);  // few distinct values: many ties
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(n);
  for (float& v : x) {
    switch (kind(rng)) {
      case 0: v = std::numeric_limits<float>::quiet_NaN(); break;
      case 1: v = -std::numeric_limits<float>::infinity(); break;
      case 2: v = 0.0f; break;
      case 3: v = -0.0f; break;
      case 4: v = coarse(rng) == 6 ? std::numeric_limits<float>::infinity() : 1.0f; break;
      default: v = kind(rng) < 10 ? static_cast<float>(coarse(rng)) : normal(rng); break;
    }
  }
  return x;
}

void expect_top(const std::vector<float>& x, size_t k, const std::string& what) {
  std::vector<TopCandidate> got(k + 1, TopCandidate{1234.0f, -7});  // one guard entry past k
  select_top_candidates(x, k, got.data());
  const std::vector<TopCandidate> want = sorted_candidates(x);
  for (size_t i = 0; i < k; ++i) {
    ASSERT_EQ(got[i].id, want[i].id) << what << " k " << k << " place " << i;
    ASSERT_EQ(std::memcmp(&got[i].logit, &want[i].logit, sizeof(float)), 0)
        << what << " k " << k << " place " << i << ": " << got[i].logit << " vs " << want[i].logit;
  }
  EXPECT_EQ(got[k].id, -7) << what << ": wrote past k";
}

TEST(TopCandidates, EqualAStableSortOfTheRow) {
  std::mt19937 rng(11);
  for (const size_t n :
       {size_t{1}, size_t{2}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, size_t{47}, size_t{64}}) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> x = random_row(n, rng);
      for (size_t k = 1; k <= n; ++k) expect_top(x, k, "n " + std::to_string(n));
    }
  }
  for (const size_t n : {size_t{1000}, size_t{4099}, size_t{32000}}) {
    const std::vector<float> x = random_row(n, rng);
    for (const size_t k : {size_t{1}, size_t{2}, size_t{40}, size_t{256}}) expect_top(x, k, "n " + std::to_string(n));
  }
}

// A row rising to its end beats the skip on every block; a falling one lets it skip all of them.
TEST(TopCandidates, MonotoneRowsKeepTheirEnds) {
  std::vector<float> rising(1000), falling(1000);
  for (size_t i = 0; i < rising.size(); ++i) {
    rising[i] = static_cast<float>(i);
    falling[i] = -static_cast<float>(i);
  }
  expect_top(rising, 0, "k 0 writes nothing");
  for (const size_t k : {size_t{1}, size_t{5}, size_t{17}}) {
    expect_top(rising, k, "rising");
    expect_top(falling, k, "falling");
  }
}

}  // namespace
}  // namespace ember
