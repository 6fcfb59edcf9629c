// The serving engine on the bundled ember-tiny: batched requests give what each gives alone (in
// batch-invariant mode), n > 1 choices are their own seeds' runs, prompts hit the prefix cache,
// preemption recomputes without changing outputs, cancellation frees the blocks, the queue is
// bounded, embeddings equal a direct pooled forward pass.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "serving_engine_support.h"

namespace ember {
namespace {

using namespace serving_test;
using namespace std::chrono_literals;

TEST(EngineTest, BatchedGreedyOutputsEqualEachRequestAlone) {
  std::vector<Outcome> alone;
  for (const std::string& p : kPrompts) alone.push_back(run_alone(request(p, 24)));

  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  std::vector<std::shared_ptr<EngineRequest>> requests;
  for (const std::string& p : kPrompts) {
    requests.push_back(request(p, 24));
    ASSERT_TRUE(engine.submit(requests.back()));
    engine.step();  // later requests arrive while earlier ones decode
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const Outcome together = collect(*requests[i], [&] { engine.step(); });
    EXPECT_EQ(together.ids[0], alone[i].ids[0]) << kPrompts[i];
    EXPECT_EQ(together.text[0], alone[i].text[0]);
    EXPECT_EQ(together.stats[0].finish, FinishReason::kMaxTokens);
    EXPECT_EQ(together.stats[0].generated_tokens, 24);
    EXPECT_FALSE(together.text[0].empty());
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  EXPECT_EQ(engine.stats().running, 0);
  EXPECT_EQ(engine.stats().generated_tokens, 24 * static_cast<int64_t>(kPrompts.size()));
}

// Plain greedy requests take their tokens from the model's token rows (Batch::kToken), one id per
// row; requests asking for logprobs take logits rows, as does the prompt row that forks n > 1
// choices. Batched together, every output equals the same request's with logprobs (the logits
// path).
TEST(EngineTest, GreedyTokenRowsEqualTheLogitsPath) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  std::vector<std::shared_ptr<EngineRequest>> tokens_path, logits_path;
  for (const std::string& p : kPrompts) {
    tokens_path.push_back(request(p, 20));
    logits_path.push_back(request(p, 20));
    logits_path.back()->options.logprobs = 0;
    ASSERT_TRUE(engine.submit(tokens_path.back()));
    ASSERT_TRUE(engine.submit(logits_path.back()));
  }
  auto choices = request(kPrompts[1], 20, 2);  // n = 2 greedy: both choices fork from the logits row
  ASSERT_TRUE(engine.submit(choices));
  size_t token_rows = 0;
  const auto drive = [&] {
    engine.step();
    token_rows += tiny().model->tokens().size();
  };
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    const Outcome a = collect(*tokens_path[i], drive);
    const Outcome b = collect(*logits_path[i], drive);
    EXPECT_EQ(a.ids[0], b.ids[0]) << kPrompts[i];
    EXPECT_EQ(a.text[0], b.text[0]);
    EXPECT_EQ(a.stats[0].generated_tokens, 20);
  }
  const Outcome c = collect(*choices, drive);
  EXPECT_EQ(c.ids[0], c.ids[1]);
  // Each plain request's 20 tokens, and at most the choices' 2 x 20: none of the logprobs requests'.
  EXPECT_GE(token_rows, 20 * kPrompts.size());
  EXPECT_LE(token_rows, 20 * kPrompts.size() + 2 * 20);
}

// Sampled requests that start with top-k take their rows' best logits (Batch::kTopK), with the
// batch's largest k (40 and 5 batched together: the k = 5 request takes the first 5); their seeded
// outputs equal the same requests' with logprobs (the logits path).
TEST(EngineTest, TopKRowsEqualTheLogitsPath) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  std::vector<std::shared_ptr<EngineRequest>> top_path, logits_path;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    for (auto* path : {&top_path, &logits_path}) {
      path->push_back(request(kPrompts[i], 20, 1, 0.8f, 100 + i));
      path->back()->options.sampling.top_k = i % 2 == 0 ? 40 : 5;
      if (path == &logits_path) path->back()->options.logprobs = 0;
      ASSERT_TRUE(engine.submit(path->back()));
    }
  }
  size_t top_steps = 0;
  const auto drive = [&] {
    engine.step();
    top_steps += tiny().model->top_k().empty() ? 0 : 1;
  };
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    const Outcome a = collect(*top_path[i], drive);
    const Outcome b = collect(*logits_path[i], drive);
    EXPECT_EQ(a.ids[0], b.ids[0]) << kPrompts[i];
    EXPECT_EQ(a.text[0], b.text[0]);
    EXPECT_EQ(a.stats[0].generated_tokens, 20);
  }
  EXPECT_GE(top_steps, 20u);
}

