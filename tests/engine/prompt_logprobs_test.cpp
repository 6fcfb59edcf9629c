// The serving engine's prompt scoring (EngineRequest::prompt_logprobs, the server's echo with
// logprobs): every prompt token's logprob equals one forward pass over the whole prompt, however the
// prompt is chunked, cached, preempted or forked into choices, and scoring changes no output.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/logprobs.h"
#include "model/model.h"
#include "serving_engine_support.h"

namespace ember {
namespace {

using namespace serving_test;

// The prompt's scores by hand: one forward pass with every row's logits; row i scores token i + 1.
std::vector<GeneratedToken> scores_by_hand(const std::vector<int32_t>& prompt, int32_t n_top) {
  Model& model = *tiny().model;
  KvCache kv(model.config(), model.kv_options(256));
  const SeqId seq = kv.add_sequence();
  Batch batch;
  for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], static_cast<int32_t>(i), seq, Batch::kLogits);
  const std::span<const float> logits = model.forward(batch, kv);
  const auto n_vocab = static_cast<size_t>(model.config().n_vocab);
  std::vector<GeneratedToken> scores;
  TokenLogprobs lp;
  for (size_t i = 0; i + 1 < prompt.size(); ++i) {
    compute_logprobs(logits.subspan(i * n_vocab, n_vocab), prompt[i + 1], n_top, lp);
    scores.push_back({.id = prompt[i + 1], .logprob = lp.chosen.logprob, .top = lp.top});
  }
  return scores;
}

void expect_scores(const Outcome& o, const std::vector<int32_t>& prompt, int32_t n_top) {
  EXPECT_EQ(o.prompt_events, 1);
  EXPECT_FALSE(o.token_before_prompt_logprobs);
  const std::vector<GeneratedToken> expect = scores_by_hand(prompt, n_top);
  ASSERT_EQ(o.prompt_logprobs.size(), expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    const GeneratedToken& got = o.prompt_logprobs[i];
    EXPECT_EQ(got.id, expect[i].id) << i;
    // Batch-invariant rows: the chunking changes no bit.
    EXPECT_EQ(got.logprob, expect[i].logprob) << i;
    ASSERT_EQ(got.top.size(), static_cast<size_t>(n_top)) << i;
    for (size_t k = 0; k < got.top.size(); ++k) {
      EXPECT_EQ(got.top[k].token, expect[i].top[k].token) << i << " " << k;
      EXPECT_EQ(got.top[k].logprob, expect[i].top[k].logprob) << i << " " << k;
    }
  }
}

std::shared_ptr<EngineRequest> scored(const std::string& prompt, int32_t max_tokens, int32_t n_top, int32_t n = 1,
                                      float temperature = 0.0f) {
  auto r = request(prompt, max_tokens, n, temperature, 5);
  r->prompt_logprobs = n_top;
  return r;
}

TEST(PromptLogprobs, EqualOneForwardPassInEveryChunking) {
  const std::string& prompt = kPrompts[2];  // ~40 tokens: more than a step of 32 rows
  const Outcome plain = run_alone(request(prompt, 6, 1, 0.0f, 5));
  for (const int64_t rows_per_chunk : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{7}}) {
    EngineOptions options = small_options();
    if (rows_per_chunk > 0) options.scoring_logits = rows_per_chunk * tiny().model->config().n_vocab;
    auto r = scored(prompt, 6, 3);
    const Outcome o = run_alone(r, options);
    SCOPED_TRACE(rows_per_chunk);
    expect_scores(o, r->prompt, 3);
    EXPECT_EQ(o.ids[0], plain.ids[0]);  // scoring changes nothing generated
    EXPECT_EQ(o.stats[0].generated_tokens, 6);
  }
}

// EngineOptions::scoring_logits bounds a step's logits rows over all the prompts being scored (each
// step may add one row per sequence that samples from its logits).
TEST(PromptLogprobs, StepLogitsAreBoundedOverEveryScoredPrompt) {
  EngineOptions options = small_options();
  options.scoring_logits = 5 * int64_t{tiny().model->config().n_vocab};
  Engine engine(*tiny().model, *tiny().tokenizer, options);
  int64_t most_rows = 0;
  Model& model = *tiny().model;
  const Hooks::Handle hook =
      model.hooks().add(HookPoint::kLogits, [&](const HookTensor& t) { most_rows = std::max(most_rows, t.n_rows); });
  std::vector<std::shared_ptr<EngineRequest>> requests;
  for (size_t i = 0; i < 4; ++i) requests.push_back(scored(kPrompts[i], 2, 1));
  ASSERT_TRUE(engine.submit(requests));
  std::vector<Outcome> outcomes;
  for (auto& r : requests) outcomes.push_back(collect(*r, [&] { engine.step(); }));
  model.hooks().remove(hook);
  EXPECT_LE(most_rows, 5 + 4);
  EXPECT_GE(most_rows, 5);
  for (size_t i = 0; i < requests.size(); ++i) expect_scores(outcomes[i], requests[i]->prompt, 1);
}

