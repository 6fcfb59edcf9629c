// Which tool-call output syntax a model family uses, detected from its chat template's source.
#pragma once

#include <string>
#include <string_view>

namespace ember::tool_calls {

// The tool-call syntaxes ember can constrain (tool_grammar.h) and parse (tool_parser.h). Each
// family's output, as its chat template renders a past call (docs/plans/structured-output-research.md
// §5.1):
enum class ToolFormat {
  // Llama 3.1 / 3.2 / 3.3: the whole reply is one JSON call object, no marker:
  //   {"name": "get_weather", "parameters": {"city": "Paris"}}
  // then <|eot_id|>. One call per turn (the template refuses more).
  kLlama3,
  // Hermes 2 Pro / 3, Qwen 2.5 / 3, QwQ, Granite 4.0, Bielik, MiMo-VL: each call wrapped in tags,
  // optionally after content, repeated for parallel calls:
  //   <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>
  kHermes,
  // Mistral Nemo: one control token, then a JSON list of calls, each with a 9-alphanumeric id:
  //   [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}]
  kMistralNemo,
  // Mistral Small 3.2: per call, control tokens around the name, the id and the arguments:
  //   [TOOL_CALLS]get_weather[CALL_ID]abcDEF123[ARGS]{"city": "Paris"}
  kMistralSmall,
  // Devstral: as Mistral Small 3.2 without the id:
  //   [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}
  kDevstral,
  // Anything else (no marker we know, or a non-JSON syntax such as GLM's <arg_key> or
  // Qwen3-Coder's <function=...>): the whole reply is a JSON object that ember asks for in a
  // system line (llama.cpp's "generic" format):
  //   {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
  //   {"tool_calls": [{"name": ..., "arguments": ...}, ...]}     (parallel calls allowed)
  //   {"response": "plain answer"}                                (tool_choice auto only)
  kGeneric,
  // DeepSeek V3.1 and later: control tokens around the calls, each the name then its arguments:
  //   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜>
  //   (more calls)<｜tool▁calls▁end｜>
  kDeepSeekV31,
  // DeepSeek R1 (and V3 before 3.1, and the R1 distills): as V3.1, each call's type, then its name
  // on its own line and the arguments in a JSON code fence:
  //   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{...}\n```<｜tool▁call▁end｜>
  //   (more calls)<｜tool▁calls▁end｜>
  kDeepSeekR1,
};

// DeepSeek's tool-call control tokens (fullwidth bars, U+2581 for spaces).
namespace deepseek {
inline constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kSep = "<｜tool▁sep｜>";
inline constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
// R1's code fence around the arguments.
inline constexpr std::string_view kFenceOpen = "\n```json\n";
inline constexpr std::string_view kFenceClose = "\n```";
}  // namespace deepseek

// Every format, in the enum's order (the fuzzers' corpora pick a format by index into it: keep it).
inline constexpr ToolFormat kAllToolFormats[] = {
    ToolFormat::kLlama3,   ToolFormat::kHermes,  ToolFormat::kMistralNemo, ToolFormat::kMistralSmall,
    ToolFormat::kDevstral, ToolFormat::kGeneric, ToolFormat::kDeepSeekV31, ToolFormat::kDeepSeekR1};

// By substrings of the template source, in this order (the order matters: GLM-4.6, Laguna,
// Qwen3-Coder and Nemotron-3 also contain "<tool_call>", Functionary v3.1 also has the ipython role):
// non-JSON markup ("<arg_key>", "<function=") → kGeneric; "<tool_call>" → kHermes; the Llama 3.x
// ipython header → kLlama3; "[TOOL_CALLS]" → kMistralSmall with "[CALL_ID]", kDevstral with
// "[ARGS]" only, kMistralNemo otherwise; DeepSeek's "<｜tool▁sep｜>" → kDeepSeekR1 with a "```json"
// fence, kDeepSeekV31 otherwise; anything else → kGeneric.
ToolFormat detect_tool_format(std::string_view template_source);

// "llama3", "hermes", "mistral-nemo", "mistral-small", "devstral", "generic", "deepseek-v3.1",
// "deepseek-r1".
std::string_view tool_format_name(ToolFormat format);

// The id a tool call of the conversation goes by in the template. Mistral Nemo's and Small 3.2's
// templates accept only ids of 9 letters and digits (they raise otherwise), so for them any other
// id (OpenAI's "call_...") maps to 9 such characters derived from it: the same id always gives
// the same one, so a call and its result still pair. Other formats, and ids that fit, keep theirs.
std::string template_call_id(ToolFormat format, std::string_view id);

}  // namespace ember::tool_calls
