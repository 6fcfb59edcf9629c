// Tool calling on /v1/chat/completions, the request side: OpenAI's `tools`, `tool_choice` and
// `parallel_tool_calls`, the tool-call fields of history messages, the chat template's context,
// and the grammar that constrains the calls (docs/server.md, "Tool calling").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/sampling.h"
#include "tool_calls/tool_format.h"
#include "tool_calls/tool_grammar.h"

namespace ember::server {

struct ToolRequest {
  // The request's `tools` as sent (keys in the client's order): the template's `tools` variable.
  // Empty: the request has no tools.
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  std::vector<tool_calls::ToolSpec> specs;  // the same tools, for the grammar
  tool_calls::ToolChoice choice;            // default auto (OpenAI's, when tools are present)
  bool parallel = true;                     // parallel_tool_calls

  bool active() const { return !specs.empty(); }
  // Whether the output is parsed for calls and may be constrained (tools, and tool_choice not none).
  bool calls_allowed() const { return active() && choice.mode != tool_calls::ToolChoice::Mode::kNone; }
};

// `tools`, `tool_choice` and `parallel_tool_calls` of a chat body. `body_text`, the body as sent,
// gives the tools their keys in the client's order (the template dumps them, and the parameters'
// properties are generated in that order); empty: `body`'s order. Throws ApiError 400 naming the
// field (tools[i].function.name, tool_choice, ...).
ToolRequest parse_tool_request(const nlohmann::json& body, std::string_view body_text);

// An assistant message's `tool_calls`, checked ([{id, type: "function", function: {name,
// arguments}}]), with each `arguments` JSON string parsed into an object (templates expect one;
// OpenAI sends a string). `name` is the field's path ("messages[2].tool_calls"). Throws ApiError.
nlohmann::ordered_json parse_history_tool_calls(const nlohmann::json& v, const std::string& name);

// The grammar constraint for the request's tools in the template's format; kNone when there is
// nothing to constrain (no tools, tool_choice none). Throws ApiError 400 param "tools" when the
// grammar cannot be built (a schema the converter refuses, ...).
OutputConstraint tool_call_constraint(const ToolRequest& tools, tool_calls::ToolFormat format);

// The instruction for a model without a tool-call syntax of its own (llama.cpp's "generic"
// format): the tools (name, description, parameters; only the named one under a named
// tool_choice), then the JSON shape to answer in. The grammar enforces the shape, this tells the
// model why and what it may call.
std::string generic_tool_instructions(const ToolRequest& tools);

// The instruction for DeepSeek models whose template renders past calls but never the tools (the
// official V3.1 and R1-distill templates): the tools (as generic_tool_instructions lists them),
// then the exact call syntax of `format` (kDeepSeekV31 or kDeepSeekR1).
std::string deepseek_tool_instructions(const ToolRequest& tools, tool_calls::ToolFormat format);

}  // namespace ember::server
