// SamplerChain as a whole: greedy picks, NaN / infinite logits, seeds that reproduce (and reset()),
// draws that follow the expected distribution (chi-square, fixed seeds), invalid parameters
// rejected naming the field, and the --samplers order parser.
#include "engine/sampler_chain.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ember/error.h"
#include "sampler_test_util.h"
#include "support/float_values.h"

namespace ember {
namespace {

using test::all_off;
using test::chi_square;
using test::kChi2Critical;
using test::softmax64;

using test::kInf;
using test::kNaN;

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

std::vector<int32_t> draws(SamplerChain& chain, const std::vector<float>& logits, int n, bool accept = false) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(chain.sample(logits));
    if (accept) chain.accept(out.back());
  }
  return out;
}

TEST(SamplerChain, GreedyIsArgmaxWithTheLowestIdOnTies) {
  for (const float temperature : {0.0f, -1.0f}) {
    SamplingParams p;
    p.temperature = temperature;
    for (uint64_t seed = 0; seed < 10; ++seed) {
      const std::vector<float> logits = random_logits(1000 + seed, seed);
      SamplerChain chain(p, static_cast<int32_t>(logits.size()), nullptr);
      EXPECT_TRUE(chain.greedy());
      EXPECT_EQ(chain.sample(logits), reference_argmax(logits));
    }
    const auto pick = [&p](std::vector<float> logits) {
      SamplerChain chain(p, static_cast<int32_t>(logits.size()), nullptr);
      return chain.sample(logits);
    };
    EXPECT_EQ(pick({1, 3, 2, 3, 3}), 1);
    EXPECT_EQ(pick({kNaN, -1, kNaN, 2, 2}), 3);  // NaN is never the max
    EXPECT_EQ(pick({-kInf, -kInf}), 0);
    EXPECT_EQ(pick({kNaN, kNaN}), 0);
    EXPECT_EQ(pick({7}), 0);
    // A long row: the vector scan's tail and its blocks.
    std::vector<float> row(1003, 0.0f);
    row[1002] = 1.0f;
    EXPECT_EQ(pick(row), 1002);
  }
}

// sample_top_k (the row's best k only, as a GPU returns them for Batch::kTopK) against sample() on
// the whole row: the same tokens and the same random state after, over 40 draws per setting, with
// every step after top-k on in turn and on rows with ties, NaN, -inf and +inf. top_k_first() says
// when the candidates suffice.
TEST(SamplerChain, TopKCandidatesSampleAsTheWholeRow) {
  std::vector<std::vector<float>> rows;
  for (uint64_t seed = 0; seed < 4; ++seed) rows.push_back(random_logits(3000, 70 + seed));
  std::vector<float> coarse = random_logits(3000, 80);  // ties everywhere, at the k-th place too
  for (float& x : coarse) x = std::round(x);
  rows.push_back(coarse);
  std::vector<float> odd = random_logits(3000, 81);  // NaN, -inf, and fewer than k numbers above -inf
  for (size_t i = 0; i < odd.size(); ++i) odd[i] = i % 3 == 0 ? kNaN : i < 2990 ? -kInf : odd[i];
  rows.push_back(odd);
  std::vector<float> certain = random_logits(3000, 82);
  certain[1234] = kInf;
  certain[2000] = kInf;
  rows.push_back(certain);
  std::vector<float> single(3000, -kInf);  // one number: decided without a draw
  single[17] = 2.5f;
  single[3] = kNaN;
  rows.push_back(single);
  rows.push_back(std::vector<float>(3000, -kInf));
  rows.push_back(std::vector<float>(3000, kNaN));

  std::vector<SamplingParams> settings;
  SamplingParams p;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
  settings.push_back(p);
  p.top_k = 5;
  settings.push_back(p);
  p.top_k = 256;
  p.typical_p = 0.9f;
  settings.push_back(p);
  p = SamplingParams{};
  p.xtc_probability = 0.5f;
  p.xtc_threshold = 0.05f;
  settings.push_back(p);
  p = SamplingParams{};
  p.dynatemp_range = 0.5f;
  settings.push_back(p);
  p = SamplingParams{};
  p.order = {SamplerStep::kTopK, SamplerStep::kTemperature, SamplerStep::kMinP};
  p.temperature = 1.7f;
  settings.push_back(p);
  for (size_t si = 0; si < settings.size(); ++si) {
    for (size_t ri = 0; ri < rows.size(); ++ri) {
      SCOPED_TRACE("setting " + std::to_string(si) + " row " + std::to_string(ri));
      const std::vector<float>& logits = rows[ri];
      const SamplingParams& params = settings[si];
      SamplerChain whole(params, 3000, nullptr), top(params, 3000, nullptr);
      ASSERT_EQ(top.top_k_first(256), params.top_k);
      std::vector<sampling::Candidate> best;
      sampling::select_top_k(logits, static_cast<size_t>(params.top_k), best);
      for (int i = 0; i < 40; ++i) ASSERT_EQ(top.sample_top_k(best), whole.sample(logits)) << "draw " << i;
      // The random state after: draws from a random row agree too (a row decided without a draw,
      // one number and the rest -inf, must not have drawn on either path).
      sampling::select_top_k(rows[0], static_cast<size_t>(params.top_k), best);
      for (int i = 0; i < 10; ++i) ASSERT_EQ(top.sample_top_k(best), whole.sample(rows[0])) << "after, draw " << i;
    }
  }
}

