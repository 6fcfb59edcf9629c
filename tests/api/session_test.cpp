// The C++ API end to end on stories260K: load, tokenize, greedy text equal to llama.cpp's, the pull
// and callback styles, stop conditions, prefix reuse, cancellation, hooks, logprobs, bad options.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.hpp"
#include "support/test_data.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using test::kStories;
using test::kStoriesPrompt;

// llama.cpp's greedy continuation (llama-simple, ../shared/data/models/stories260K/reference).
const std::string kGreedyContinuation = ", there was a little girl named Lily. She loved to play outside in the park.";

GenerateOptions greedy(int32_t max_tokens) {
  GenerateOptions o;
  o.sampling.temperature = 0.0f;
  o.stop.max_tokens = max_tokens;
  return o;
}

std::shared_ptr<Llm> load_stories(const fs::path& data, int32_t context = 256) {
  return Llm::load((data / kStories).string(), LoadOptions{.threads = 2, .context = context});
}

std::string pull_all(Generation& generation) {
  std::string text;
  for (const GeneratedToken& t : generation) text += t.text;
  return text;
}

TEST(ApiSession, LoadsAndDescribesTheModel) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  const ModelInfo& info = llm->info();
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.n_vocab, 512);
  EXPECT_EQ(info.context, 256);
  EXPECT_EQ(info.threads, 2);
  EXPECT_GT(info.parameters, 200'000u);
  EXPECT_FALSE(info.kernels.empty());

  const std::vector<int32_t> ids = llm->tokenize(kStoriesPrompt);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);  // BOS
  EXPECT_EQ(llm->detokenize(ids), kStoriesPrompt);
  EXPECT_EQ(llm->tokenize(kStoriesPrompt, false).size(), ids.size() - 1);
}

TEST(ApiSession, GreedyTextIsLlamaCppsInBothStyles) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  Session session(llm, SessionOptions{.reuse_prefix = false});
  Generation generation = session.generate(kStoriesPrompt, greedy(40));
  const std::string pulled = pull_all(generation);
  EXPECT_EQ(pulled.rfind(kGreedyContinuation, 0), 0u) << pulled;
  EXPECT_EQ(generation.text(), pulled);
  EXPECT_EQ(generation.stats().finish, FinishReason::kMaxTokens);
  EXPECT_EQ(generation.stats().generated_tokens, 40);
  EXPECT_EQ(generation.stats().cached_tokens, 0);

  std::string called;
  int calls = 0;
  const GenerationStats stats = session.generate(kStoriesPrompt, greedy(40), [&](const GeneratedToken& t) {
    called += t.text;
    ++calls;
    return true;
  });
  EXPECT_EQ(called, pulled);
  EXPECT_GE(calls, 40);
  EXPECT_EQ(stats.generated_tokens, 40);
  EXPECT_GT(stats.total_ms, 0.0);
  EXPECT_GT(stats.first_token_ms, 0.0);
}

TEST(ApiSession, StopStringIsNeverPartOfTheOutput) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data));
  GenerateOptions o = greedy(60);
  o.stop.strings = {"zebra", " Lily."};
  Generation generation = session.generate(kStoriesPrompt, o);
  const std::string text = pull_all(generation);
  EXPECT_EQ(text, ", there was a little girl named");
  EXPECT_EQ(generation.stats().finish, FinishReason::kStopString);
  EXPECT_EQ(generation.stats().stop_string, " Lily.");
}

