// The sampler chain per token on Qwen's 151,936-token vocabulary: greedy, llama.cpp's default
// chain, top-p alone over the whole vocabulary, penalties + DRY over 4096 tokens of history,
// mirostat v2, XTC, typical, top-n-sigma, and logprobs with the top 5. The logits are a realistic
// spread (a Gaussian body plus a heavy tail of a few hundred likely tokens, as a trained model's
// output row looks), not zeros; the "flat" cases take plain Gaussian rows (sigma 1 and 0.3, no
// favourite), the worst case of the steps that order by mass (top-p, typical, XTC, a large top-k).
// Reports microseconds per token (sampling is measured against a decode step of 15-40 ms for a
// 0.5B model here: docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/logprobs.h"
#include "engine/sampler_chain.h"

namespace {

using namespace ember;

constexpr int32_t kVocab = 151936;

// A Gaussian body (sigma 2) around -5, a few hundred tokens lifted by an exponential tail, and
// one clear favourite: the shape of a real model's logits (a handful of tokens hold most mass).
std::vector<float> realistic_logits(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> body(-5.0f, 2.0f);
  std::exponential_distribution<float> tail(0.6f);
  std::uniform_int_distribution<int32_t> pick(0, kVocab - 1);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = body(rng);
  for (int i = 0; i < 300; ++i) logits[static_cast<size_t>(pick(rng))] = 4.0f + tail(rng);
  logits[static_cast<size_t>(pick(rng))] = 14.0f;
  return logits;
}

// A flat row: every logit drawn from N(0, sigma), no favourite (an uncertain step, or a high
// temperature's view of one).
std::vector<float> flat_logits(uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> body(0.0f, sigma);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = body(rng);
  return logits;
}

using Rows = std::vector<std::vector<float>>;

// Two rows (1.2 MB, in L2 like a row the output projection just wrote), alternated so the branch
// predictors do not learn one.
const Rows& rows() {
  static const Rows r = [] {
    Rows v;
    for (uint32_t s = 0; s < 2; ++s) v.push_back(realistic_logits(s + 1));
    return v;
  }();
  return r;
}

const Rows& flat_rows(float sigma) {
  static const Rows wide = {flat_logits(11, 1.0f), flat_logits(12, 1.0f)};
  static const Rows narrow = {flat_logits(13, 0.3f), flat_logits(14, 0.3f)};
  return sigma == 1.0f ? wide : narrow;
}

// "per_token": the time of one sample() call, printed with its unit (e.g. 41.2us).
void per_token(benchmark::State& state) {
  state.counters["per_token"] =
      benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void run_chain(benchmark::State& state, const SamplingParams& params, size_t history, const Rows& logits = rows()) {
  SamplerChain chain(params, kVocab, std::vector<std::vector<int32_t>>{{198}, {25}});  // breakers "\n", ":"
  std::mt19937 rng(7);
  // A history with repeats (a Zipf-ish draw over 2000 common tokens) for penalties and DRY.
  std::uniform_int_distribution<int32_t> common(0, 1999);
  for (size_t i = 0; i < history; ++i) {
    const int32_t token = common(rng);  // two statements: the draws' order is fixed
    const int32_t spread = common(rng);
    chain.accept(token % (1 + spread % 50) * 37 % kVocab);
  }
  size_t row = 0;
  for (auto _ : state) {
    const int32_t token = chain.sample(logits[row++ % logits.size()]);
    benchmark::DoNotOptimize(token);
  }
  per_token(state);
}

void bm_greedy(benchmark::State& state) {
  SamplingParams p;
  p.temperature = 0.0f;
  run_chain(state, p, 0);
}

void bm_default_chain(benchmark::State& state) { run_chain(state, SamplingParams{}, 0); }

void bm_top_p_only(benchmark::State& state) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 0.9f;
  p.min_p = 0.0f;
  run_chain(state, p, 0);
}

void bm_full_vocabulary_draw(benchmark::State& state) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  run_chain(state, p, 0);
}

void bm_penalties_dry(benchmark::State& state) {
  SamplingParams p;
  p.penalty_last_n = 4096;
  p.repeat_penalty = 1.1f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.2f;
  p.dry_multiplier = 0.8f;
  p.dry_penalty_last_n = 4096;
  run_chain(state, p, 4096);
}

void bm_mirostat(benchmark::State& state) {
  SamplingParams p;
  p.mirostat = 2;
  run_chain(state, p, 0);
}

void bm_xtc(benchmark::State& state) {
  SamplingParams p;
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.1f;
  run_chain(state, p, 0);
}

void bm_typical(benchmark::State& state) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.typical_p = 0.9f;
  run_chain(state, p, 0);
}

