// Helpers of the sampler chain tests: parameters with every step off, float64 softmax references,
// the chain's distribution as a map, and Pearson's chi-square of seeded draws.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "engine/sampler_chain.h"

namespace ember::test {

// Temperature 1 and every step off: the chain draws from softmax(logits).
inline SamplingParams all_off() {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.dry_sequence_breakers.clear();
  return p;
}

// softmax(logits / temperature) over `keep` (all when empty), in float64; 0 elsewhere.
inline std::vector<double> softmax64(const std::vector<float>& logits, double temperature,
                                     const std::vector<int32_t>& keep = {}) {
  std::vector<int32_t> ids = keep;
  if (ids.empty()) {
    for (size_t i = 0; i < logits.size(); ++i) ids.push_back(static_cast<int32_t>(i));
  }
  double max = -INFINITY;
  for (const int32_t id : ids) max = std::max(max, double{logits[static_cast<size_t>(id)]});
  std::vector<double> p(logits.size(), 0.0);
  double total = 0.0;
  for (const int32_t id : ids) {
    total += p[static_cast<size_t>(id)] = std::exp((logits[static_cast<size_t>(id)] - max) / temperature);
  }
  for (double& x : p) x /= total;
  return p;
}

// The chain's distribution as a dense vector over the vocabulary.
inline std::vector<double> chain_distribution(SamplerChain& chain, const std::vector<float>& logits) {
  std::vector<std::pair<int32_t, double>> d;
  chain.distribution(logits, d);
  std::vector<double> dense(logits.size(), 0.0);
  for (const auto& [id, p] : d) dense[static_cast<size_t>(id)] = p;
  return dense;
}

inline void expect_near(const std::vector<double>& actual, const std::vector<double>& expected, double tolerance,
                        const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance) << what << ": token " << i;
  }
}

// Critical values of chi-square at p = 0.001, by degrees of freedom (a correct sampler fails once
// in a thousand seeds; the seeds are fixed, so the tests are deterministic).
inline constexpr double kChi2Critical[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12};

// Pearson's chi-square statistic of `draws` against `expected` (ids with expected 0 must not come).
inline double chi_square(const std::vector<int32_t>& draws, const std::vector<double>& expected) {
  std::vector<int> counts(expected.size(), 0);
  for (const int32_t id : draws) ++counts[static_cast<size_t>(id)];
  double chi2 = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0.0) {
      if (counts[i] > 0) return INFINITY;
      continue;
    }
    const double e = expected[i] * static_cast<double>(draws.size());
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

}  // namespace ember::test