// byte_offset places each token's bytes in the whole text: where the text shown so far ends when
// nothing is held back, and past the shown text for the tokens that made only a stop string.
TEST(ApiSession, ByteOffsetsPlaceTokensInTheTextAndPastTheStopString) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data));
  std::vector<GeneratedToken> plain;
  std::string shown;
  session.generate(kStoriesPrompt, greedy(20), [&](const GeneratedToken& t) {
    EXPECT_EQ(t.byte_offset, shown.size()) << plain.size();  // ASCII, no stop strings: nothing held
    shown += t.text;
    plain.push_back(t);
    return true;
  });
  ASSERT_EQ(plain.size(), 20u);

  GenerateOptions o = greedy(60);
  o.stop.strings = {" Lily."};
  std::vector<GeneratedToken> stopped;
  std::string text;
  session.generate(kStoriesPrompt, o, [&](const GeneratedToken& t) {
    text += t.text;
    stopped.push_back(t);
    return true;
  });
  ASSERT_EQ(text, ", there was a little girl named");
  // The same tokens and offsets as without the stop string, up to its end; the tokens from " Lily"
  // on start at or past the text shown, and there is at least one.
  size_t in_text = 0;
  for (size_t i = 0; i < stopped.size(); ++i) {
    if (stopped[i].id < 0) continue;
    ASSERT_LT(i, plain.size());
    EXPECT_EQ(stopped[i].id, plain[i].id) << i;
    EXPECT_EQ(stopped[i].byte_offset, plain[i].byte_offset) << i;
    if (stopped[i].byte_offset < text.size()) ++in_text;
  }
  EXPECT_LT(in_text, stopped.size());
  size_t plain_in_text = 0;
  for (const GeneratedToken& t : plain) plain_in_text += t.byte_offset < text.size() ? 1 : 0;
  EXPECT_EQ(in_text, plain_in_text);
  ASSERT_LT(in_text, plain.size());
  EXPECT_EQ(shown.substr(plain[in_text].byte_offset, 5), " Lily");  // the first token past the text
}

// Speculative decoding by prompt lookup: a prompt that already holds the story, so the lookup
// drafts well. Greedy output is token for token plain decoding's, stop strings and max_tokens
// included; drafts were made and some kept.
TEST(ApiSession, PromptLookupSpeculationKeepsGreedyOutput) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  const std::string prompt = std::string(kStoriesPrompt) + kGreedyContinuation + "\n" + kStoriesPrompt;
  for (const int32_t max_tokens : {40, 7}) {
    for (const char* stop : {"", " park"}) {
      SCOPED_TRACE(std::to_string(max_tokens) + " '" + stop + "'");
      GenerateOptions plain = greedy(max_tokens);
      if (*stop != '\0') plain.stop.strings = {stop};
      GenerateOptions spec = plain;
      spec.speculative.draft_max = 5;
      spec.speculative.pause_when_slower = false;  // count the steps: not on timing
      Session a(llm, SessionOptions{.reuse_prefix = false});
      Session b(llm, SessionOptions{.reuse_prefix = false});
      Generation ga = a.generate(prompt, plain);
      Generation gb = b.generate(prompt, spec);
      std::vector<int32_t> ids_a, ids_b;
      std::string text_a, text_b;
      for (const GeneratedToken& t : ga) {
        ids_a.push_back(t.id);
        text_a += t.text;
      }
      for (const GeneratedToken& t : gb) {
        ids_b.push_back(t.id);
        text_b += t.text;
      }
      EXPECT_EQ(ids_b, ids_a);
      EXPECT_EQ(text_b, text_a);
      EXPECT_EQ(gb.stats().finish, ga.stats().finish);
      EXPECT_EQ(gb.stats().generated_tokens, ga.stats().generated_tokens);
      EXPECT_GT(gb.stats().draft_tokens, 0);
      EXPECT_GT(gb.stats().accepted_tokens, 0);
      EXPECT_LE(gb.stats().accepted_tokens, gb.stats().draft_tokens);
      EXPECT_LT(gb.stats().decode_steps, ga.stats().decode_steps);  // fewer forward passes
    }
  }
  // Under a constraint: drafts the grammar refuses are cut, the output stays plain decoding's.
  GenerateOptions plain = greedy(30);
  plain.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = "(,? [a-z]+)+\\."};
  GenerateOptions spec = plain;
  spec.speculative.draft_max = 5;
  spec.speculative.pause_when_slower = false;  // count the steps: not on timing
  Session a(llm, SessionOptions{.reuse_prefix = false});
  Session b(llm, SessionOptions{.reuse_prefix = false});
  Generation ga = a.generate(prompt, plain);
  Generation gb = b.generate(prompt, spec);
  const std::string text_a = pull_all(ga);
  EXPECT_EQ(pull_all(gb), text_a);
  EXPECT_GT(gb.stats().accepted_tokens, 0);
}

