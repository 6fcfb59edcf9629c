// Each step of the sampler chain on crafted logits against float64 expectations: temperature,
// dynamic temperature, top-k, top-p, min-p, typical-p, top-n-sigma, XTC, mirostat v2, logit bias,
// the penalties and their window; the order changes the result where it should.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "engine/sampler_chain.h"
#include "sampler_test_util.h"
#include "support/float_values.h"

namespace ember {
namespace {

using test::all_off;
using test::chain_distribution;
using test::expect_near;
using test::softmax64;

using test::kInf;
constexpr double kTol = 2e-6;  // the chain's exp is float (~2e-7 relative), summed in double

const std::vector<float> kLogits = {3.0f, 2.2f, 1.5f, 0.7f, 0.0f, -0.8f, -2.0f, -3.5f};

std::vector<double> run(const SamplingParams& p, const std::vector<float>& logits) {
  SamplerChain chain(p, static_cast<int32_t>(logits.size()), nullptr);
  return chain_distribution(chain, logits);
}

TEST(SamplerSteps, TemperatureDividesTheLogits) {
  for (const float t : {0.3f, 1.0f, 2.5f}) {
    SamplingParams p = all_off();
    p.temperature = t;
    expect_near(run(p, kLogits), softmax64(kLogits, t), kTol, "temperature");
  }
}

TEST(SamplerSteps, DynamicTemperatureFollowsTheNormalizedEntropy) {
  SamplingParams p = all_off();
  p.temperature = 1.0f;
  p.dynatemp_range = 0.5f;
  p.dynatemp_exponent = 1.5f;
  const std::vector<double> q = softmax64(kLogits, 1.0);
  double entropy = 0.0;
  for (const double x : q) entropy -= x * std::log(x);
  const double t = 0.5 + (1.5 - 0.5) * std::pow(entropy / std::log(8.0), 1.5);
  expect_near(run(p, kLogits), softmax64(kLogits, t), kTol, "dynatemp");
  // After top-k 3 the entropy is over the three kept tokens.
  p.top_k = 3;
  const std::vector<double> q3 = softmax64(kLogits, 1.0, {0, 1, 2});
  double h3 = 0.0;
  for (const double x : q3) h3 -= x > 0 ? x * std::log(x) : 0.0;
  const double t3 = 0.5 + std::pow(h3 / std::log(3.0), 1.5);
  expect_near(run(p, kLogits), softmax64(kLogits, t3, {0, 1, 2}), kTol, "dynatemp after top-k");
}

TEST(SamplerSteps, TopKKeepsTheKBestWithLowerIdsOnTies) {
  SamplingParams p = all_off();
  p.top_k = 3;
  expect_near(run(p, kLogits), softmax64(kLogits, 1.0, {0, 1, 2}), kTol, "top-k 3");
  const std::vector<float> ties = {1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
  p.top_k = 2;
  expect_near(run(p, ties), softmax64(ties, 1.0, {1, 2}), kTol, "top-k ties");
  p.top_k = 100;  // more than the vocabulary: off
  expect_near(run(p, kLogits), softmax64(kLogits, 1.0), kTol, "top-k > n");
}

TEST(SamplerSteps, TopPKeepsTheFewestTokensHoldingTheMass) {
  // Probabilities 0.5, 0.25, 0.125, 0.125: 0.7 keeps {0, 1}; 0.8 keeps {0, 1, 2} (ties: lower id).
  const std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  SamplingParams p = all_off();
  p.top_p = 0.7f;
  expect_near(run(p, logits), softmax64(logits, 1.0, {0, 1}), kTol, "top-p 0.7");
  p.top_p = 0.8f;
  expect_near(run(p, logits), softmax64(logits, 1.0, {0, 1, 2}), kTol, "top-p 0.8");
  // After top-k 3 the mass is the three's: 4/7, 2/7, 1/7; 0.8 keeps {0, 1}.
  p.top_k = 3;
  expect_near(run(p, logits), softmax64(logits, 1.0, {0, 1}), kTol, "top-k then top-p");
}

TEST(SamplerSteps, TopPOverALargeFlatVocabularyGrowsItsSlices) {
  // 2000 equal logits: top-p 0.5 needs 1000 tokens, far past the first heap of 64.
  const std::vector<float> flat(2000, 0.0f);
  SamplingParams p = all_off();
  p.top_p = 0.5f;
  const std::vector<double> d = run(p, flat);
  for (size_t i = 0; i < flat.size(); ++i) EXPECT_NEAR(d[i], i < 1000 ? 1e-3 : 0.0, 1e-9) << i;
  // A peaked one: the first heap holds the mass.
  std::vector<float> peaked(5000, -10.0f);
  peaked[4321] = 10.0f;
  peaked[17] = 9.0f;
  p.top_p = 0.9f;
  const std::vector<double> e = run(p, peaked);  // 0.731 + 0.269 >= 0.9: those two, nothing else
  EXPECT_NEAR(e[4321], 1.0 / (1.0 + std::exp(-1.0)), kTol);
  EXPECT_NEAR(e[17], 1.0 / (1.0 + std::exp(1.0)), kTol);
  EXPECT_EQ(std::count(e.begin(), e.end(), 0.0), 4998);
}

TEST(SamplerSteps, MinPDropsTokensBelowAShareOfTheBest) {
  SamplingParams p = all_off();
  p.min_p = 0.3f;  // keeps p_i >= 0.3 p_max: logit >= 3 + ln 0.3 = 1.796
  expect_near(run(p, kLogits), softmax64(kLogits, 1.0, {0, 1}), kTol, "min-p 0.3");
  p.min_p = 0.2f;  // 3 + ln 0.2 = 1.39
  expect_near(run(p, kLogits), softmax64(kLogits, 1.0, {0, 1, 2}), kTol, "min-p 0.2");
}

// llama.cpp's typical sampling in float64: tokens by |-log p - H|, kept until the mass passes p.
std::vector<int32_t> typical_reference(const std::vector<float>& logits, double mass, double temperature = 1.0) {
  const std::vector<double> q = softmax64(logits, temperature);
  double entropy = 0.0;
  for (const double x : q) entropy -= x * std::log(x);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return std::abs(-std::log(q[static_cast<size_t>(a)]) - entropy) <
           std::abs(-std::log(q[static_cast<size_t>(b)]) - entropy);
  });
  std::vector<int32_t> kept;
  double cumulative = 0.0;
  for (const int32_t id : ids) {
    kept.push_back(id);
    cumulative += q[static_cast<size_t>(id)];
    if (cumulative > mass) break;
  }
  return kept;
}

TEST(SamplerSteps, TypicalKeepsTheTokensClosestToTheEntropy) {
  for (const float mass : {0.2f, 0.5f, 0.9f}) {
    SamplingParams p = all_off();
    p.typical_p = mass;
    const std::vector<int32_t> kept = typical_reference(kLogits, mass);
    expect_near(run(p, kLogits), softmax64(kLogits, 1.0, kept), kTol, "typical");
  }
}

TEST(SamplerSteps, TopNSigmaKeepsLogitsWithinNDeviationsOfTheBest) {
  const std::vector<float> logits = {10.0f, 9.0f, 7.5f, 5.0f, 1.0f, 0.0f, -1.0f, -kInf};
  double mean = 0.0, squares = 0.0;
  for (size_t i = 0; i < 7; ++i) mean += logits[i] / 7.0;
  for (size_t i = 0; i < 7; ++i) squares += (logits[i] - mean) * (logits[i] - mean);
  const double sigma = std::sqrt(squares / 7.0);  // -inf is left out, as llama.cpp does
  for (const float n : {0.5f, 1.0f, 2.0f}) {
    std::vector<int32_t> kept;
    for (int32_t i = 0; i < 7; ++i) {
      if (logits[static_cast<size_t>(i)] >= 10.0 - n * sigma) kept.push_back(i);
    }
    SamplingParams p = all_off();
    p.top_n_sigma = n;
    expect_near(run(p, logits), softmax64(logits, 1.0, kept), kTol, "top-n-sigma");
  }
}

TEST(SamplerSteps, XtcDropsEveryTopChoiceButTheLeastLikely) {
  // Probabilities 0.4, 0.3, 0.2, 0.1: threshold 0.15 makes 0, 1, 2 top choices; 0 and 1 go.
  const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  SamplingParams p = all_off();
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.15f;
  expect_near(run(p, logits), softmax64(logits, 1.0, {2, 3}), kTol, "xtc on the full vocabulary");
  p.min_p = 0.01f;  // the same on candidates (min-p keeps all four before XTC)
  expect_near(run(p, logits), softmax64(logits, 1.0, {2, 3}), kTol, "xtc on candidates");
  p.min_p = 0.0f;
  p.xtc_threshold = 0.35f;  // one top choice: nothing to drop
  expect_near(run(p, logits), softmax64(logits, 1.0), kTol, "xtc with one top choice");
  p.xtc_threshold = 0.15f;
  p.xtc_probability = 0.0f;
  expect_near(run(p, logits), softmax64(logits, 1.0), kTol, "xtc off");
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.6f;  // above 1/2: off (llama.cpp)
  expect_near(run(p, logits), softmax64(logits, 1.0), kTol, "xtc threshold > 0.5");
}

// --- temperature first: the whole-vocabulary paths read scaled values ---------------------------

// n logits spread like a normal(0, sigma) (a sum of four uniforms, so every standard library gives
// the same values).
std::vector<float> spread_logits(size_t n, uint64_t seed, double sigma) {
  std::mt19937_64 rng(seed);
  const auto uniform = [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  std::vector<float> logits(n);
  for (float& x : logits) {
    x = static_cast<float>((uniform() + uniform() + uniform() + uniform() - 2.0) * std::sqrt(3.0) * sigma);
  }
  return logits;
}

// top-p in float64: the fewest best tokens of softmax(logits / t) holding p (ties: lower id).
std::vector<int32_t> top_p_reference(const std::vector<float>& logits, double p, double t) {
  const std::vector<double> q = softmax64(logits, t);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)];
  });
  std::vector<int32_t> kept;
  double cumulative = 0.0;
  for (const int32_t id : ids) {
    kept.push_back(id);
    cumulative += q[static_cast<size_t>(id)];
    if (cumulative >= p) break;
  }
  return kept;
}

