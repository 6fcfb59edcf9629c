// Speculative decoding keeps the target's distribution: many seeds of a short sampled generation
// on ember-tiny, with ember-tiny-draft and with prompt lookup, and the tokens of the speculative
// step against the exact distribution from a direct forward pass (chi-square). Release only
// (label model): thousands of generations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/sampler_chain.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "speculative_test_support.h"

namespace ember {
namespace {

using namespace test;  // NOLINT: the shared fixtures

// The exact distribution a SamplerChain with `params` draws from after `context`, by `model` (one
// forward pass over a fresh cache).
std::vector<double> exact_distribution(Model& model, const std::vector<int32_t>& context,
                                       const SamplingParams& params) {
  KvCache kv(model.config(), model.kv_options(256));
  const SeqId seq = kv.add_sequence();
  Batch batch;
  for (size_t i = 0; i < context.size(); ++i) {
    batch.add(context[i], static_cast<int32_t>(i), seq, i + 1 == context.size());
  }
  const std::span<const float> logits = model.forward(batch, kv);
  SamplerChain chain(params, model.config().n_vocab, models().tokenizer.get());
  for (const int32_t t : context) chain.accept(t);
  std::vector<std::pair<int32_t, double>> d;
  chain.distribution(logits, d);
  std::vector<double> dense(logits.size(), 0.0);
  for (const auto& [id, p] : d) dense[static_cast<size_t>(id)] = p;
  return dense;
}

// Pearson's chi-square of observed counts against expected probabilities (one pair per outcome,
// every outcome with probability > 0 listed), outcomes under 5 expected draws pooled into one
// bin. True when below the critical value at p = 0.001 (Wilson-Hilferty's approximation).
bool fits(const std::map<int64_t, int>& counts, const std::map<int64_t, double>& expected, std::string& detail) {
  int n = 0;
  for (const auto& [outcome, c] : counts) {
    n += c;
    if (!expected.contains(outcome)) {
      detail = "outcome " + std::to_string(outcome) + " drawn but impossible";
      return false;
    }
  }
  double chi2 = 0.0, pooled_expected = 0.0;
  int pooled_count = 0, bins = 0;
  for (const auto& [outcome, p] : expected) {
    const auto it = counts.find(outcome);
    const int c = it == counts.end() ? 0 : it->second;
    const double e = p * n;
    if (e < 5.0) {
      pooled_expected += e;
      pooled_count += c;
      continue;
    }
    chi2 += (c - e) * (c - e) / e;
    ++bins;
  }
  if (pooled_expected > 0.0) {
    chi2 += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / pooled_expected;
    ++bins;
  }
  const double df = std::max(bins - 1, 1);
  const double z = 3.09;  // p = 0.001
  const double critical = df * std::pow(1.0 - 2.0 / (9.0 * df) + z * std::sqrt(2.0 / (9.0 * df)), 3.0);
  detail = "chi2 " + std::to_string(chi2) + ", critical " + std::to_string(critical) + ", " + std::to_string(bins) +
           " bins, " + std::to_string(n) + " draws";
  return chi2 < critical;
}

std::map<int64_t, double> sparse(const std::vector<double>& p) {
  std::map<int64_t, double> out;
  for (size_t id = 0; id < p.size(); ++id) {
    if (p[id] > 0.0) out[static_cast<int64_t>(id)] = p[id];
  }
  return out;
}

TEST(SpeculativeDistribution, SampledOutputKeepsTheTargetDistribution) {
  // Many seeds of a 3-token generation. The first token comes from the prompt's step; the second
  // and third from the speculative step that drafts after it (its first and second position).
  // Given the likely first token, the second must follow the target's exact distribution, and the
  // (second, third) pair the exact joint one: with the draft model (proposals q != p, so both
  // acceptance and the residual draw are exercised) and with prompt lookup. The draft model's own
  // distribution must not fit (the test can fail).
  Models& m = models();
  // Repeated, so prompt lookup drafts too (what followed "unto them" the first time).
  const std::vector<int32_t> prompt =
      tokens("Then said Jesus unto them, Go ye into the city. Then said Jesus unto them");
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.02f;
  const std::vector<double> p1 = exact_distribution(*m.target, prompt, params);
  const auto t1 = static_cast<int32_t>(std::max_element(p1.begin(), p1.end()) - p1.begin());
  std::vector<int32_t> context = prompt;
  context.push_back(t1);
  const std::vector<double> p2 = exact_distribution(*m.target, context, params);
  const std::vector<double> q2 = exact_distribution(*m.draft, context, params);
  // The joint distribution of (second, third): outcome second * n_vocab + third.
  const int64_t n_vocab = m.target->config().n_vocab;
  std::map<int64_t, double> p23;
  for (const auto& [second, p] : sparse(p2)) {
    context.push_back(static_cast<int32_t>(second));
    for (const auto& [third, p_third] : sparse(exact_distribution(*m.target, context, params))) {
      p23[second * n_vocab + third] = p * p_third;
    }
    context.pop_back();
  }

  constexpr int kSeeds = 3000;
  // The draft model with its default p_min (drafts cut where it is unsure) and without (every draft
  // to its full length), and prompt lookup.
  const std::pair<Model*, float> methods[] = {
      {m.draft.get(), GenerateOptions::Speculative{}.p_min}, {m.draft.get(), 0.0f}, {nullptr, 0.0f}};
  int drafted_with_p_min = -1;
  for (const auto& [draft, p_min] : methods) {
    SCOPED_TRACE(draft != nullptr ? "draft model, p_min " + std::to_string(p_min) : "prompt lookup");
    auto g = generator(draft, /*reuse_prefix=*/true);  // the prompt is computed once
    std::map<int64_t, int> second, pair;
    int drafted = 0, accepted = 0;
    for (int seed = 1; seed <= kSeeds; ++seed) {
      GenerateOptions o;
      o.sampling = params;
      o.sampling.seed = static_cast<uint64_t>(seed);
      o.stop.max_tokens = 4;  // drafts of 2 after the first token: p_min may cut after a drawn one
      o.stop.ignore_eos = true;
      o.speculative.draft_max = 3;
      o.speculative.p_min = p_min;
      const Output r = run(*g, prompt, o);
      ASSERT_EQ(r.ids.size(), 4u);
      drafted += r.stats.draft_tokens;
      accepted += r.stats.accepted_tokens;
      if (r.ids[0] != t1) continue;
      ++second[r.ids[1]];
      ++pair[int64_t{r.ids[1]} * n_vocab + r.ids[2]];
    }
    // Both paths of verification ran: kept drafts and rejected ones.
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, drafted);
    // The default p_min cut some drafts, not all: fewer drafted than with every draft full length.
    if (draft != nullptr && p_min > 0.0f) drafted_with_p_min = drafted;
    if (draft != nullptr && p_min == 0.0f) {
      EXPECT_GT(drafted_with_p_min, 0);
      EXPECT_LT(drafted_with_p_min, drafted);
    }
    std::string detail;
    EXPECT_TRUE(fits(second, sparse(p2), detail)) << "second token: " << detail;
    EXPECT_TRUE(fits(pair, p23, detail)) << "second and third tokens: " << detail;
    EXPECT_FALSE(fits(second, sparse(q2), detail)) << "the draft model's distribution fits too: " << detail;
  }
}

}  // namespace
}  // namespace ember