// Tokens, texts, logprobs and stats of one generation.
struct RunResult {
  std::vector<int32_t> ids;
  std::string text;
  std::vector<float> logprobs;
  GenerationStats stats;
};

RunResult run_generation(const std::shared_ptr<Llm>& llm, const std::string& prompt, const GenerateOptions& o) {
  Session session(llm, SessionOptions{.reuse_prefix = false});
  Generation g = session.generate(prompt, o);
  RunResult r;
  for (const GeneratedToken& t : g) {
    r.ids.push_back(t.id);
    r.text += t.text;
    r.logprobs.push_back(t.logprob);
  }
  r.stats = g.stats();
  return r;
}

// What review found: speculation with the penalties and DRY (the sampler is copied per step),
// logprobs of the kept tokens, a constraint whose every allowed logit is -inf, a callback that
// stops part way through a speculative step's tokens, and bad options.
TEST(ApiSession, PromptLookupSpeculationEdges) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  const std::string prompt = std::string(kStoriesPrompt) + kGreedyContinuation + "\n" + kStoriesPrompt;
  GenerateOptions plain = greedy(30);
  plain.sampling.repeat_penalty = 1.1f;
  plain.sampling.dry_multiplier = 0.8f;
  plain.sampling.dry_penalty_last_n = 48;
  plain.logprobs = 2;
  GenerateOptions spec = plain;
  spec.speculative.draft_max = 5;
  spec.speculative.pause_when_slower = false;  // count the steps: not on timing
  const RunResult a = run_generation(llm, prompt, plain);
  const RunResult b = run_generation(llm, prompt, spec);
  EXPECT_EQ(b.ids, a.ids);
  EXPECT_EQ(b.text, a.text);
  ASSERT_EQ(b.logprobs.size(), a.logprobs.size());
  for (size_t i = 0; i < a.logprobs.size(); ++i) EXPECT_NEAR(b.logprobs[i], a.logprobs[i], 1e-4f) << i;
  EXPECT_GT(b.stats.accepted_tokens, 0);

  // Every token banned but the constraint's: the first allowed token, as plain decoding picks it.
  GenerateOptions banned = greedy(12);
  for (int32_t t = 0; t < 512; ++t) banned.sampling.logit_bias.emplace_back(t, -INFINITY);
  banned.constraint = {.kind = OutputConstraint::Kind::kRegex, .text = "( a)+"};
  GenerateOptions banned_spec = banned;
  banned_spec.speculative.draft_max = 5;
  banned_spec.speculative.pause_when_slower = false;  // count the steps: not on timing
  EXPECT_EQ(run_generation(llm, " a a a a a a a a", banned_spec).ids,
            run_generation(llm, " a a a a a a a a", banned).ids);

  // A callback that stops after 2 tokens: 2 generated, cancelled, whatever a step had chosen.
  GenerateOptions six = greedy(6);
  six.speculative.draft_max = 5;
  six.speculative.pause_when_slower = false;  // count the steps: not on timing
  Session session(llm, SessionOptions{.reuse_prefix = false});
  int seen = 0;
  const GenerationStats stats = session.generate(prompt, six, [&](const GeneratedToken&) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(stats.generated_tokens, 2);
  EXPECT_EQ(stats.finish, FinishReason::kCancelled);

  GenerateOptions bad = greedy(4);
  bad.speculative = {.draft_max = 4, .ngram_min = 3, .ngram_max = 2};
  EXPECT_THROW(session.generate(prompt, bad, [](const GeneratedToken&) { return true; }), Error);
  bad.speculative = {.draft_max = 65};
  EXPECT_THROW(session.generate(prompt, bad, [](const GeneratedToken&) { return true; }), Error);
  bad.speculative = {.draft_max = 4};
  bad.sampling.mirostat = 2;
  EXPECT_THROW(session.generate(prompt, bad, [](const GeneratedToken&) { return true; }), Error);
}