// A pool of one context (16 blocks) for four requests that grow to ~100 tokens each: preemption
// recomputes without changing outputs (with speculation: `draft_max` > 0, drafts by `draft`, or
// prompt lookup). Returns the engine's stats at the end.
EngineStats run_preempted(Model* draft, int32_t draft_max) {
  EngineOptions options = small_options();
  options.kv_tokens = 256;
  options.max_running = 4;
  options.draft_model = draft;
  std::vector<Outcome> alone;
  for (size_t i = 0; i < 4; ++i) alone.push_back(run_alone(request(kPrompts[i], 80)));

  Engine engine(*tiny().model, *tiny().tokenizer, options);
  std::vector<std::shared_ptr<EngineRequest>> requests;
  for (size_t i = 0; i < 4; ++i) {
    requests.push_back(request(kPrompts[i], 80));
    requests.back()->options.speculative.draft_max = draft_max;
    requests.back()->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
    EXPECT_TRUE(engine.submit(requests.back()));
  }
  for (size_t i = 0; i < 4; ++i) {
    const Outcome o = collect(*requests[i], [&] { engine.step(); });
    EXPECT_EQ(o.ids[0], alone[i].ids[0]) << kPrompts[i];
    EXPECT_EQ(o.text[0], alone[i].text[0]);
  }
  EXPECT_GT(engine.stats().preemptions, 0);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  return engine.stats();
}

// ember-tiny-draft on ember-tiny's backend: the draft model of the speculative tests.
Model& tiny_draft() {
  static std::unique_ptr<Model> draft = [] {
    ModelOptions options;
    options.max_step_tokens = 32;
    options.context_size = 256;
    return Model::load((std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny-draft.gguf").string(),
                       *tiny().backend, options);
  }();
  return *draft;
}

TEST(EngineTest, SpeculativeGreedyOutputsEqualEachRequestAlone) {
  // Speculating requests (every other one) batched with plain ones, by prompt lookup and with the
  // draft model: each output is the plain greedy run's, token for token; drafts were kept.
  std::vector<Outcome> alone;
  for (const std::string& p : kPrompts) alone.push_back(run_alone(request(p, 40)));
  for (Model* draft : {static_cast<Model*>(nullptr), &tiny_draft()}) {
    SCOPED_TRACE(draft != nullptr ? "draft model" : "prompt lookup");
    EngineOptions options = small_options();
    options.draft_model = draft;
    Engine engine(*tiny().model, *tiny().tokenizer, options);
    std::vector<std::shared_ptr<EngineRequest>> requests;
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      requests.push_back(request(kPrompts[i], 40));
      if (i % 2 == 0) {
        requests.back()->options.speculative.draft_max = 4;
        requests.back()->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
      }
      ASSERT_TRUE(engine.submit(requests.back()));
      engine.step();
    }
    int32_t drafted = 0, accepted = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      const Outcome together = collect(*requests[i], [&] { engine.step(); });
      EXPECT_EQ(together.ids[0], alone[i].ids[0]) << kPrompts[i];
      EXPECT_EQ(together.text[0], alone[i].text[0]);
      EXPECT_EQ(together.stats[0].generated_tokens, 40);
      EXPECT_EQ(together.stats[0].finish, FinishReason::kMaxTokens);
      if (i % 2 != 0) {
        EXPECT_EQ(together.stats[0].draft_tokens, 0);
      }
      drafted += together.stats[0].draft_tokens;
      accepted += together.stats[0].accepted_tokens;
    }
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, drafted);
    EXPECT_EQ(engine.stats().draft_tokens, drafted);
    EXPECT_EQ(engine.stats().accepted_tokens, accepted);
    EXPECT_EQ(engine.stats().generated_tokens, 40 * static_cast<int64_t>(kPrompts.size()));
    EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  }
}

