// Chat-template cost: parsing a real template once, and rendering it per request (JSON context to
// text, the way a server applies it) for a 4-message conversation, a tool conversation and the
// ChatML preset. Templates come from ../shared/data/templates (skipped when absent). Single thread.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template/chat_template.h"
#include "tokenizer/chat_template/chat_template_presets.h"

namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

const fs::path kTemplates = fs::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "templates";

// system / user / assistant / user, about 100 words: a typical chat request.
const json& four_messages() {
  static const json c = json::parse(R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    "add_generation_prompt": true, "tools": null, "messages": [
    {"role": "system", "content": "You are a helpful assistant. Answer concisely and cite sources when you can."},
    {"role": "user", "content": "What is the capital of Australia, and why is it not Sydney?"},
    {"role": "assistant", "content": "Canberra. It was chosen in 1908 as a compromise between Sydney and Melbourne, the two largest cities, which both wanted to be the capital."},
    {"role": "user", "content": "When did Parliament first meet there?"}]})");
  return c;
}

// A tool definition, an assistant tool call and its result.
const json& tool_conversation() {
  static const json c = json::parse(R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    "add_generation_prompt": true,
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}],
    "messages": [
    {"role": "system", "content": "You can look up the weather."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "abc123XYZ", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"temperature\": 18}"}]})");
  return c;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void bm_parse(benchmark::State& state, const std::string& source) {
  for (auto _ : state) benchmark::DoNotOptimize(ember::ChatTemplate::parse(source));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(source.size()));
}

void bm_render(benchmark::State& state, const std::string& source, const json* context) {
  const ember::ChatTemplate t = ember::ChatTemplate::parse(source);
  ember::ChatTemplateRenderOptions options;
  options.now = ember::parse_template_clock("2026-11-29T12:00:00");
  try {
    (void)t.render(*context, options);
  } catch (const ember::TemplateError& e) {
    state.SkipWithError(e.what());
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string out = t.render(*context, options);
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["out_bytes"] = static_cast<double>(bytes);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const std::string chatml(ember::find_chat_template_preset("chatml")->source);
  benchmark::RegisterBenchmark("render/chatml-preset/4msg", bm_render, chatml, &four_messages());
  for (const char* name :
       {"meta-llama-Llama-3.1-8B-Instruct", "Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B", "openai-gpt-oss-120b"}) {
    const fs::path path = kTemplates / (std::string(name) + ".jinja");
    if (!fs::exists(path)) continue;
    const std::string source = read(path);
    benchmark::RegisterBenchmark(("parse/" + std::string(name)).c_str(), bm_parse, source);
    benchmark::RegisterBenchmark(("render/" + std::string(name) + "/4msg").c_str(), bm_render, source,
                                 &four_messages());
    benchmark::RegisterBenchmark(("render/" + std::string(name) + "/tools").c_str(), bm_render, source,
                                 &tool_conversation());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