// A draft model through the public API: ember-tiny with ember-tiny-draft (models/, always here),
// batch-invariant so greedy speculation is plain decoding bit for bit; a draft of another
// vocabulary is refused when the session is made.
TEST(ApiSession, DraftModelSpeculationKeepsGreedyOutput) {
  const fs::path models = fs::path(EMBER_SOURCE_DIR) / "models";
  const LoadOptions load{.threads = 2, .context = 256, .batch_invariant = true};
  const auto target = Llm::load((models / "ember-tiny.gguf").string(), load);
  const auto draft = Llm::load((models / "ember-tiny-draft.gguf").string(), load);
  Session plain(target, SessionOptions{.reuse_prefix = false});
  Session speculative(target, SessionOptions{.reuse_prefix = false, .draft_model = draft});
  GenerateOptions o = greedy(60);
  Generation a = plain.generate("And the LORD said unto Moses", o);
  const std::string text = pull_all(a);
  o.speculative.draft_max = 5;
  o.speculative.pause_when_slower = false;  // count the steps: not on timing
  Generation b = speculative.generate("And the LORD said unto Moses", o);
  EXPECT_EQ(pull_all(b), text);
  EXPECT_EQ(b.stats().generated_tokens, a.stats().generated_tokens);
  EXPECT_GT(b.stats().accepted_tokens, 0);
  EXPECT_LT(b.stats().decode_steps, a.stats().decode_steps);
  ASSERT_FALSE(b.stats().drafted_at.empty());
  EXPECT_EQ(b.stats().drafted_at.size(), b.stats().accepted_at.size());

  EMBER_SHARED_DATA_OR_SKIP(data);
  try {
    Session mismatched(target, SessionOptions{.draft_model = load_stories(data)});
    ADD_FAILURE() << "a draft of another vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
}

TEST(ApiSession, ReusedPrefixGivesTheSameTextWithoutRecomputingIt) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  Session session(llm);
  Generation first = session.generate(kStoriesPrompt, greedy(12));
  const std::string first_text = pull_all(first);
  const size_t n_prompt = llm->tokenize(kStoriesPrompt).size();
  EXPECT_EQ(session.cached_tokens().size(), n_prompt + 11);  // the last token is never run

  // The next turn starts with everything so far: only its new tokens are computed.
  const std::string turn2 = std::string(kStoriesPrompt) + first_text + " One day";
  Generation second = session.generate(turn2, greedy(20));
  const std::string reused = pull_all(second);
  EXPECT_GE(second.stats().cached_tokens, static_cast<int32_t>(n_prompt + 8));
  EXPECT_LT(second.stats().cached_tokens, second.stats().prompt_tokens);

  Session fresh(llm, SessionOptions{.reuse_prefix = false});
  Generation cold = fresh.generate(turn2, greedy(20));
  EXPECT_EQ(pull_all(cold), reused);
  EXPECT_EQ(cold.stats().cached_tokens, 0);

  // The same prompt again: all but its last token come from the cache.
  Generation again = session.generate(turn2, greedy(20));
  EXPECT_EQ(pull_all(again), reused);
  EXPECT_EQ(again.stats().cached_tokens, again.stats().prompt_tokens - 1);

  session.reset();
  EXPECT_TRUE(session.cached_tokens().empty());
}