// The probe rows: eight crafted logits, and 3000 spread ones (past top-p's first heap of 64, so its
// histogram path runs).
const std::vector<std::vector<float>>& probe_rows() {
  static const std::vector<std::vector<float>> rows = {kLogits, spread_logits(3000, 5, 1.0)};
  return rows;
}

SamplingParams temperature_then(SamplerStep step, float t) {
  SamplingParams p = all_off();
  p.temperature = t;
  p.order = {SamplerStep::kTemperature, step};
  return p;
}

TEST(SamplerSteps, TopPAfterTemperatureReadsTheScaledDistribution) {
  for (const float t : {0.5f, 2.0f}) {
    for (const std::vector<float>& logits : probe_rows()) {
      for (const float mass : {0.5f, 0.9f}) {
        SamplingParams p = temperature_then(SamplerStep::kTopP, t);
        p.top_p = mass;
        const std::vector<int32_t> kept = top_p_reference(logits, mass, t);
        expect_near(run(p, logits), softmax64(logits, t, kept), kTol, "temperature, top-p");
      }
    }
  }
}

TEST(SamplerSteps, TypicalAfterTemperatureReadsTheScaledDistribution) {
  for (const float t : {0.5f, 2.0f}) {
    for (const std::vector<float>& logits : probe_rows()) {
      SamplingParams p = temperature_then(SamplerStep::kTypicalP, t);
      p.typical_p = 0.7f;
      expect_near(run(p, logits), softmax64(logits, t, typical_reference(logits, 0.7, t)), kTol,
                  "temperature, typical");
    }
  }
}

