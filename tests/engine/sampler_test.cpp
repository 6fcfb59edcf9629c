// Sampler: greedy picks, reproducible seeds, top-k / top-p cuts, draws that follow the softmax, and
// invalid options rejected.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "ember/error.h"

namespace ember {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_logits(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(n);
  for (float& x : logits) x = normal(rng);
  return logits;
}

int32_t reference_argmax(const std::vector<float>& logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

std::vector<int32_t> draws(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.sample(logits));
  return out;
}

// softmax(logits / temperature) over `allowed` ids, 0 elsewhere.
std::vector<double> softmax_over(const std::vector<float>& logits, float temperature,
                                 const std::vector<int32_t>& allowed) {
  std::vector<double> p(logits.size(), 0.0);
  double max_logit = -INFINITY, total = 0.0;
  for (int32_t id : allowed) max_logit = std::max(max_logit, double{logits[static_cast<size_t>(id)]});
  for (int32_t id : allowed)
    total += p[static_cast<size_t>(id)] = std::exp((logits[static_cast<size_t>(id)] - max_logit) / temperature);
  for (double& x : p) x /= total;
  return p;
}

// Pearson's chi-square of `n` draws against `expected` probabilities; a draw outside them fails.
double chi_square(Sampler& sampler, const std::vector<float>& logits, const std::vector<double>& expected, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int32_t id = sampler.sample(logits);
    EXPECT_GT(expected[static_cast<size_t>(id)], 0.0) << "drew id " << id << ", which has no probability";
    ++counts[static_cast<size_t>(id)];
  }
  double chi2 = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (expected[i] == 0.0) continue;
    const double e = expected[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(Sampler, GreedyIsArgmaxWithTheLowestIdOnTies) {
  for (float temperature : {0.0f, -1.0f}) {
    Sampler sampler({.temperature = temperature, .top_k = 40, .top_p = 0.95f, .seed = 1});
    EXPECT_TRUE(sampler.greedy());
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const std::vector<float> logits = random_logits(1000 + seed, seed);
      EXPECT_EQ(sampler.sample(logits), reference_argmax(logits));
    }
    EXPECT_EQ(sampler.sample(std::vector<float>{1, 3, 2, 3, 3}), 1);
    EXPECT_EQ(sampler.sample(std::vector<float>{5, 5}), 0);
    EXPECT_EQ(sampler.sample(std::vector<float>{kNaN, -1, kNaN, 2, 2}), 3);  // NaN is never the max
    EXPECT_EQ(sampler.sample(std::vector<float>{-kInf, -kInf}), 0);
    EXPECT_EQ(sampler.sample(std::vector<float>{7}), 0);
  }
}

TEST(Sampler, SameSeedGivesTheSameSequenceAndAnotherSeedAnotherOne) {
  const std::vector<float> logits = random_logits(4096, 7);
  for (const SamplerOptions base : {SamplerOptions{}, SamplerOptions{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f},
                                    SamplerOptions{.temperature = 1.5f, .top_k = 0, .top_p = 0.9f}}) {
    SamplerOptions a = base, b = base;
    a.seed = b.seed = 42;
    Sampler s1(a), s2(b);
    const std::vector<int32_t> first = draws(s1, logits, 200);
    EXPECT_EQ(first, draws(s2, logits, 200));
    a.seed = 43;
    Sampler s3(a);
    EXPECT_NE(first, draws(s3, logits, 200));
  }
}

TEST(Sampler, TopKOfOneIsGreedy) {
  Sampler sampler({.temperature = 2.0f, .top_k = 1, .top_p = 1.0f, .seed = 3});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> logits = random_logits(500, seed);
    EXPECT_EQ(sampler.sample(logits), reference_argmax(logits));
  }
  EXPECT_EQ(sampler.sample(std::vector<float>{0, 4, 4, 1}), 1);
}

TEST(Sampler, TinyTopPIsGreedy) {
  for (int32_t top_k : {0, 40}) {
    Sampler sampler({.temperature = 1.0f, .top_k = top_k, .top_p = 1e-6f, .seed = 5});
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const std::vector<float> logits = random_logits(50000, seed);
      EXPECT_EQ(sampler.sample(logits), reference_argmax(logits));
    }
  }
}

// 7 degrees of freedom (8 tokens): P(chi2 > 30) ~ 1e-4; the seed is fixed, so this is not flaky.
constexpr double kChi2Bound7 = 30.0;