TEST(ApiSession, CancelFromAnotherThreadStopsBeforeTheNextStep) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data, 512));
  GenerateOptions o = greedy(-1);
  o.stop.ignore_eos = true;  // would run until the context is full
  std::atomic<int> tokens{0};
  std::thread canceller([&] {
    while (tokens.load() < 3) std::this_thread::sleep_for(std::chrono::microseconds(100));
    session.cancel();
  });
  const GenerationStats stats = session.generate(kStoriesPrompt, o, [&](const GeneratedToken&) {
    tokens.fetch_add(1);
    return true;
  });
  canceller.join();
  EXPECT_EQ(stats.finish, FinishReason::kCancelled);
  EXPECT_LT(stats.generated_tokens, 400);

  // The callback asking to stop: no further calls.
  int calls = 0;
  const GenerationStats stopped =
      session.generate(kStoriesPrompt, o, [&](const GeneratedToken&) { return ++calls < 5; });
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(stopped.finish, FinishReason::kCancelled);
}

TEST(ApiSession, StopsWhenTheContextIsFull) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data, 32);
  Session session(llm);
  GenerateOptions o = greedy(-1);
  o.stop.ignore_eos = true;
  Generation generation = session.generate(kStoriesPrompt, o);
  pull_all(generation);
  const int32_t n_prompt = static_cast<int32_t>(llm->tokenize(kStoriesPrompt).size());
  EXPECT_EQ(generation.stats().finish, FinishReason::kContextFull);
  EXPECT_EQ(generation.stats().generated_tokens, 32 - n_prompt + 1);  // the last one has no room
}

TEST(ApiSession, SameSeedSameTextAndANewGenerateEndsTheOldOne) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data));
  GenerateOptions o;
  o.sampling.seed = 7;
  o.stop.max_tokens = 40;
  Generation a = session.generate(kStoriesPrompt, o);
  const std::string text_a = pull_all(a);
  Generation b = session.generate(kStoriesPrompt, o);
  GeneratedToken t;
  EXPECT_FALSE(a.next(t));  // superseded
  EXPECT_EQ(pull_all(b), text_a);
  o.sampling.seed = 8;
  Generation c = session.generate(kStoriesPrompt, o);
  EXPECT_NE(pull_all(c), text_a);  // 40 sampled tokens: equal only by a tiny chance
}

TEST(ApiSession, LogprobsComeFromTheModelsDistribution) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data));
  GenerateOptions o = greedy(10);
  o.logprobs = 3;
  Generation generation = session.generate(kStoriesPrompt, o);
  int n = 0;
  for (const GeneratedToken& t : generation) {
    if (t.id < 0) continue;
    ++n;
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].token, t.id);  // greedy picks the most likely
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_LE(t.top[0].logprob, 0.0f);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
    double mass = 0;
    for (const TokenLogprob& alt : t.top) mass += std::exp(alt.logprob);
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
  EXPECT_EQ(n, 10);
}

TEST(ApiSession, HooksSeeEveryStep) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  int logits_calls = 0;
  int64_t n_cols = 0;
  const Llm::HookHandle handle = llm->add_hook(HookPoint::kLogits, [&](const HookTensor& t) {
    ++logits_calls;
    n_cols = t.n_cols;
  });
  Session session(llm);
  Generation generation = session.generate(kStoriesPrompt, greedy(5));
  pull_all(generation);
  EXPECT_EQ(logits_calls, 5);  // the prompt's step, then 4 decode steps
  EXPECT_EQ(n_cols, 512);
  llm->remove_hook(handle);
  Generation more = session.generate("Once upon a time, a dog", greedy(3));
  pull_all(more);
  EXPECT_EQ(logits_calls, 5);
}

TEST(ApiSession, TwoSessionsOnOneModelInTwoThreadsMatchRunningAlone) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  Session alone(llm);
  Generation reference = alone.generate(kStoriesPrompt, greedy(30));
  const std::string expected = pull_all(reference);
  std::string texts[2];
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Session session(llm);
      Generation g = session.generate(kStoriesPrompt, greedy(30));
      texts[i] = pull_all(g);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(texts[0], expected);
  EXPECT_EQ(texts[1], expected);
}