TEST(EngineTest, SpeculationUnderPreemptionAndStops) {
  // A pool of one context for four speculating requests: preemption drops a sequence's draft
  // cache too, and recomputing changes no output. Stop strings and the context limit end a
  // speculative step's tokens where they would end plain decoding's.
  const EngineStats stats = run_preempted(&tiny_draft(), 6);
  EXPECT_GT(stats.accepted_tokens, 0);

  auto plain = request(kPrompts[0], 60);
  plain->options.stop.strings = {" the"};
  const Outcome expected = run_alone(plain);
  auto spec = request(kPrompts[0], 60);
  spec->options.stop.strings = {" the"};
  spec->options.speculative.draft_max = 6;
  spec->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
  EngineOptions with_draft = small_options();
  with_draft.draft_model = &tiny_draft();
  const Outcome got = run_alone(spec, with_draft);
  EXPECT_EQ(got.ids[0], expected.ids[0]);
  EXPECT_EQ(got.text[0], expected.text[0]);
  EXPECT_EQ(got.stats[0].finish, expected.stats[0].finish);

  auto full = request(kPrompts[2], -1);  // until the context is full
  full->options.speculative.draft_max = 8;
  full->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
  const Outcome to_the_end = run_alone(full, with_draft);
  const Outcome plain_end = run_alone(request(kPrompts[2], -1));
  EXPECT_EQ(to_the_end.ids[0], plain_end.ids[0]);
  EXPECT_EQ(to_the_end.stats[0].finish, FinishReason::kContextFull);
}