TEST(SamplerChain, TopKFirstOnlyWhenTheBestLogitsSuffice) {
  const auto first = [](const SamplingParams& p, int32_t max_k = 256) {
    return SamplerChain(p, 3000, nullptr).top_k_first(max_k);
  };
  SamplingParams p;
  EXPECT_EQ(first(p), 40);
  EXPECT_EQ(first(p, 39), 0);  // above what the caller can return
  p.top_k = 3000;              // the whole vocabulary: no truncation
  EXPECT_EQ(first(p, 4096), 0);
  p = SamplingParams{};
  p.top_k = 0;
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.temperature = 0.0f;  // greedy: the argmax instead (Batch::kToken)
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.mirostat = 2;
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.logit_bias = {{7, 1.0f}};
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.repeat_penalty = 1.2f;
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.top_n_sigma = 1.0f;  // before top-k in the default order
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.order = {SamplerStep::kTopP, SamplerStep::kTopK};
  EXPECT_EQ(first(p), 0);
  p.top_p = 1.0f;  // a step that is off still counts: only DRY and top-n-sigma may come first
  EXPECT_EQ(first(p), 0);
  p = SamplingParams{};
  p.order = {SamplerStep::kTopNSigma, SamplerStep::kDry, SamplerStep::kTopK, SamplerStep::kTemperature};
  EXPECT_EQ(first(p), 40);
}

TEST(SamplerChain, NaNAndInfiniteLogitsAreNeverDrawn) {
  const std::vector<float> logits = {kNaN, 1.0f, -kInf, 1.0f, kNaN};
  for (const int32_t top_k : {0, 2, 5}) {
    for (const float top_p : {1.0f, 0.99f}) {
      SamplingParams p = all_off();
      p.top_k = top_k;
      p.top_p = top_p;
      p.seed = 16;
      SamplerChain chain(p, 5, nullptr);
      for (int i = 0; i < 500; ++i) {
        const int32_t id = chain.sample(logits);
        ASSERT_TRUE(id == 1 || id == 3) << id;
      }
    }
  }
  SamplerChain chain(all_off(), 3, nullptr);
  EXPECT_EQ(chain.sample(std::vector<float>{1.0f, kInf, kInf}), 1);  // +inf is certain, lowest id
  EXPECT_EQ(chain.sample(std::vector<float>{-kInf, -kInf, kNaN}), 0);
}

