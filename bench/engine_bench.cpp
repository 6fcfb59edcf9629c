// The serving engine without HTTP: N concurrent greedy requests (random prompt ids, ignore_eos)
// through Engine::step on one thread, reporting aggregate generated tokens/s and the mean step
// time at each concurrency — what batching alone buys, with no client or server threads competing.
//   engine_bench MODEL [threads=2] [prompt=64] [gen=64] [clients...=1 4 16 64]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace ember;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: engine_bench MODEL [threads] [prompt tokens] [generated tokens] [clients...]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::stoi(argv[2]) : 2;
  const int prompt = argc > 3 ? std::stoi(argv[3]) : 64;
  const int gen = argc > 4 ? std::stoi(argv[4]) : 64;
  std::vector<int> levels;
  for (int i = 5; i < argc; ++i) levels.push_back(std::stoi(argv[i]));
  if (levels.empty()) levels = {1, 4, 16, 64};

  CpuBackendOptions backend_options;
  backend_options.n_threads = threads;
  CpuBackend backend(backend_options);
  ModelOptions options;
  options.context_size = prompt + gen + 1;
  options.repack_output = std::getenv("EMBER_NO_REPACK_OUTPUT") == nullptr;  // as `ember serve` does
  auto model = Model::load(argv[1], backend, options);
  const Tokenizer tokenizer = Tokenizer::from_gguf(model->file());
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(100, model->config().n_vocab - 1);

  std::printf("| clients | gen tok/s | steps | ms/step | decode rows/step |\n|---:|---:|---:|---:|---:|\n");
  for (const int clients : levels) {
    EngineOptions eo;
    eo.context = prompt + gen + 1;
    eo.max_running = clients;
    eo.max_waiting = clients;
    eo.prefix_cache = false;
    Engine engine(*model, tokenizer, eo);
    std::vector<std::shared_ptr<EngineRequest>> requests;
    for (int c = 0; c < clients; ++c) {
      auto r = std::make_shared<EngineRequest>();
      for (int i = 0; i < prompt; ++i) r->prompt.push_back(token(rng));
      r->options.sampling.temperature = 0;
      r->options.stop.max_tokens = gen;
      r->options.stop.ignore_eos = true;
      engine.submit(r);
      requests.push_back(r);
    }
    // Prefill everything first, then time the decode steps alone.
    while (engine.stats().generated_tokens < clients) engine.step();
    const EngineStats before = engine.stats();
    const auto t0 = std::chrono::steady_clock::now();
    while (engine.step()) {
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const EngineStats after = engine.stats();
    const double tokens = static_cast<double>(after.generated_tokens - before.generated_tokens);
    const double steps = static_cast<double>(after.steps - before.steps);
    std::printf("| %d | %.1f | %.0f | %.2f | %.1f |\n", clients, tokens / seconds, steps, 1000 * seconds / steps,
                tokens / steps);
  }
  return 0;
}