void bm_top_n_sigma(benchmark::State& state) {
  SamplingParams p;
  p.top_k = 0;
  p.top_n_sigma = 1.0f;
  run_chain(state, p, 0);
}

void bm_dynatemp(benchmark::State& state) {
  SamplingParams p;
  p.dynatemp_range = 0.5f;
  run_chain(state, p, 0);
}

// --- flat rows: top-k 0, the step alone (min-p 0, top-p 1 unless it is the step) ---------------

SamplingParams flat_params() {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  return p;
}

void bm_flat_draw(benchmark::State& state, float sigma) { run_chain(state, flat_params(), 0, flat_rows(sigma)); }

void bm_flat_top_p(benchmark::State& state, float sigma, float temperature) {
  SamplingParams p = flat_params();
  p.top_p = 0.95f;
  p.temperature = temperature;
  run_chain(state, p, 0, flat_rows(sigma));
}

void bm_flat_typical(benchmark::State& state, float sigma) {
  SamplingParams p = flat_params();
  p.typical_p = 0.9f;
  run_chain(state, p, 0, flat_rows(sigma));
}

void bm_flat_xtc(benchmark::State& state, float sigma) {
  SamplingParams p = flat_params();
  p.xtc_probability = 1.0f;
  p.xtc_threshold = 0.0f;  // every token is a top choice: all but the least likely go
  run_chain(state, p, 0, flat_rows(sigma));
}

void bm_flat_top_k(benchmark::State& state, float sigma) {
  SamplingParams p = flat_params();
  p.top_k = 100000;
  run_chain(state, p, 0, flat_rows(sigma));
}

void bm_flat_top_k_top_p(benchmark::State& state, float sigma) {
  SamplingParams p = flat_params();
  p.top_k = 100000;
  p.top_p = 0.95f;
  run_chain(state, p, 0, flat_rows(sigma));
}

void bm_logprobs_top5(benchmark::State& state) {
  TokenLogprobs out;
  size_t row = 0;
  for (auto _ : state) {
    compute_logprobs(rows()[row++ % rows().size()], 17, 5, out);
    benchmark::DoNotOptimize(out.chosen.logprob);
  }
  per_token(state);
}

}  // namespace

BENCHMARK(bm_greedy)->Name("greedy");
BENCHMARK(bm_default_chain)->Name("default_topk40_topp0.95_minp0.05_temp0.8");
BENCHMARK(bm_top_p_only)->Name("topk0_topp0.9");
BENCHMARK(bm_full_vocabulary_draw)->Name("full_vocabulary_draw_temp1");
BENCHMARK(bm_penalties_dry)->Name("default+penalties+dry_history4096");
BENCHMARK(bm_mirostat)->Name("mirostat_v2");
BENCHMARK(bm_xtc)->Name("default+xtc_p1_t0.1");
BENCHMARK(bm_typical)->Name("topk0_typical0.9");
BENCHMARK(bm_top_n_sigma)->Name("topk0_topnsigma1");
BENCHMARK(bm_dynatemp)->Name("default+dynatemp0.5");
BENCHMARK(bm_logprobs_top5)->Name("logprobs_top5");
BENCHMARK_CAPTURE(bm_flat_draw, sigma1, 1.0f)->Name("flat1_full_vocabulary_draw");
BENCHMARK_CAPTURE(bm_flat_top_p, sigma1, 1.0f, 1.0f)->Name("flat1_topp0.95");
BENCHMARK_CAPTURE(bm_flat_top_p, sigma1_temp3, 1.0f, 3.0f)->Name("flat1_topp0.95_temp3");
BENCHMARK_CAPTURE(bm_flat_top_p, sigma03, 0.3f, 1.0f)->Name("flat0.3_topp0.95");
BENCHMARK_CAPTURE(bm_flat_typical, sigma1, 1.0f)->Name("flat1_typical0.9");
BENCHMARK_CAPTURE(bm_flat_typical, sigma03, 0.3f)->Name("flat0.3_typical0.9");
BENCHMARK_CAPTURE(bm_flat_xtc, sigma1, 1.0f)->Name("flat1_xtc_p1_t0");
BENCHMARK_CAPTURE(bm_flat_xtc, sigma03, 0.3f)->Name("flat0.3_xtc_p1_t0");
BENCHMARK_CAPTURE(bm_flat_top_k, sigma1, 1.0f)->Name("flat1_topk100000");
BENCHMARK_CAPTURE(bm_flat_top_k, sigma03, 0.3f)->Name("flat0.3_topk100000");
BENCHMARK_CAPTURE(bm_flat_top_k_top_p, sigma1, 1.0f)->Name("flat1_topk100000_topp0.95");

BENCHMARK_MAIN();