TEST(SamplerChain, SameSeedSameTokensOtherSeedOtherTokensResetReproduces) {
  const std::vector<float> logits = random_logits(4096, 7);
  SamplingParams defaults;
  SamplingParams full = all_off();
  SamplingParams top_p = all_off();
  top_p.top_p = 0.9f;
  top_p.temperature = 1.5f;
  SamplingParams everything;
  everything.penalty_last_n = 32;
  everything.repeat_penalty = 1.2f;
  everything.dry_multiplier = 0.8f;
  everything.xtc_probability = 0.5f;
  everything.typical_p = 0.95f;
  everything.dynatemp_range = 0.3f;
  SamplingParams mirostat = all_off();
  mirostat.mirostat = 2;
  for (SamplingParams p : {defaults, full, top_p, everything, mirostat}) {
    p.seed = 42;
    SamplerChain a(p, 4096, nullptr), b(p, 4096, nullptr);
    const std::vector<int32_t> first = draws(a, logits, 200, true);
    EXPECT_EQ(first, draws(b, logits, 200, true));
    a.reset();
    EXPECT_EQ(first, draws(a, logits, 200, true)) << "reset() reproduces";
    p.seed = 43;
    SamplerChain c(p, 4096, nullptr);
    EXPECT_NE(first, draws(c, logits, 200, true));
  }
}

constexpr int kDraws = 20000;

TEST(SamplerChain, DrawsFollowTheDistributionAfterTheSteps) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f};
  struct Case {
    const char* name;
    SamplingParams params;
    std::vector<double> expected;
    size_t df;
  };
  std::vector<Case> cases;
  SamplingParams p = all_off();
  p.temperature = 0.7f;
  cases.push_back({"softmax / 0.7", p, softmax64(logits, 0.7), 7});
  p.top_k = 5;
  cases.push_back({"top-k 5, temp 0.7", p, softmax64(logits, 0.7, {4, 5, 1, 7, 0}), 4});
  SamplingParams d;  // llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05 (at temperature 1), temp 0.8
  // top-p 0.95 keeps 4 5 1 7 0 2 (0.9725 of the mass); min-p 0.05 (logit >= 3 + ln 0.05) keeps those.
  cases.push_back({"defaults", d, softmax64(logits, 0.8, {4, 5, 1, 7, 0, 2}), 5});
  for (Case& c : cases) {
    c.params.seed = 1234;
    SamplerChain chain(c.params, 8, nullptr);
    std::vector<double> dist = test::chain_distribution(chain, logits);
    test::expect_near(dist, c.expected, 2e-6, c.name);
    const double chi2 = chi_square(draws(chain, logits, kDraws), c.expected);
    EXPECT_LT(chi2, kChi2Critical[c.df]) << c.name;
  }
}

TEST(SamplerChain, TheChiSquareTestCanFail) {
  // The same draws against a slightly wrong distribution (temperature 0.8 instead of 0.7, or top-k
  // 5 expected while 6 are drawn) exceed the bound: the statistic has the power to catch a bug.
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f};
  SamplingParams p = all_off();
  p.temperature = 0.7f;
  p.seed = 99;
  SamplerChain chain(p, 8, nullptr);
  const std::vector<int32_t> got = draws(chain, logits, kDraws);
  EXPECT_LT(chi_square(got, softmax64(logits, 0.7)), kChi2Critical[7]);
  EXPECT_GT(chi_square(got, softmax64(logits, 0.8)), kChi2Critical[7]);
  p.top_k = 6;
  SamplerChain six(p, 8, nullptr);
  EXPECT_GT(chi_square(draws(six, logits, kDraws), softmax64(logits, 0.7, {4, 5, 1, 7, 0})), kChi2Critical[4]);
}

TEST(SamplerChain, FullVocabularyDrawsFollowTheSoftmaxAcrossBlocks) {
  // 1000 entries, 8 live ones spread over the blocks of the weighted draw, the rest -inf.
  std::vector<float> logits(1000, -kInf);
  const std::vector<int32_t> live = {3, 300, 301, 555, 700, 800, 998, 999};
  for (size_t i = 0; i < live.size(); ++i) logits[static_cast<size_t>(live[i])] = 0.4f * static_cast<float>(i);
  SamplingParams p = all_off();
  p.seed = 2024;
  SamplerChain chain(p, 1000, nullptr);
  EXPECT_LT(chi_square(draws(chain, logits, kDraws), softmax64(logits, 1.0, live)), kChi2Critical[7]);
}

