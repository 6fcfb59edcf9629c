// Example: load a model, set sampler steps and stop conditions, stream a generation — the C++ API
// in a dozen lines. Usage: generate MODEL.gguf [PROMPT]
#include <cstdio>
#include <iostream>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
    return 2;
  }
  try {
    auto llm = ember::Llm::load(argv[1], {.threads = 2, .context = 512});
    ember::Session session(llm);

    ember::GenerateOptions options;
    options.sampling.temperature = 0.7f;
    options.sampling.top_p = 0.9f;
    options.sampling.repeat_penalty = 1.1f;
    options.sampling.seed = 42;
    options.stop.max_tokens = 64;
    options.stop.strings = {"\n\n"};

    const char* prompt = argc > 2 ? argv[2] : "Once upon a time";
    std::cout << prompt;
    ember::Generation generation = session.generate(prompt, options);
    for (const ember::GeneratedToken& token : generation) std::cout << token.text << std::flush;

    const ember::GenerationStats& stats = generation.stats();
    std::cout << "\n";
    std::fprintf(stderr, "[%d prompt + %d generated tokens, %.1f tok/s, finish: %s]\n", stats.prompt_tokens,
                 stats.generated_tokens, stats.generated_tokens * 1e3 / stats.total_ms,
                 std::string(ember::finish_reason_name(stats.finish)).c_str());
    return 0;
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
