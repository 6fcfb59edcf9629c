// The serving-engine tests' fixtures: the bundled ember-tiny (batch-invariant, small steps), requests
// by prompt text, the events of a request collected per choice, an engine of its own per request.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember::serving_test {

using namespace std::chrono_literals;

inline const std::filesystem::path kTiny = std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf";

struct Loaded {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// ember-tiny with small forward steps, so prompts are chunked and steps mix prompts with decodes.
inline Loaded& tiny() {
  static Loaded loaded = [] {
    Loaded l;
    CpuBackendOptions backend;
    backend.n_threads = 2;
    l.backend = std::make_unique<CpuBackend>(backend);
    ModelOptions options;
    options.max_step_tokens = 32;
    options.context_size = 256;
    options.batch_invariant = true;
    l.model = Model::load(kTiny.string(), *l.backend, options);
    l.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(l.model->file()));
    return l;
  }();
  return loaded;
}

inline std::vector<int32_t> tokens(const std::string& text) {
  return tiny().tokenizer->encode(text, EncodeOptions{.add_special = true, .parse_special = false});
}

inline std::shared_ptr<EngineRequest> request(const std::string& prompt, int32_t max_tokens, int32_t n = 1,
                                              float temperature = 0.0f, uint64_t seed = 1) {
  auto r = std::make_shared<EngineRequest>();
  r->prompt = tokens(prompt);
  r->n = n;
  r->options.stop.max_tokens = max_tokens;
  r->options.sampling.temperature = temperature;
  r->options.sampling.seed = seed;
  return r;
}

struct Outcome {
  std::vector<std::vector<int32_t>> ids;  // per choice
  std::vector<std::string> text;
  std::vector<GenerationStats> stats;
  std::vector<float> embedding;
  std::string error;
  // Prompt logprobs: the events that carried them (one is right), and whether a token came first.
  int32_t prompt_events = 0;
  std::vector<GeneratedToken> prompt_logprobs;
  bool token_before_prompt_logprobs = false;
};

// Collects a request's events (the engine stepped by `drive`, or by its thread).
inline Outcome collect(EngineRequest& r, const std::function<void()>& drive = {}) {
  Outcome o;
  const size_t n = static_cast<size_t>(r.n);
  o.ids.resize(n);
  o.text.resize(n);
  o.stats.resize(n);
  std::vector<EngineEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (;;) {
    events.clear();
    const bool ended = r.next(events, drive ? 0ms : 100ms);
    for (EngineEvent& e : events) {
      const auto c = static_cast<size_t>(e.choice);
      if (e.has_prompt_logprobs) {
        ++o.prompt_events;
        o.prompt_logprobs = e.prompt_logprobs;
        for (const auto& ids : o.ids) o.token_before_prompt_logprobs |= !ids.empty();
      }
      if (e.has_token) {
        if (e.token.id >= 0) o.ids[c].push_back(e.token.id);
        o.text[c] += e.token.text;
      }
      if (e.last) {
        o.stats[c] = e.stats;
        o.embedding = e.embedding;
        o.error = e.error;
      }
    }
    if (ended) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no end after 120 s";
      break;
    }
    if (drive) drive();
  }
  return o;
}

inline EngineOptions small_options() {
  EngineOptions o;
  o.context = 256;
  o.max_running = 8;
  o.step_tokens = 48;
  return o;
}

inline Outcome run_alone(const std::shared_ptr<EngineRequest>& r, EngineOptions options = small_options()) {
  Engine engine(*tiny().model, *tiny().tokenizer, options);
  EXPECT_TRUE(engine.submit(r));
  return collect(*r, [&] { engine.step(); });
}

inline const std::vector<std::string> kPrompts = {
    "And it came to pass, when the king",
    "In the beginning",
    "Then said Jesus unto his disciples, Verily I say unto you, that a rich man shall hardly enter into the "
    "kingdom of heaven. And again I say unto you,",
    "Blessed are the poor in spirit: for theirs",
    "And the LORD spake unto Moses, saying,",
};

}  // namespace ember::serving_test
