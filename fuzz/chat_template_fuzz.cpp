// libFuzzer target: parsing and rendering arbitrary bytes as a chat template must never crash, hang
// or leak (ASan + UBSan + LeakSanitizer); a render either fails with TemplateError or returns valid
// UTF-8 within the limits. The context is a fixed conversation with tools, tool calls and reasoning,
// so templates built from the real ones (the seeds) exercise their real paths.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "ember/error.h"
#include "tokenizer/chat_template/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                     "required": ["city"]}}}],
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Weather in Paris? \u00e9\u4e16\ud83e\udd99"},
      {"role": "assistant", "content": null, "reasoning_content": "Use the tool.",
       "tool_calls": [{"id": "abc123XYZ", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
      {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"t\": 18}"},
      {"role": "assistant", "content": "18 degrees."},
      {"role": "user", "content": [{"type": "text", "text": "Thanks"}, {"type": "image"}]}
    ]})");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  ember::ChatTemplateRenderOptions options;
  options.now = ember::parse_template_clock("2026-11-29T12:00:00");
  // Small limits keep every input fast; the defaults are tested by the unit tests.
  options.limits.max_string_bytes = 1 << 20;
  options.limits.max_steps = 200'000;
  options.limits.max_call_depth = 50;
  try {
    const ember::ChatTemplate chat_template = ember::ChatTemplate::parse(source);
    const std::string out = chat_template.render(context(), options);
    if (out.size() > options.limits.max_string_bytes || !ember::utf8::is_valid(out)) __builtin_trap();
  } catch (const ember::TemplateError&) {
    // Rejecting or failing is fine; crashing is what this target looks for.
  }
  return 0;
}
