// Grammars that constrain a model's tool calls to the request's tools, per output format.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/grammar_ir.h"
#include "tool_calls/tool_format.h"

namespace ember::tool_calls {

struct ToolSpec {
  std::string name;
  // The arguments' JSON Schema; null or {} means any JSON object.
  nlohmann::ordered_json parameters = {};
  // OpenAI's function.strict: convert the schema in strict mode (json_schema.h).
  bool strict = false;
};

// OpenAI's tool_choice: "auto", "none", "required" or {"type": "function", "function": {"name"}}.
struct ToolChoice {
  enum class Mode { kAuto, kNone, kRequired, kNamed };
  Mode mode = Mode::kAuto;
  std::string name = {};  // kNamed: the one tool the model must call
};

struct ToolCallGrammar {
  grammar::Grammar grammar;
  // lazy: the grammar is idle (no mask) until one of `triggers` appears in the output, then
  // constrains the rest of the output. Not lazy: it constrains the whole output from the first
  // token, and `triggers` is empty.
  bool lazy = false;
  std::vector<std::string> triggers;
  // Whether the trigger text is the start of the grammar's language (the matcher then feeds the
  // grammar the output from the trigger's first byte on) or precedes it (the grammar starts right
  // after the trigger). true for Hermes ("<tool_call>" is ordinary text for most vocabularies) and
  // Llama 3.x (the trigger is the call's own first bytes); false for the Mistral families, whose
  // "[TOOL_CALLS]" is a control token.
  bool trigger_in_grammar = true;
  // Llama 3.x: a trigger only counts at the very start of the output (a call is the whole reply;
  // the same text later is quoted, not a call).
  bool trigger_at_start = false;
  // Literal texts in the grammar's language that the family's vocabulary has as control tokens
  // ("[TOOL_CALLS]", "[CALL_ID]", "[ARGS]" for Mistral Small): the matcher must let those tokens
  // advance the grammar by their text, though control tokens are otherwise never allowed by bytes.
  std::vector<std::string> control_tokens;
};

// The grammar for `tools` in `format` under `choice`; std::nullopt for tool_choice "none" (no
// constraint: the tools are still rendered into the prompt, the output is left free).
// - kAuto: lazy for the marker families (the model may answer in text, or call; Hermes and Mistral
//   allow content before the call, the trigger fires there); Llama 3.x is lazy with one trigger per
//   tool, `{"name": "` + its name, at the start only (a normal answer starting with `{` does not
//   trigger); generic is never lazy (the reply is {"response": "..."} or a call object).
// - kRequired / kNamed (only `choice.name`): not lazy; the output is calls only, starting with the
//   marker ("<tool_call>", "[TOOL_CALLS]"), at least one.
// - parallel_calls false: exactly one call; true: one or more (Llama 3.x: always one).
// Each call: the name as a literal alternation of the tools, the arguments as that tool's
// parameters schema (json_schema_grammar, imported), keys in the template's order, name first;
// whitespace inside the JSON bounded as in json_schema.h; Mistral ids 9 alphanumerics.
// Throws Error(kInvalidArgument): no tools (kAuto / kRequired), an unknown or duplicate name,
// an empty name, or a schema the converter refuses ("tools[1].function.parameters/properties/x: ...").
std::optional<ToolCallGrammar> tool_call_grammar(ToolFormat format, const std::vector<ToolSpec>& tools,
                                                 const ToolChoice& choice, bool parallel_calls);

}  // namespace ember::tool_calls
