// Constrained generations for the oracle (constrained_generation_oracle.py): the real sampler chain
// and SequenceDecoder at temperature 1 on random logits (what a random-weight model gives), one
// JSON line per generation: {"case", "run", "finish", "tokens", "text"}. Cases: every schema of a
// folder (tests/data/json_schemas), plus JSON mode. The random "model" favours tokens holding
// `"`, `]` or `}` (a logit bias growing with the vocabulary: +4 for 512 tokens, +7 for 128k): with
// uniform choices a JSON string closes only when one of the few quote tokens that fit comes up, so
// unbounded strings would run for thousands of tokens.
// Usage: constrained_generation_dump VOCAB.gguf SCHEMA_DIR RUNS_PER_CASE MAX_TOKENS
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sequence_decoder.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

struct Case {
  std::string name;
  ember::OutputConstraint constraint;
};

std::vector<Case> load_cases(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Case> cases;
  for (const fs::path& f : files) {
    std::ifstream in(f);
    const auto j = nlohmann::ordered_json::parse(in);
    cases.push_back(
        {f.filename().string(),
         {.kind = ember::OutputConstraint::Kind::kJsonSchema, .text = j.at("schema").dump(), .strict = false}});
  }
  cases.push_back({"json_object", {.kind = ember::OutputConstraint::Kind::kJsonObject, .text = "", .strict = false}});
  return cases;
}

const char* finish_name(ember::FinishReason f) {
  switch (f) {
    case ember::FinishReason::kEndOfGeneration: return "stop";
    case ember::FinishReason::kMaxTokens: return "length";
    default: return "other";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s VOCAB.gguf SCHEMA_DIR RUNS_PER_CASE MAX_TOKENS\n", argv[0]);
    return 2;
  }
  try {
    const ember::Tokenizer tok = ember::Tokenizer::from_gguf(ember::GgufFile::open(argv[1]));
    const std::vector<Case> cases = load_cases(argv[2]);
    const int runs = std::stoi(argv[3]);
    const int max_tokens = std::stoi(argv[4]);
    const int32_t n_vocab = tok.vocab().size();
    std::vector<float> logits(static_cast<size_t>(n_vocab));
    std::vector<std::pair<int32_t, float>> closing_bias;
    const float bias = 1.0f + 0.5f * std::log(static_cast<float>(n_vocab));
    for (int32_t id = 0; id < n_vocab; ++id) {
      const std::string_view piece = tok.vocab_trie().piece(id);
      if (piece.find_first_of("\"]}") != std::string_view::npos) closing_bias.emplace_back(id, bias);
    }
    for (const Case& c : cases) {
      for (int run = 0; run < runs; ++run) {
        ember::GenerateOptions options;
        options.sampling = {
            .temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = static_cast<uint64_t>(run)};
        options.sampling.logit_bias = closing_bias;
        options.stop.max_tokens = max_tokens;
        options.constraint = c.constraint;
        ember::SequenceDecoder decoder(tok, n_vocab, options, {});
        std::mt19937_64 rng(static_cast<uint64_t>(run) * 7919 + c.name.size());
        std::normal_distribution<float> normal(0.0f, 1.0f);
        ember::GeneratedToken token;
        while (!decoder.finished()) {
          for (float& v : logits) v = normal(rng);
          decoder.on_logits(logits, token);
        }
        decoder.take_tail(token);  // appends any held-back bytes to decoder.text()
        const nlohmann::json line = {{"case", c.name},
                                     {"run", run},
                                     {"finish", finish_name(decoder.stats().finish)},
                                     {"tokens", decoder.stats().generated_tokens},
                                     {"text", decoder.text()}};
        std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "constrained_generation_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