TEST(ApiSession, ChatTemplatesFromTheModelAPresetOrSource) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string path = (data / kStories).string();
  const std::vector<ChatMessage> messages = {{"system", "Be kind."}, {"user", "Hi"}};
  // stories260K has no template: ChatML.
  const auto llm = load_stories(data);
  EXPECT_EQ(llm->apply_chat_template(messages),
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(llm->apply_chat_template(messages, false),
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");

  const auto custom = Llm::load(
      path, LoadOptions{.chat_template =
                            "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{{ bos_token }}"});
  EXPECT_EQ(custom->apply_chat_template(messages), "[system] Be kind.\n[user] Hi\n<s>");
  EXPECT_EQ(custom->chat_template().rfind("{% for m", 0), 0u);

  const auto llama3 = Llm::load(path, LoadOptions{.chat_template = "llama3"});
  EXPECT_EQ(llama3->apply_chat_template(messages).rfind("<s><|start_header_id|>system<|end_header_id|>\n\nBe kind.", 0),
            0u)
      << llama3->apply_chat_template(messages);

  // A template that does not parse still loads; applying it says where it is wrong.
  const auto broken = Llm::load(path, LoadOptions{.chat_template = "{% for m in messages %}{{ m.role }"});
  try {
    broken->apply_chat_template(messages);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFormat);
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
  const auto raising = Llm::load(path, LoadOptions{.chat_template = "{{ raise_exception('Roles must alternate') }}"});
  try {
    raising->apply_chat_template(messages);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "Roles must alternate");
  }
  EXPECT_THROW(Llm::load(path, LoadOptions{.chat_template = "no-such-preset"}), Error);
}

TEST(ApiSession, AHookThrowingMidPrefillEndsTheGenerationAndKeepsTheCacheTrue) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data, 1024);
  std::string long_prompt;
  while (llm->tokenize(long_prompt).size() < 700) long_prompt += "Once upon a time, a cat sat on a mat. ";
  const std::vector<int32_t> prompt = llm->tokenize(long_prompt);
  int steps = 0;
  const Llm::HookHandle handle = llm->add_hook(HookPoint::kEmbeddings, [&](const HookTensor&) {
    if (++steps == 2) throw std::runtime_error("hook failed");  // the second prefill chunk
  });
  Session session(llm);
  Generation generation = session.generate(long_prompt, greedy(4));
  GeneratedToken token;
  EXPECT_THROW(generation.next(token), std::runtime_error);
  EXPECT_EQ(generation.stats().finish, FinishReason::kError);
  EXPECT_FALSE(generation.next(token));
  // The first chunk (512 tokens) stayed in the cache; nothing of the failed one.
  ASSERT_EQ(session.cached_tokens().size(), 512u);
  EXPECT_TRUE(std::equal(session.cached_tokens().begin(), session.cached_tokens().end(), prompt.begin()));

  // The next generation computes the rest and gives what a fresh session gives.
  Generation retry = session.generate(long_prompt, greedy(8));
  const std::string text = pull_all(retry);
  EXPECT_EQ(retry.stats().cached_tokens, 512);
  EXPECT_EQ(session.cached_tokens().size(), prompt.size() + 7);
  llm->remove_hook(handle);
  Session fresh(llm);
  Generation cold = fresh.generate(long_prompt, greedy(8));
  EXPECT_EQ(pull_all(cold), text);
}

TEST(ApiSession, ZeroMaxTokensComputesThePromptOnly) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto llm = load_stories(data);
  Session session(llm);
  Generation warm = session.generate(kStoriesPrompt, greedy(0));
  EXPECT_EQ(pull_all(warm), "");
  EXPECT_EQ(warm.stats().finish, FinishReason::kMaxTokens);
  EXPECT_EQ(warm.stats().generated_tokens, 0);
  EXPECT_GT(warm.stats().prefill_ms, 0.0);
  EXPECT_EQ(session.cached_tokens().size(), llm->tokenize(kStoriesPrompt).size());
  // The next turn reuses it (all but the last token, whose logits it needs).
  Generation next = session.generate(kStoriesPrompt, greedy(5));
  EXPECT_EQ(pull_all(next).rfind(", there was", 0), 0u);
  EXPECT_EQ(next.stats().cached_tokens, next.stats().prompt_tokens - 1);
}

