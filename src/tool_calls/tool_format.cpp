// Tool-call format detection by substrings of the chat template (see tool_format.h).
#include "tool_calls/tool_format.h"

#include <algorithm>
#include <cstdint>

namespace ember::tool_calls {

ToolFormat detect_tool_format(std::string_view src) {
  const auto has = [&](std::string_view s) { return src.find(s) != std::string_view::npos; };
  // Key/value markup instead of JSON, even inside <tool_call> (GLM-4.6, Laguna: <arg_key>;
  // Qwen3-Coder, Nemotron-3, Seed-OSS, Functionary v3.1: <function=...>): not ours to parse.
  if (has("<arg_key>") || has("<function=")) return ToolFormat::kGeneric;
  if (has("<tool_call>")) return ToolFormat::kHermes;
  // Llama 3.x renders tool results in the ipython role; a template that only mentions the word
  // elsewhere is not enough.
  if (has("<|start_header_id|>ipython<|end_header_id|>") || has("message.role == \"ipython\"") ||
      has("message.role == 'ipython'"))
    return ToolFormat::kLlama3;
  if (has("[TOOL_CALLS]")) {
    if (has("[CALL_ID]")) return ToolFormat::kMistralSmall;
    if (has("[ARGS]")) return ToolFormat::kDevstral;
    return ToolFormat::kMistralNemo;
  }
  if (has(deepseek::kSep)) return has("```json") ? ToolFormat::kDeepSeekR1 : ToolFormat::kDeepSeekV31;
  return ToolFormat::kGeneric;
}

std::string_view tool_format_name(ToolFormat format) {
  switch (format) {
    case ToolFormat::kLlama3: return "llama3";
    case ToolFormat::kHermes: return "hermes";
    case ToolFormat::kMistralNemo: return "mistral-nemo";
    case ToolFormat::kMistralSmall: return "mistral-small";
    case ToolFormat::kDevstral: return "devstral";
    case ToolFormat::kGeneric: return "generic";
    case ToolFormat::kDeepSeekV31: return "deepseek-v3.1";
    case ToolFormat::kDeepSeekR1: return "deepseek-r1";
  }
  return "unknown";
}

std::string template_call_id(ToolFormat format, std::string_view id) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  const bool nine_alnum = id.size() == 9 && std::all_of(id.begin(), id.end(), alnum);
  if ((format != ToolFormat::kMistralNemo && format != ToolFormat::kMistralSmall) || nine_alnum || id.empty()) {
    return std::string(id);
  }
  // FNV-1a, then 9 base-62 digits (62^9 < 2^64: distinct ids collide with odds ~1e-16 a pair).
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char c : id) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  static constexpr std::string_view kDigits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string out(9, '0');
  for (char& c : out) {
    c = kDigits[h % kDigits.size()];
    h /= kDigits.size();
  }
  return out;
}

}  // namespace ember::tool_calls