TEST(PromptLogprobs, ScoredPromptsAdoptNoCachedPrefixButLeaveTheirs) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  const std::string prompt = kPrompts[2] + " " + kPrompts[4];  // over 3 full blocks
  auto warm = request(prompt, 2);
  ASSERT_TRUE(engine.submit(warm));
  collect(*warm, [&] { engine.step(); });

  auto r = scored(prompt, 2, 2);
  ASSERT_TRUE(engine.submit(r));
  const Outcome o = collect(*r, [&] { engine.step(); });
  expect_scores(o, r->prompt, 2);
  EXPECT_EQ(o.stats[0].cached_tokens, 0);

  auto after = request(prompt, 2);  // the scored request's blocks serve the next one
  ASSERT_TRUE(engine.submit(after));
  EXPECT_GT(collect(*after, [&] { engine.step(); }).stats[0].cached_tokens, 0);
}

TEST(PromptLogprobs, OneEventForEveryChoice) {
  auto r = scored(kPrompts[0], 8, 1, /*n=*/3, /*temperature=*/0.9f);
  const Outcome o = run_alone(r);
  expect_scores(o, r->prompt, 1);
  const Outcome plain = run_alone(request(kPrompts[0], 8, 3, 0.9f, 5));
  EXPECT_EQ(o.ids, plain.ids);
}

TEST(PromptLogprobs, OneTokenPromptAndNothingGenerated) {
  auto one = scored(kPrompts[0], 3, 2);
  one->prompt.resize(1);
  const Outcome a = run_alone(one);
  EXPECT_EQ(a.prompt_events, 1);
  EXPECT_TRUE(a.prompt_logprobs.empty());
  EXPECT_EQ(a.stats[0].generated_tokens, 3);

  auto none = scored(kPrompts[1], 0, 0);  // max_tokens 0: the prompt scored, then the end
  const Outcome b = run_alone(none);
  expect_scores(b, none->prompt, 0);
  EXPECT_TRUE(b.ids[0].empty());
  EXPECT_EQ(b.stats[0].finish, FinishReason::kMaxTokens);
}

// A pool of one context for four growing requests and a prompt scored a row at a time: the scored
// prompt is preempted while it is being scored, and its rows are neither lost nor sent twice.
TEST(PromptLogprobs, SurvivePreemption) {
  EngineOptions options = small_options();
  options.kv_tokens = 256;
  options.max_running = 4;
  options.scoring_logits = tiny().model->config().n_vocab;
  Engine engine(*tiny().model, *tiny().tokenizer, options);
  std::vector<std::shared_ptr<EngineRequest>> growing;
  for (size_t i = 0; i < 3; ++i) {
    growing.push_back(request(kPrompts[i], 80));
    ASSERT_TRUE(engine.submit(growing.back()));
  }
  for (int i = 0; i < 20; ++i) engine.step();  // they decode; the pool fills
  auto r = scored(kPrompts[2] + " " + kPrompts[4], 4, 2);
  ASSERT_TRUE(engine.submit(r));
  // The newest running sequence without rows in a step is the first to give its blocks back, and
  // the decode rows are reserved before the prompt's row: the scored prompt is that victim.
  int64_t preempted_while_scoring = 0;
  const Outcome o = collect(*r, [&] {
    const int64_t before = engine.stats().preemptions;
    engine.step();
    if (engine.stats().preemptions > before && engine.stats().waiting > 0) ++preempted_while_scoring;
  });
  expect_scores(o, r->prompt, 2);
  EXPECT_GT(preempted_while_scoring, 0);
  for (auto& g : growing) EXPECT_EQ(collect(*g, [&] { engine.step(); }).stats[0].generated_tokens, 80);
}

TEST(PromptLogprobs, BadRequestsAndAllOrNoneSubmission) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  auto embed = std::make_shared<EngineRequest>();
  embed->kind = EngineRequest::Kind::kEmbed;
  embed->prompt = tokens(kPrompts[0]);
  embed->prompt_logprobs = 1;
  EXPECT_THROW(engine.submit(embed), Error);

  EngineOptions bad = small_options();
  bad.scoring_logits = 0;
  EXPECT_THROW(Engine(*tiny().model, *tiny().tokenizer, bad), Error);

  // Several requests are queued together or not at all: 8 slots + 2 queued take 10, never 11.
  EngineOptions options = small_options();
  options.max_waiting = 2;
  Engine bounded(*tiny().model, *tiny().tokenizer, options);
  std::vector<std::shared_ptr<EngineRequest>> batch;
  for (int i = 0; i < 11; ++i) batch.push_back(request(kPrompts[0], 1));
  EXPECT_FALSE(bounded.submit(batch));
  EXPECT_EQ(bounded.stats().waiting, 0);
  batch.pop_back();
  EXPECT_TRUE(bounded.submit(batch));
  EXPECT_EQ(bounded.stats().waiting, 10);
  // A batch with one bad request queues none of it.
  std::vector<std::shared_ptr<EngineRequest>> mixed = {request(kPrompts[0], 1), embed};
  Engine fresh(*tiny().model, *tiny().tokenizer, small_options());
  EXPECT_THROW(fresh.submit(mixed), Error);
  EXPECT_EQ(fresh.stats().waiting, 0);
  for (auto& r : batch) collect(*r, [&] { bounded.step(); });
}

}  // namespace
}  // namespace ember