// --- determinism --------------------------------------------------------------------------------

TEST(SamplerChain, EveryExpVersionGivesTheSameBits) {
  // Random values across the range, the clamps' edges, NaN, +-inf, +-0; a length that is no
  // multiple of any vector width.
  std::mt19937_64 rng(31);
  std::vector<float> x(10007);
  for (float& v : x) v = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53 * 240.0 - 200.0);
  const float specials[] = {-87.0f, -86.99999f, -87.00001f, 88.0f, 88.00001f, 0.0f, -0.0f, kNaN, kInf, -kInf};
  for (size_t i = 0; i < std::size(specials); ++i) x[i * 997] = specials[i];
  using sampling::ExpIsa;
  for (const auto& [shift, scale] : {std::pair{0.0f, 1.0f}, std::pair{40.0f, 0.37f}, std::pair{-3.5f, 2.5f}}) {
    std::vector<float> baseline(x.size());
    const double total = sampling::exp_weights_with(ExpIsa::kBaseline, x, shift, scale, baseline.data());
    for (size_t i = 0; i < x.size(); ++i) {  // the scalar fast_exp the candidate paths use
      const float y = (x[i] - shift) * scale;
      ASSERT_EQ(std::bit_cast<uint32_t>(sampling::fast_exp(y)), std::bit_cast<uint32_t>(baseline[i])) << x[i];
    }
    for (const ExpIsa isa : {ExpIsa::kAvx2, ExpIsa::kAvx512}) {
      std::vector<float> out(x.size());
      const double sum = sampling::exp_weights_with(isa, x, shift, scale, out.data());
      if (sum == -1.0) continue;  // the CPU lacks it
      EXPECT_EQ(std::bit_cast<uint64_t>(sum), std::bit_cast<uint64_t>(total)) << static_cast<int>(isa);
      EXPECT_EQ(std::memcmp(out.data(), baseline.data(), out.size() * sizeof(float)), 0) << static_cast<int>(isa);
    }
    if (scale == 1.0f) {  // the candidates' version: exp(logit - shift)
      std::vector<sampling::Candidate> c(x.size());
      for (size_t i = 0; i < x.size(); ++i) c[i] = {x[i], static_cast<int32_t>(i)};
      std::vector<float> out(x.size());
      EXPECT_EQ(std::bit_cast<uint64_t>(sampling::exp_candidate_weights(c, shift, out.data())),
                std::bit_cast<uint64_t>(total));
      EXPECT_EQ(std::memcmp(out.data(), baseline.data(), out.size() * sizeof(float)), 0);
    }
  }
}

// Logits from an integer hash (no libm, no std::*_distribution): the same on every platform.
std::vector<float> hashed_logits(size_t n, float spread) {
  std::vector<float> logits(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = static_cast<uint32_t>(i) * 2654435761u;
    logits[i] = (static_cast<float>(h >> 20) / 4096.0f - 0.5f) * spread;
  }
  logits[n / 3] = spread;  // a favourite
  return logits;
}