TEST(EngineTest, SpeculationLeavesChoicesAndPromptsTheirTurn) {
  // A prompt one token longer than a step: its last token decodes alone, and the n = 2 choices
  // fork from that row (no draft there), so greedy choices are equal and the plain run's.
  const std::string prompt = kPrompts[2];
  const auto n_prompt = static_cast<int32_t>(tokens(prompt).size());
  EngineOptions options = small_options();
  options.step_tokens = n_prompt - 1;
  options.draft_model = &tiny_draft();
  auto two = request(prompt, 30, 2);
  two->options.speculative.draft_max = 4;
  two->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
  const Outcome both = run_alone(two, options);
  const Outcome plain = run_alone(request(prompt, 30));
  EXPECT_EQ(both.ids[0], plain.ids[0]);
  EXPECT_EQ(both.ids[1], plain.ids[0]);

  // Drafts take only the rows prompts leave: with 8-row steps and a draft that is always kept (the
  // model is its own draft), a request arriving later still gets its first token while the first
  // one runs.
  EngineOptions small = small_options();
  small.step_tokens = 8;
  small.draft_model = tiny().model.get();
  Engine engine(*tiny().model, *tiny().tokenizer, small);
  auto first = request(kPrompts[3], 150);
  first->options.speculative.draft_max = 8;
  first->options.speculative.p_min = 0.0f;  // full-length drafts: rejections happen
  ASSERT_TRUE(engine.submit(first));
  for (int i = 0; i < 4; ++i) engine.step();
  auto second = request(kPrompts[1], 4);
  ASSERT_TRUE(engine.submit(second));
  std::vector<EngineEvent> events;
  bool second_started = false;
  for (int i = 0; i < 10 && !second_started; ++i) {
    engine.step();
    events.clear();
    second->next(events, std::chrono::milliseconds(0));
    for (const EngineEvent& e : events) second_started = second_started || e.has_token;
  }
  EXPECT_TRUE(second_started);
  EXPECT_FALSE(first->ended());
  EXPECT_GT(engine.stats().accepted_tokens, 0);
  collect(*first, [&] { engine.step(); });
  collect(*second, [&] { engine.step(); });
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(EngineTest, ChoicesAreTheRunsOfTheirOwnSeeds) {
  auto r = request(kPrompts[0], 16, 3, 0.9f, 100);
  const Outcome together = run_alone(r);
  for (int32_t c = 0; c < 3; ++c) {
    const Outcome single = run_alone(request(kPrompts[0], 16, 1, 0.9f, 100 + static_cast<uint64_t>(c)));
    EXPECT_EQ(together.ids[static_cast<size_t>(c)], single.ids[0]) << "choice " << c;
    EXPECT_EQ(together.stats[static_cast<size_t>(c)].generated_tokens, 16);
  }
  EXPECT_NE(together.ids[0], together.ids[1]);
}

TEST(EngineTest, ChoicesSharePromptBlocks) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  auto r = request(kPrompts[2], 4, 4, 0.9f, 7);  // a 3-block prompt
  ASSERT_TRUE(engine.submit(r));
  while (engine.stats().running < 4) ASSERT_TRUE(engine.step());
  // Four sequences of ~40 tokens would hold 12 blocks each alone; sharing the full prompt blocks
  // leaves one private block (the copied partial one) per choice.
  const int64_t prompt_blocks = static_cast<int64_t>(r->prompt.size() + 15) / 16;
  EXPECT_LE(engine.stats().kv_blocks_used, prompt_blocks + 4);
  collect(*r, [&] { engine.step(); });
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(EngineTest, SharedPrefixIsComputedOnce) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  const std::string system = kPrompts[2] + " " + kPrompts[4];  // over 3 full blocks
  auto first = request(system + " And he said", 8);
  ASSERT_TRUE(engine.submit(first));
  const Outcome a = collect(*first, [&] { engine.step(); });
  EXPECT_EQ(a.stats[0].cached_tokens, 0);

  auto second = request(system + " Behold", 8);
  ASSERT_TRUE(engine.submit(second));
  const Outcome b = collect(*second, [&] { engine.step(); });
  const int32_t common = static_cast<int32_t>(tokens(system).size());
  EXPECT_GE(b.stats[0].cached_tokens, (common / 16 - 1) * 16);
  EXPECT_EQ(b.stats[0].cached_tokens % 16, 0);
  EXPECT_GT(engine.stats().prefix_hit_tokens, 0);
  // A hit changes nothing in the output.
  EXPECT_EQ(b.ids[0], run_alone(request(system + " Behold", 8)).ids[0]);

  EngineOptions off = small_options();
  off.prefix_cache = false;
  Engine cold(*tiny().model, *tiny().tokenizer, off);
  auto again = request(system + " And he said", 8);
  ASSERT_TRUE(cold.submit(again));
  collect(*again, [&] { cold.step(); });
  auto third = request(system + " Behold", 8);
  ASSERT_TRUE(cold.submit(third));
  EXPECT_EQ(collect(*third, [&] { cold.step(); }).stats[0].cached_tokens, 0);
}

TEST(EngineTest, PreemptionRecomputesWithoutChangingOutputs) { run_preempted(nullptr, 0); }