TEST(SamplerSteps, TopNSigmaAfterTemperatureKeepsTheSameTokens) {
  // max/t - n sigma/t: the kept set does not move with the temperature, the probabilities do.
  for (const float t : {0.5f, 2.0f}) {
    for (const std::vector<float>& logits : probe_rows()) {
      double mean = 0.0, squares = 0.0;
      for (const float x : logits) mean += x / static_cast<double>(logits.size());
      for (const float x : logits) squares += (x - mean) * (x - mean);
      const double sigma = std::sqrt(squares / static_cast<double>(logits.size()));
      const double max = *std::max_element(logits.begin(), logits.end());
      std::vector<int32_t> kept;
      for (size_t i = 0; i < logits.size(); ++i) {
        if (logits[i] >= max - 1.0 * sigma) kept.push_back(static_cast<int32_t>(i));
      }
      SamplingParams p = temperature_then(SamplerStep::kTopNSigma, t);
      p.top_n_sigma = 1.0f;
      expect_near(run(p, logits), softmax64(logits, t, kept), kTol, "temperature, top-n-sigma");
    }
  }
}

TEST(SamplerSteps, XtcAfterTemperatureReadsTheScaledDistribution) {
  // kLogits at t = 0.5: probabilities 0.79, 0.16, 0.04, ...: {0, 1} are top choices (>= 0.1);
  // at t = 2: 0.34, 0.23, 0.16, 0.11, 0.08, ...: {0, 1, 2, 3}.
  for (const float t : {0.5f, 2.0f}) {
    for (const std::vector<float>& logits : probe_rows()) {
      const float threshold = logits.size() == kLogits.size() ? 0.1f : 0.001f;
      const std::vector<double> q = softmax64(logits, t);
      std::vector<int32_t> keep, top;
      for (size_t i = 0; i < q.size(); ++i) (q[i] >= threshold ? top : keep).push_back(static_cast<int32_t>(i));
      ASSERT_GE(top.size(), 2u);
      keep.push_back(*std::min_element(top.begin(), top.end(), [&](int32_t a, int32_t b) {
        return logits[static_cast<size_t>(a)] < logits[static_cast<size_t>(b)];
      }));
      SamplingParams p = temperature_then(SamplerStep::kXtc, t);
      p.xtc_probability = 1.0f;
      p.xtc_threshold = threshold;
      expect_near(run(p, logits), softmax64(logits, t, keep), kTol, "temperature, xtc");
    }
  }
}

