// What the speculative decoding tests share: ember-tiny and ember-tiny-draft on one backend, and a
// Generator run to its end.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "engine/generator.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember::test {

namespace fs = std::filesystem;

inline const fs::path kModels = fs::path(EMBER_SOURCE_DIR) / "models";

struct Models {
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
  std::unique_ptr<Tokenizer> tokenizer;
};

// The backend's threads: 2, so the tests run the threaded kernels, unless the test target says
// otherwise (tests/CMakeLists.txt).
#ifndef EMBER_SPECULATIVE_TEST_THREADS
#define EMBER_SPECULATIVE_TEST_THREADS 2
#endif

// Both models on one backend. The target is batch-invariant, so a row's logits do not depend on
// how many rows its forward step holds: greedy speculation is then plain decoding bit for bit.
inline Models& models() {
  static Models m = [] {
    Models l;
    CpuBackendOptions backend;
    backend.n_threads = EMBER_SPECULATIVE_TEST_THREADS;
    l.backend = std::make_unique<CpuBackend>(backend);
    ModelOptions options;
    options.max_step_tokens = 64;
    options.context_size = 256;
    options.batch_invariant = true;
    l.target = Model::load((kModels / "ember-tiny.gguf").string(), *l.backend, options);
    l.draft = Model::load((kModels / "ember-tiny-draft.gguf").string(), *l.backend, options);
    l.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(l.target->file()));
    return l;
  }();
  return m;
}

inline std::vector<int32_t> tokens(const std::string& text) {
  return models().tokenizer->encode(text, EncodeOptions{.add_special = true, .parse_special = false});
}

inline std::unique_ptr<Generator> generator(Model* draft, bool reuse_prefix = false) {
  Models& m = models();
  return std::make_unique<Generator>(
      *m.target, *m.tokenizer,
      GeneratorOptions{.context = 256, .reuse_prefix = reuse_prefix, .draft_model = draft, .draft_mutex = nullptr},
      nullptr);
}

struct Output {
  std::vector<int32_t> ids;
  std::string text;
  std::vector<float> logprobs;
  GenerationStats stats;
};

inline Output run(Generator& g, const std::vector<int32_t>& prompt, const GenerateOptions& options) {
  g.start(prompt, options);
  Output r;
  GeneratedToken t;
  while (g.next(t)) {
    if (t.id >= 0) {
      r.ids.push_back(t.id);
      r.logprobs.push_back(t.logprob);
    }
    r.text += t.text;
  }
  r.stats = g.stats();
  return r;
}

inline GenerateOptions greedy(int32_t max_tokens) {
  GenerateOptions o;
  o.sampling.temperature = 0.0f;
  o.stop.max_tokens = max_tokens;
  return o;
}

}  // namespace ember::test