TEST(EngineTest, CancelEndsTheRequestAndFreesItsBlocks) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  auto r = request(kPrompts[0], -1);  // until the context is full
  auto other = request(kPrompts[1], 12);
  ASSERT_TRUE(engine.submit(r));
  ASSERT_TRUE(engine.submit(other));
  for (int i = 0; i < 5; ++i) engine.step();
  EXPECT_GT(engine.stats().kv_blocks_used, 0);
  r->cancel.store(true);
  engine.step();
  const Outcome o = collect(*r);
  EXPECT_EQ(o.stats[0].finish, FinishReason::kCancelled);
  EXPECT_GT(o.stats[0].generated_tokens, 0);
  const Outcome rest = collect(*other, [&] { engine.step(); });
  EXPECT_EQ(rest.stats[0].generated_tokens, 12);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(EngineTest, ContextFullEndsTheGeneration) {
  auto r = request(kPrompts[2], -1);
  const Outcome o = run_alone(r);
  EXPECT_EQ(o.stats[0].finish, FinishReason::kContextFull);
  EXPECT_EQ(static_cast<int32_t>(r->prompt.size()) + o.stats[0].generated_tokens, 256 + 1);
}

TEST(EngineTest, QueueIsBoundedBeyondTheFreeSlots) {
  EngineOptions options = small_options();
  options.max_running = 2;
  options.max_waiting = 1;
  Engine engine(*tiny().model, *tiny().tokenizer, options);
  // Two free slots take two at once; one more may wait.
  EXPECT_TRUE(engine.submit(request(kPrompts[0], 4)));
  EXPECT_TRUE(engine.submit(request(kPrompts[1], 4)));
  EXPECT_TRUE(engine.submit(request(kPrompts[2], 4)));
  EXPECT_FALSE(engine.submit(request(kPrompts[3], 4)));
  engine.step();  // two run, one waits: the queue is full
  EXPECT_EQ(engine.stats().running, 2);
  EXPECT_EQ(engine.stats().waiting, 1);
  EXPECT_FALSE(engine.submit(request(kPrompts[3], 4)));

  options.max_waiting = 0;  // no queue at all still serves an idle engine
  Engine unqueued(*tiny().model, *tiny().tokenizer, options);
  EXPECT_TRUE(unqueued.submit(request(kPrompts[0], 4)));
}

TEST(EngineTest, ContextBoundHoldsUnderPreemption) {
  EngineOptions options = small_options();
  options.kv_tokens = 256 + 64;  // two sequences cannot both reach the full context
  options.max_running = 2;
  Engine engine(*tiny().model, *tiny().tokenizer, options);
  auto a = request(kPrompts[2], -1);
  auto b = request(kPrompts[0], -1);
  ASSERT_TRUE(engine.submit(a));
  ASSERT_TRUE(engine.submit(b));
  bool saw_preempted_work = false;
  while (!a->ended() || !b->ended()) {
    ASSERT_TRUE(engine.step());
    const EngineStats stats = engine.stats();
    if (stats.preemptions > 0 && !(a->ended() && b->ended())) {
      // A preempted request is still work: neither idle nor invisible to the gauges.
      saw_preempted_work = true;
      EXPECT_GT(stats.waiting + stats.running, 0);
      EXPECT_FALSE(engine.wait_idle(std::chrono::milliseconds(0)));
    }
  }
  EXPECT_TRUE(saw_preempted_work);
  for (const auto& r : {a, b}) {
    const Outcome o = collect(*r);
    EXPECT_EQ(o.stats[0].finish, FinishReason::kContextFull);
    EXPECT_EQ(static_cast<int32_t>(r->prompt.size()) + o.stats[0].generated_tokens, 256 + 1);
  }
  EXPECT_TRUE(engine.wait_idle(std::chrono::milliseconds(0)));
}