TEST(ApiSession, EndedGenerationsReadAsFinished) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  Session session(load_stories(data));
  Generation first = session.generate(kStoriesPrompt, greedy(5));
  Generation moved = std::move(first);
  GeneratedToken token;
  EXPECT_FALSE(first.next(token));  // NOLINT(bugprone-use-after-move): moved-from reads as ended
  EXPECT_EQ(first.stats().finish, FinishReason::kCancelled);
  EXPECT_TRUE(moved.next(token));
  Generation second = session.generate(kStoriesPrompt, greedy(5));
  EXPECT_FALSE(moved.next(token));  // superseded
  EXPECT_EQ(moved.stats().finish, FinishReason::kCancelled);
  EXPECT_TRUE(moved.text().empty());
  session.reset();
  EXPECT_FALSE(second.next(token));

  // A time limit ends it too (counted from generate(), prefill included).
  GenerateOptions timed = greedy(-1);
  timed.stop.ignore_eos = true;
  timed.stop.max_time_ms = 1e-3;
  Generation limited = session.generate(kStoriesPrompt, timed);
  pull_all(limited);
  EXPECT_EQ(limited.stats().finish, FinishReason::kMaxTime);
  EXPECT_EQ(limited.stats().generated_tokens, 1);
}

TEST(ApiSession, BadInputThrowsAndLeavesTheSessionUsable) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const auto expect_error = [](const auto& body, ErrorCode code, const std::string& needle) {
    try {
      body();
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { Llm::load((data / "no-such-file.gguf").string()); }, ErrorCode::kIo, "no-such-file.gguf");
  expect_error([&] { Llm::load((data / kStories).string(), LoadOptions{.threads = -1}); }, ErrorCode::kInvalidArgument,
               "threads");
  expect_error([&] { Llm::load((data / kStories).string(), LoadOptions{.kv_type = DType::kQ4_0}); },
               ErrorCode::kInvalidArgument, "kv_type");
  // Q8_0 KV blocks are 32 values of one head; stories260K's heads have 8.
  expect_error([&] { Llm::load((data / kStories).string(), LoadOptions{.kv_type = DType::kQ8_0}); },
               ErrorCode::kUnsupported, "multiple of 32");

  const auto llm = load_stories(data, 64);
  Session session(llm);
  GenerateOptions bad = greedy(10);
  bad.sampling.top_p = 1.5f;
  expect_error([&] { session.generate(kStoriesPrompt, bad); }, ErrorCode::kInvalidArgument, "top_p");
  bad = greedy(10);
  bad.stop.strings = {""};
  expect_error([&] { session.generate(kStoriesPrompt, bad); }, ErrorCode::kInvalidArgument, "stop");
  bad = greedy(-2);
  expect_error([&] { session.generate(kStoriesPrompt, bad); }, ErrorCode::kInvalidArgument, "max_tokens");
  const std::string long_prompt(1000, 'a');
  expect_error([&] { session.generate(long_prompt, greedy(1)); }, ErrorCode::kInvalidArgument, "context");
  const std::vector<int32_t> bad_ids = {1, 9999};
  expect_error([&] { session.generate(std::span<const int32_t>(bad_ids), greedy(1)); }, ErrorCode::kInvalidArgument,
               "9999");

  Generation generation = session.generate(kStoriesPrompt, greedy(40));
  EXPECT_EQ(pull_all(generation).rfind(kGreedyContinuation, 0), 0u);
}

}  // namespace
}  // namespace ember