TEST(Sampler, DrawsFollowTheSoftmaxWithTemperature) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f};
  const std::vector<int32_t> all = {0, 1, 2, 3, 4, 5, 6, 7};
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    Sampler sampler({.temperature = temperature, .top_k = 0, .top_p = 1.0f, .seed = 11});
    const double chi2 = chi_square(sampler, logits, softmax_over(logits, temperature, all), 200000);
    EXPECT_LT(chi2, kChi2Bound7) << "temperature " << temperature;
  }
}

TEST(Sampler, TopKDrawsFollowTheSoftmaxOfTheKBest) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f};
  Sampler sampler({.temperature = 1.0f, .top_k = 3, .top_p = 1.0f, .seed = 12});
  // 2 degrees of freedom: P(chi2 > 18) ~ 1e-4.
  EXPECT_LT(chi_square(sampler, logits, softmax_over(logits, 1.0f, {4, 5, 1}), 100000), 18.0);
}

TEST(Sampler, TopPKeepsTheFewestTokensHoldingTheMass) {
  // Probabilities (temperature 1) of ids 0..3: 0.5, 0.25, 0.125, 0.125. top_p 0.7 keeps {0, 1};
  // top_p 0.8 keeps {0, 1, 2} (0.75 < 0.8; equal probabilities keep the lower id first). After
  // top_k 3 they are 4/7, 2/7, 1/7: top_p 0.8 keeps {0, 1}, top_p 0.9 keeps {0, 1, 2}.
  const std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  struct Case {
    int32_t top_k;
    float top_p;
    std::vector<int32_t> kept;
  };
  const std::vector<Case> cases = {{0, 0.7f, {0, 1}},    {40, 0.7f, {0, 1}}, {3, 0.7f, {0, 1}},
                                   {0, 0.8f, {0, 1, 2}}, {3, 0.8f, {0, 1}},  {3, 0.9f, {0, 1, 2}}};
  uint64_t seed = 13;
  for (const Case& c : cases) {
    Sampler sampler({.temperature = 1.0f, .top_k = c.top_k, .top_p = c.top_p, .seed = seed++});
    // 1 or 2 degrees of freedom: P(chi2 > 18) < 1.3e-4.
    EXPECT_LT(chi_square(sampler, logits, softmax_over(logits, 1.0f, c.kept), 50000), 18.0)
        << "top_k " << c.top_k << ", top_p " << c.top_p;
  }
}

TEST(Sampler, TopPOverALargeVocabularyGrowsItsCandidates) {
  // A flat vocabulary: top_p 0.5 of 2000 equal logits needs 1000 candidates, past the first scan.
  const std::vector<float> logits(2000, 0.0f);
  Sampler sampler({.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .seed = 15});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 5000; ++i) ++seen[sampler.sample(logits)];
  EXPECT_LT(seen.rbegin()->first, 1000);  // ties keep the lower ids
  EXPECT_GT(seen.rbegin()->first, 980);
  EXPECT_GT(seen.size(), 900u);
}

TEST(Sampler, NaNAndInfiniteLogitsAreNeverDrawn) {
  const std::vector<float> logits = {kNaN, 1.0f, -kInf, 1.0f, kNaN};
  for (int32_t top_k : {0, 2, 5}) {
    Sampler sampler({.temperature = 1.0f, .top_k = top_k, .top_p = 1.0f, .seed = 16});
    for (int i = 0; i < 1000; ++i) {
      const int32_t id = sampler.sample(logits);
      EXPECT_TRUE(id == 1 || id == 3) << id;
    }
  }
  Sampler sampler({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 17});
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, kInf, kInf}), 1);
}

TEST(Sampler, InvalidOptionsThrowInvalidArgument) {
  const std::vector<SamplerOptions> bad = {
      {.temperature = kNaN, .top_k = 40, .top_p = 0.95f, .seed = 0},
      {.temperature = kInf, .top_k = 40, .top_p = 0.95f, .seed = 0},
      {.temperature = 0.8f, .top_k = -1, .top_p = 0.95f, .seed = 0},
      {.temperature = 0.8f, .top_k = 40, .top_p = 0.0f, .seed = 0},
      {.temperature = 0.8f, .top_k = 40, .top_p = -0.5f, .seed = 0},
      {.temperature = 0.8f, .top_k = 40, .top_p = 1.01f, .seed = 0},
      {.temperature = 0.8f, .top_k = 40, .top_p = kNaN, .seed = 0},
  };
  for (const SamplerOptions& options : bad) {
    try {
      Sampler sampler(options);
      ADD_FAILURE() << "accepted temperature " << options.temperature << ", top_k " << options.top_k << ", top_p "
                    << options.top_p;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_NO_THROW(Sampler({.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 0}));
}

}  // namespace
}  // namespace ember