TEST(SamplerSteps, DryAfterTemperaturePenalizesTheScaledValue) {
  // History 1 2 3 1 2: token 3 would extend a repeat of 2 (allowed 2): its value loses 1.5, i.e.
  // its logit 1.5 t.
  for (const float t : {0.5f, 2.0f}) {
    for (const std::vector<float>& logits : probe_rows()) {
      SamplingParams p = temperature_then(SamplerStep::kDry, t);
      p.dry_multiplier = 1.5f;
      SamplerChain chain(p, static_cast<int32_t>(logits.size()), std::vector<std::vector<int32_t>>{});
      for (const int32_t token : {1, 2, 3, 1, 2}) chain.accept(token);
      std::vector<float> expected = logits;
      expected[3] -= 1.5f * t;
      expect_near(chain_distribution(chain, logits), softmax64(expected, t), kTol, "temperature, dry");
    }
  }
}

TEST(SamplerSteps, MirostatV2TruncatesBySurpriseAndLearnsMu) {
  SamplingParams p = all_off();
  p.mirostat = 2;
  p.mirostat_tau = 2.0f;  // mu starts at 4: keep p >= 1/16
  p.mirostat_eta = 0.25f;
  p.seed = 5;
  SamplerChain chain(p, static_cast<int32_t>(kLogits.size()), nullptr);
  EXPECT_FLOAT_EQ(chain.mirostat_mu(), 4.0f);
  const std::vector<double> q = softmax64(kLogits, 1.0);
  std::vector<int32_t> kept;
  for (int32_t i = 0; i < 8; ++i) {
    if (q[static_cast<size_t>(i)] >= 1.0 / 16) kept.push_back(i);
  }
  ASSERT_EQ(kept, (std::vector<int32_t>{0, 1, 2}));
  const std::vector<double> expected = softmax64(kLogits, 1.0, kept);
  expect_near(chain_distribution(chain, kLogits), expected, kTol, "mirostat");
  EXPECT_FLOAT_EQ(chain.mirostat_mu(), 4.0f);  // distribution() does not learn
  float mu = 4.0f;
  for (int step = 0; step < 20; ++step) {
    std::vector<int32_t> keep;
    const std::vector<double> all = softmax64(kLogits, 1.0);
    for (int32_t i = 0; i < 8; ++i) {
      if (-std::log2(all[static_cast<size_t>(i)]) <= mu) keep.push_back(i);
    }
    if (keep.empty()) keep.push_back(0);
    const std::vector<double> renormalized = softmax64(kLogits, 1.0, keep);
    const int32_t token = chain.sample(kLogits);
    ASSERT_GT(renormalized[static_cast<size_t>(token)], 0.0) << "drew a truncated token at step " << step;
    mu -= 0.25f * static_cast<float>(-std::log2(renormalized[static_cast<size_t>(token)]) - 2.0);
    EXPECT_NEAR(chain.mirostat_mu(), mu, 1e-4) << step;
  }
  chain.reset();
  EXPECT_FLOAT_EQ(chain.mirostat_mu(), 4.0f);
}