TEST(SamplerChain, GoldenTokensForAFixedSeed) {
  // A change of how the chain uses its generator (or of the order it leaves candidates in) changes
  // these: update them only for a deliberate change, and say so.
  struct Case {
    const char* name;
    SamplingParams params;
    float spread;
    std::vector<int32_t> expected;
  };
  std::vector<Case> cases;
  SamplingParams defaults;
  cases.push_back({"defaults", defaults, 3.0f, {1508, 3859, 1042, 1333, 1741, 898, 2029, 2728, 1974, 55, 3105, 2351}});
  SamplingParams full = all_off();
  cases.push_back(
      {"full vocabulary", full, 6.0f, {2349, 3153, 3791, 84, 1584, 2592, 3925, 1812, 943, 3540, 2255, 1333}});
  SamplingParams flat_top_p = all_off();
  flat_top_p.top_p = 0.9f;
  flat_top_p.temperature = 1.5f;
  cases.push_back({"flat top-p (histogram)",
                   flat_top_p,
                   2.0f,
                   {2400, 3184, 3811, 80, 1660, 2639, 3938, 1878, 917, 3564, 2307, 1412}});
  SamplingParams typical = all_off();
  typical.typical_p = 0.8f;
  cases.push_back({"typical", typical, 4.0f, {2464, 3278, 3914, 82, 1707, 2715, 1563, 1930, 940, 3668, 2372, 1456}});
  SamplingParams big_k = all_off();
  big_k.top_k = 2500;
  big_k.min_p = 0.01f;
  big_k.order = {SamplerStep::kMinP, SamplerStep::kTopK, SamplerStep::kTemperature};
  cases.push_back(
      {"min-p, top-k 2500", big_k, 3.0f, {3103, 2808, 2574, 50, 1037, 3011, 2524, 1173, 3655, 2221, 3137, 883}});
  SamplingParams everything;
  everything.penalty_last_n = 16;
  everything.repeat_penalty = 1.3f;
  everything.dry_multiplier = 0.8f;
  everything.xtc_probability = 0.5f;
  everything.dynatemp_range = 0.4f;
  cases.push_back({"penalties, dry, xtc, dynatemp",
                   everything,
                   8.0f,
                   {1333, 3859, 1333, 898, 2728, 1042, 2351, 3105, 1333, 1333, 3249, 987}});
  SamplingParams mirostat = all_off();
  mirostat.mirostat = 2;
  cases.push_back(
      {"mirostat v2", mirostat, 8.0f, {2016, 2893, 3626, 987, 1333, 2050, 3859, 1333, 1296, 3105, 1333, 1333}});
  for (Case& c : cases) {
    c.params.seed = 20261130;
    const std::vector<float> logits = hashed_logits(4000, c.spread);
    SamplerChain chain(c.params, 4000, nullptr);
    const std::vector<int32_t> got = draws(chain, logits, 12, true);
    std::string printed;
    for (const int32_t t : got) printed += std::to_string(t) + ", ";
    EXPECT_EQ(got, c.expected) << c.name << ": " << printed;
  }
}

void expect_rejected(const SamplingParams& p, const std::string& field, int32_t n_vocab = 10) {
  try {
    SamplerChain chain(p, n_vocab, nullptr);
    ADD_FAILURE() << "accepted a bad " << field;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind(field, 0), 0u) << e.what();
  }
}

