// SamplerChain::sample() and compute_logprobs allocate nothing once warm, with every step on and
// on the whole-vocabulary paths (top-p alone, XTC, typical, top-n-sigma, mirostat), flat rows too
// (the histogram paths of top-p, typical and a large top-k). Its own
// executable: it links counting_new.cpp (a replacement global operator new).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "engine/logprobs.h"
#include "engine/sampler_chain.h"
#include "support/counting_new.h"

namespace ember {
namespace {

constexpr int32_t kVocab = 20000;

std::vector<float> logits_for(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(-4.0f, 2.5f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  for (int i = 0; i < 50; ++i) logits[rng() % kVocab] = 6.0f + static_cast<float>(i % 7);
  return logits;
}

std::vector<float> flat_logits(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  return logits;
}

std::vector<SamplingParams> configurations() {
  std::vector<SamplingParams> all;
  SamplingParams every;  // every step on, in the default order
  every.penalty_last_n = 64;
  every.repeat_penalty = 1.1f;
  every.presence_penalty = 0.2f;
  every.frequency_penalty = 0.1f;
  every.dry_multiplier = 0.8f;
  every.dry_penalty_last_n = 256;
  every.top_n_sigma = 3.0f;
  every.typical_p = 0.95f;
  every.xtc_probability = 0.5f;
  every.xtc_threshold = 0.05f;
  every.dynatemp_range = 0.3f;
  every.logit_bias = {{5, 2.0f}, {6, -INFINITY}};
  all.push_back(every);
  SamplingParams whole = every;  // the truncation steps on the whole vocabulary, temperature first
  whole.top_k = 0;
  whole.order = {SamplerStep::kTemperature, SamplerStep::kXtc,  SamplerStep::kTopNSigma, SamplerStep::kTypicalP,
                 SamplerStep::kDry,         SamplerStep::kTopP, SamplerStep::kMinP,      SamplerStep::kTopK};
  all.push_back(whole);
  SamplingParams top_p;  // top-p alone over the vocabulary, flat enough for its slow path
  top_p.top_k = 0;
  top_p.min_p = 0.0f;
  top_p.top_p = 0.99f;
  top_p.temperature = 3.0f;
  all.push_back(top_p);
  SamplingParams flat;  // the histogram paths: a large top-k, then typical and top-p on candidates
  flat.top_k = 15000;
  flat.typical_p = 0.9f;
  flat.top_p = 0.9f;
  flat.min_p = 0.0f;
  flat.xtc_probability = 0.5f;
  flat.xtc_threshold = 0.0f;
  all.push_back(flat);
  SamplingParams flat_whole = flat;  // on the whole vocabulary: temperature first, one step each
  flat_whole.order = {SamplerStep::kTemperature, SamplerStep::kTypicalP};
  all.push_back(flat_whole);
  flat_whole.order = {SamplerStep::kTemperature, SamplerStep::kTopK, SamplerStep::kXtc};
  all.push_back(flat_whole);
  SamplingParams mirostat = every;
  mirostat.mirostat = 2;
  all.push_back(mirostat);
  SamplingParams greedy = every;
  greedy.temperature = 0.0f;
  all.push_back(greedy);
  return all;
}

TEST(SamplerAlloc, SampleAllocatesNothingOnceWarm) {
  const std::vector<std::vector<float>> rows = {logits_for(1), logits_for(2), logits_for(3), flat_logits(4),
                                                std::vector<float>(kVocab, 0.0f)};  // one bucket holds all
  for (const SamplingParams& params : configurations()) {
    SamplerChain chain(params, kVocab, std::vector<std::vector<int32_t>>{{13}, {7, 8}});
    std::mt19937 rng(4);
    for (int i = 0; i < 300; ++i) chain.accept(static_cast<int32_t>(rng() % 40));  // repeats for DRY
    std::vector<std::pair<int32_t, double>> distribution;
    distribution.reserve(kVocab);
    for (int i = 0; i < 20; ++i) chain.accept(chain.sample(rows[static_cast<size_t>(i) % rows.size()]));
    const int64_t before = test::allocation_count();
    for (int i = 0; i < 200; ++i) chain.accept(chain.sample(rows[static_cast<size_t>(i) % rows.size()]));
    chain.distribution(rows[0], distribution);
    EXPECT_EQ(test::allocation_count() - before, 0) << "mirostat " << params.mirostat << ", top_k " << params.top_k;
  }
}

TEST(SamplerAlloc, LogprobsAllocateNothingOnceWarm) {
  const std::vector<float> logits = logits_for(9);
  TokenLogprobs out;
  compute_logprobs(logits, 3, 20, out);
  const int64_t before = test::allocation_count();
  for (int i = 0; i < 50; ++i) compute_logprobs(logits, i, 20, out);
  EXPECT_EQ(test::allocation_count() - before, 0);
}

}  // namespace
}  // namespace ember