TEST(SamplerSteps, LogitBiasAddsAndMinusInfinityBans) {
  SamplingParams p = all_off();
  p.logit_bias = {{7, 6.0f}, {0, -kInf}, {1, 0.5f}, {1, 0.25f}};  // repeated ids add up
  std::vector<float> biased = kLogits;
  biased[7] += 6.0f;
  biased[1] += 0.75f;
  expect_near(run(p, kLogits), softmax64(biased, 1.0, {1, 2, 3, 4, 5, 6, 7}), kTol, "logit bias");
  p.temperature = 0.0f;  // greedy sees the bias too: id 1 (2.95) beats id 7 (2.5)
  SamplerChain greedy(p, 8, nullptr);
  EXPECT_EQ(greedy.sample(kLogits), 1);
}

TEST(SamplerSteps, PenaltiesFollowLlamaCppOverTheLastNTokens) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 1.0f, 0.0f, 3.0f};
  SamplingParams p = all_off();
  p.penalty_last_n = 4;
  p.repeat_penalty = 2.0f;
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 0.125f;
  SamplerChain chain(p, 6, nullptr);
  // History 5 5 0 1 1 2: the window is the last four, 0 1 1 2 (the 5s fell out of it).
  for (const int32_t t : {5, 5, 0, 1, 1, 2}) chain.accept(t);
  std::vector<float> expected = logits;
  expected[0] = 2.0f / 2 - 0.125f - 0.25f;       // positive: divided; once
  expected[1] = -1.0f * 2 - 2 * 0.125f - 0.25f;  // negative: multiplied; twice
  expected[2] = 0.5f / 2 - 0.125f - 0.25f;
  expect_near(chain_distribution(chain, logits), softmax64(expected, 1.0), kTol, "penalties");
  // One more token: 0 leaves the window, 3 enters.
  chain.accept(3);
  expected = logits;
  expected[1] = -1.0f * 2 - 2 * 0.125f - 0.25f;
  expected[2] = 0.5f / 2 - 0.125f - 0.25f;
  expected[3] = 1.0f / 2 - 0.125f - 0.25f;
  expect_near(chain_distribution(chain, logits), softmax64(expected, 1.0), kTol, "penalties, window moved");
  chain.reset();  // no history: no penalty
  expect_near(chain_distribution(chain, logits), softmax64(logits, 1.0), kTol, "after reset");
  // -1: the whole history.
  p.penalty_last_n = -1;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  SamplerChain all(p, 6, nullptr);
  for (const int32_t t : {5, 0, 1, 1, 2, 2, 2, 2, 2, 2}) all.accept(t);
  expected = logits;
  expected[5] = 1.5f;
  expected[0] = 1.0f;
  expected[1] = -2.0f;
  expected[2] = 0.25f;
  expect_near(chain_distribution(all, logits), softmax64(expected, 1.0), kTol, "whole history");
}

TEST(SamplerSteps, TheOrderChangesTheResultWhereItShould) {
  // min-p 0.1 keeps {0, 1} of logits 0, -2, -4 at temperature 1; at temperature 2 first, all three.
  const std::vector<float> logits = {0.0f, -2.0f, -4.0f};
  SamplingParams p = all_off();
  p.min_p = 0.1f;
  p.temperature = 2.0f;
  p.order = {SamplerStep::kMinP, SamplerStep::kTemperature};
  expect_near(run(p, logits), softmax64(logits, 2.0, {0, 1}), kTol, "min-p then temperature");
  p.order = {SamplerStep::kTemperature, SamplerStep::kMinP};
  expect_near(run(p, logits), softmax64(logits, 2.0), kTol, "temperature then min-p");
  // A step left out of the order does not run.
  p.order = {SamplerStep::kTemperature};
  p.top_k = 1;
  expect_near(run(p, logits), softmax64(logits, 2.0), kTol, "top-k not in the order");
  // top-k then top-p differs from top-p then top-k: 0.5, 0.25, 0.125, 0.125 with top-p 0.8, top-k 3.
  const std::vector<float> quarter = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  SamplingParams q = all_off();
  q.top_k = 3;
  q.top_p = 0.8f;
  q.order = {SamplerStep::kTopK, SamplerStep::kTopP};
  expect_near(run(q, quarter), softmax64(quarter, 1.0, {0, 1}), kTol, "top-k, top-p");
  q.order = {SamplerStep::kTopP, SamplerStep::kTopK};
  expect_near(run(q, quarter), softmax64(quarter, 1.0, {0, 1, 2}), kTol, "top-p, top-k");
}

}  // namespace
}  // namespace ember