TEST(SamplerChain, ImpossibleParametersThrowNamingTheField) {
  const auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return p;
  };
  expect_rejected(with([](SamplingParams& p) { p.temperature = kNaN; }), "temperature");
  expect_rejected(with([](SamplingParams& p) { p.temperature = kInf; }), "temperature");
  expect_rejected(with([](SamplingParams& p) { p.dynatemp_range = -1; }), "dynatemp_range");
  expect_rejected(with([](SamplingParams& p) { p.dynatemp_exponent = kNaN; }), "dynatemp_exponent");
  expect_rejected(with([](SamplingParams& p) { p.top_k = -1; }), "top_k");
  expect_rejected(with([](SamplingParams& p) { p.top_p = 0; }), "top_p");
  expect_rejected(with([](SamplingParams& p) { p.top_p = 1.01f; }), "top_p");
  expect_rejected(with([](SamplingParams& p) { p.top_p = kNaN; }), "top_p");
  expect_rejected(with([](SamplingParams& p) { p.min_p = 1.5f; }), "min_p");
  expect_rejected(with([](SamplingParams& p) { p.typical_p = 0; }), "typical_p");
  expect_rejected(with([](SamplingParams& p) { p.top_n_sigma = kNaN; }), "top_n_sigma");
  expect_rejected(with([](SamplingParams& p) { p.xtc_probability = 2; }), "xtc_probability");
  expect_rejected(with([](SamplingParams& p) { p.xtc_threshold = -0.1f; }), "xtc_threshold");
  expect_rejected(with([](SamplingParams& p) { p.penalty_last_n = -2; }), "penalty_last_n");
  expect_rejected(with([](SamplingParams& p) { p.repeat_penalty = 0; }), "repeat_penalty");
  expect_rejected(with([](SamplingParams& p) { p.presence_penalty = kInf; }), "presence_penalty");
  expect_rejected(with([](SamplingParams& p) { p.frequency_penalty = kNaN; }), "frequency_penalty");
  expect_rejected(with([](SamplingParams& p) { p.dry_multiplier = -1; }), "dry_multiplier");
  expect_rejected(with([](SamplingParams& p) { p.dry_base = 0.5f; }), "dry_base");
  expect_rejected(with([](SamplingParams& p) { p.dry_allowed_length = -1; }), "dry_allowed_length");
  expect_rejected(with([](SamplingParams& p) { p.dry_penalty_last_n = -3; }), "dry_penalty_last_n");
  expect_rejected(with([](SamplingParams& p) { p.dry_sequence_breakers = {"\n", ""}; }), "dry_sequence_breakers[1]");
  expect_rejected(with([](SamplingParams& p) { p.mirostat = 1; }), "mirostat");
  expect_rejected(with([](SamplingParams& p) { p.mirostat_tau = -1; }), "mirostat_tau");
  expect_rejected(with([](SamplingParams& p) { p.mirostat_eta = kNaN; }), "mirostat_eta");
  expect_rejected(with([](SamplingParams& p) { p.logit_bias = {{3, kNaN}}; }), "logit_bias");
  expect_rejected(with([](SamplingParams& p) { p.logit_bias = {{3, kInf}}; }), "logit_bias");
  expect_rejected(with([](SamplingParams& p) { p.logit_bias = {{10, 1.0f}}; }), "logit_bias");  // n_vocab 10
  expect_rejected(with([](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }), "logit_bias");
  expect_rejected(with([](SamplingParams& p) { p.order = {static_cast<SamplerStep>(42)}; }), "order");
  expect_rejected(SamplingParams{}, "n_vocab", 0);
  expect_rejected(with([](SamplingParams& p) { p.dry_multiplier = 1; }), "n_vocab", -5);
  EXPECT_NO_THROW(SamplerChain(with([](SamplingParams& p) { p.logit_bias = {{9, -kInf}}; }), 10, nullptr));
}

TEST(SamplerChain, SamplerOrderParsesLlamaCppNames) {
  EXPECT_EQ(parse_sampler_order("top_k;top_p;temperature"),
            (std::vector<SamplerStep>{SamplerStep::kTopK, SamplerStep::kTopP, SamplerStep::kTemperature}));
  EXPECT_EQ(parse_sampler_order("penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature"),
            effective_order(SamplingParams{}));
  EXPECT_EQ(parse_sampler_order("temp,min-p"),
            (std::vector<SamplerStep>{SamplerStep::kTemperature, SamplerStep::kMinP}));
  EXPECT_EQ(parse_sampler_order("typ;typical-p;typ-p"), std::vector<SamplerStep>(3, SamplerStep::kTypicalP));
  // "penalties" alone (llama.cpp: penalties, then the draw): no truncation step, the temperature.
  EXPECT_EQ(parse_sampler_order("penalties"), std::vector<SamplerStep>{SamplerStep::kTemperature});
  EXPECT_EQ(parse_sampler_order("penalties;penalties"), std::vector<SamplerStep>{SamplerStep::kTemperature});
  for (const char* bad : {"top_k;bogus", "", ";", "penalties;bogus", "TOP_K"}) {
    EXPECT_THROW(parse_sampler_order(bad), Error) << bad;
  }
  try {
    parse_sampler_order("top_k;bogus");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bogus'"), std::string::npos) << e.what();
  }
  for (const SamplerStep step : effective_order(SamplingParams{})) {
    EXPECT_EQ(parse_sampler_order(sampler_step_name(step)), std::vector<SamplerStep>{step});
  }
}

}  // namespace
}  // namespace ember