TEST(EngineTest, RejectsBadRequests) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  auto empty = request("", 4);
  empty->prompt.clear();
  EXPECT_THROW(engine.submit(empty), Error);
  auto long_prompt = request(kPrompts[0], 4);
  long_prompt->prompt.assign(256, 100);
  EXPECT_THROW(engine.submit(long_prompt), Error);
  auto bad_token = request(kPrompts[0], 4);
  bad_token->prompt.push_back(1 << 20);
  EXPECT_THROW(engine.submit(bad_token), Error);
  auto bad_top_p = request(kPrompts[0], 4);
  bad_top_p->options.sampling.top_p = 2.0f;
  EXPECT_THROW(engine.submit(bad_top_p), Error);
  EXPECT_EQ(engine.stats().waiting, 0);
}

TEST(EngineTest, MeanEmbeddingEqualsAPooledForwardPass) {
  for (const Pooling pooling : {Pooling::kMean, Pooling::kLast, Pooling::kCls}) {
    auto r = std::make_shared<EngineRequest>();
    r->kind = EngineRequest::Kind::kEmbed;
    r->prompt = tokens(kPrompts[2]);  // more rows than a step: pooled across chunks
    r->pooling = pooling;
    const Outcome o = run_alone(r);
    ASSERT_EQ(o.embedding.size(), static_cast<size_t>(tiny().model->config().n_embd));

    // The same by hand: one forward pass of hidden rows.
    Model& model = *tiny().model;
    KvCache kv(model.config(), model.kv_options(256));
    const SeqId seq = kv.add_sequence();
    Batch batch;
    for (size_t i = 0; i < r->prompt.size(); ++i) batch.add(r->prompt[i], static_cast<int32_t>(i), seq, Batch::kHidden);
    model.forward(batch, kv);
    const std::span<const float> hidden = model.hidden();
    const size_t n_embd = o.embedding.size();
    const size_t n_rows = r->prompt.size();
    std::vector<double> expect(n_embd, 0.0);
    for (size_t row = 0; row < n_rows; ++row) {
      if (pooling == Pooling::kCls && row != 0) continue;
      if (pooling == Pooling::kLast && row + 1 != n_rows) continue;
      for (size_t i = 0; i < n_embd; ++i) expect[i] += hidden[row * n_embd + i];
    }
    double norm = 0;
    for (const double v : expect) norm += v * v;
    norm = std::sqrt(norm);
    double dot = 0;
    for (size_t i = 0; i < n_embd; ++i) {
      EXPECT_NEAR(o.embedding[i], expect[i] / norm, 1e-4) << i;
      dot += double{o.embedding[i]} * o.embedding[i];
    }
    EXPECT_NEAR(dot, 1.0, 1e-5);
  }
}

TEST(EngineTest, ThreadServesConcurrentSubmitters) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  engine.start();
  std::vector<std::shared_ptr<EngineRequest>> requests(kPrompts.size());
  std::vector<Outcome> outcomes(kPrompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    clients.emplace_back([&, i] {
      requests[i] = request(kPrompts[i], 16);
      ASSERT_TRUE(engine.submit(requests[i]));
      outcomes[i] = collect(*requests[i]);
    });
  }
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(outcomes[i].ids[0], run_alone(request(kPrompts[i], 16)).ids[0]) << kPrompts[i];
  }
  EXPECT_TRUE(engine.wait_idle(10s));
  engine.stop(false);
  EXPECT_FALSE(engine.submit(request(kPrompts[0], 4)));
}

TEST(EngineTest, StopWithCancelEndsRunningRequests) {
  Engine engine(*tiny().model, *tiny().tokenizer, small_options());
  engine.start();
  auto r = request(kPrompts[0], -1);
  ASSERT_TRUE(engine.submit(r));
  std::vector<EngineEvent> events;
  while (events.empty()) ASSERT_FALSE(r->next(events, 30s));  // running
  engine.stop(true);
  const Outcome o = collect(*r);
  EXPECT_TRUE(o.stats[0].finish == FinishReason::kCancelled || o.stats[0].finish == FinishReason::kContextFull);
}

}  // namespace
}  // namespace ember
