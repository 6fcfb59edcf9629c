// Tool calling, the request side (see tool_call_request.h): the fields checked one by one, each
// wrong one a 400 naming its path, and the grammar built from the tools.
#include "server/tool_call_request.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/text_escape.h"
#include "ember/error.h"
#include "grammar/constraint.h"
#include "grammar/gbnf_parser.h"
#include "server/api_error.h"
#include "server/ordered_body.h"

namespace ember::server {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using tool_calls::ToolChoice;

template <class J>
const J* field(const J& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

template <class J>
const std::string& string_field(const J& object, const std::string& path, const char* key) {
  const J* v = field(object, key);
  const std::string name = path + "." + key;
  if (v == nullptr) invalid_request(name, fmt::format("'{}' is missing", name));
  if (!v->is_string()) invalid_request(name, fmt::format("'{}' must be a string, not {}", name, json_type_name(*v)));
  return v->template get_ref<const std::string&>();
}

template <class J>
const J& object_field(const J& object, const std::string& path, const char* key) {
  const J* v = field(object, key);
  const std::string name = path + "." + key;
  if (v == nullptr) invalid_request(name, fmt::format("'{}' is missing", name));
  if (!v->is_object()) invalid_request(name, fmt::format("'{}' must be an object, not {}", name, json_type_name(*v)));
  return *v;
}

// `type`, when sent, must be "function" (the only kind of tool OpenAI's chat API has).
template <class J>
void check_function_type(const J& object, const std::string& path) {
  const J* type = field(object, "type");
  if (type != nullptr && (!type->is_string() || type->template get<std::string>() != "function")) {
    invalid_request(path + ".type", fmt::format("'{}.type' must be \"function\", not {}", path, type->dump()));
  }
}

// OpenAI's function names: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'. The grammar writes the name as a
// JSON string literal, so the rule also keeps quotes and control characters out.
bool is_function_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

// The body's `tools` with the client's key order (ordered_body.h); `fallback` when there is no
// text.
ordered_json ordered_tools(const json& fallback, std::string_view body_text) {
  if (!body_text.empty()) {
    ordered_json tools = ordered_subtree(body_text, {"tools"});
    if (tools.is_array()) return tools;
  }
  return ordered_json::parse(fallback.dump());
}

// An error quotes this much of a text it refuses, not the megabytes a client may send.
constexpr size_t kQuotedBytes = 80;

ToolChoice parse_tool_choice(const json& v) {
  ToolChoice choice;
  if (v.is_string()) {
    const std::string& mode = v.get_ref<const std::string&>();
    if (mode == "auto") return choice;
    if (mode == "none")
      choice.mode = ToolChoice::Mode::kNone;
    else if (mode == "required")
      choice.mode = ToolChoice::Mode::kRequired;
    else
      invalid_request("tool_choice", fmt::format("'tool_choice' must be none, auto or required, not \"{}\"", mode));
    return choice;
  }
  if (!v.is_object()) {
    invalid_request("tool_choice",
                    fmt::format("'tool_choice' must be a string or an object, not {}", json_type_name(v)));
  }
  check_function_type(v, "tool_choice");
  choice.mode = ToolChoice::Mode::kNamed;
  choice.name = string_field(object_field(v, "tool_choice", "function"), "tool_choice.function", "name");
  return choice;
}

}  // namespace

ToolRequest parse_tool_request(const json& body, std::string_view body_text) {
  ToolRequest r;
  if (const json* v = field(body, "tools")) {
    if (!v->is_array()) invalid_request("tools", fmt::format("'tools' must be an array, not {}", json_type_name(*v)));
    refuse_huge_objects(*v, "tools");
    r.tools = ordered_tools(*v, body_text);
  }
  std::set<std::string> names;
  for (size_t i = 0; i < r.tools.size(); ++i) {
    const std::string path = fmt::format("tools[{}]", i);
    const ordered_json& tool = r.tools[i];
    if (!tool.is_object())
      invalid_request(path, fmt::format("'{}' must be an object, not {}", path, json_type_name(tool)));
    check_function_type(tool, path);
    const std::string fpath = path + ".function";
    const ordered_json& function = object_field(tool, path, "function");
    tool_calls::ToolSpec spec;
    spec.name = string_field(function, fpath, "name");
    if (!is_function_name(spec.name)) {
      invalid_request(fpath + ".name", fmt::format("'{}.name' must be 1 to 64 of a-z, A-Z, 0-9, '_', '-' and '.', "
                                                   "not \"{}\"",
                                                   fpath, spec.name));
    }
    if (!names.insert(spec.name).second) {
      invalid_request(fpath + ".name", fmt::format("'{}.name': two tools are named \"{}\"", fpath, spec.name));
    }
    if (field(function, "description") != nullptr) string_field(function, fpath, "description");
    if (field(function, "parameters") != nullptr) spec.parameters = object_field(function, fpath, "parameters");
    if (const ordered_json* strict = field(function, "strict")) {
      if (!strict->is_boolean())
        invalid_request(fpath + ".strict", fmt::format("'{}.strict' must be a boolean", fpath));
      spec.strict = strict->get<bool>();
    }
    r.specs.push_back(std::move(spec));
  }
  if (const json* v = field(body, "tool_choice")) r.choice = parse_tool_choice(*v);
  if (const json* v = field(body, "parallel_tool_calls")) {
    if (!v->is_boolean()) {
      invalid_request("parallel_tool_calls",
                      fmt::format("'parallel_tool_calls' must be a boolean, not {}", json_type_name(*v)));
    }
    r.parallel = v->get<bool>();
  }
  const bool forced = r.choice.mode == ToolChoice::Mode::kRequired || r.choice.mode == ToolChoice::Mode::kNamed;
  if (forced && r.specs.empty()) {
    invalid_request("tool_choice", "'tool_choice' asks for a tool call, but the request has no 'tools'");
  }
  if (r.choice.mode == ToolChoice::Mode::kNamed && names.count(r.choice.name) == 0) {
    invalid_request("tool_choice.function.name",
                    fmt::format("'tool_choice' names the function \"{}\", which is not in 'tools'", r.choice.name));
  }
  return r;
}

ordered_json parse_history_tool_calls(const json& v, const std::string& name) {
  if (!v.is_array()) invalid_request(name, fmt::format("'{}' must be an array, not {}", name, json_type_name(v)));
  ordered_json calls = ordered_json::array();
  for (size_t j = 0; j < v.size(); ++j) {
    const std::string path = fmt::format("{}[{}]", name, j);
    const json& call = v[j];
    if (!call.is_object())
      invalid_request(path, fmt::format("'{}' must be an object, not {}", path, json_type_name(call)));
    check_function_type(call, path);
    const std::string fpath = path + ".function";
    const json& function = object_field(call, path, "function");
    ordered_json out = ordered_json::object();
    // The id is optional here (templates that need one, Mistral's, raise when it is missing).
    if (field(call, "id") != nullptr) out["id"] = string_field(call, path, "id");
    out["type"] = "function";
    ordered_json f = ordered_json::object();
    f["name"] = string_field(function, fpath, "name");
    const json* arguments = field(function, "arguments");
    const std::string apath = fpath + ".arguments";
    if (arguments == nullptr) invalid_request(apath, fmt::format("'{}' is missing", apath));
    if (arguments->is_object()) {
      // Not OpenAI's shape, but unambiguous (some clients resend the parsed object).
      f["arguments"] = ordered_subtree(arguments->dump(), {});
    } else if (arguments->is_string()) {
      // Templates render the arguments with tojson: a string would come out double-encoded. The
      // text is checked like a body: nesting (the template's copies recurse) and, through
      // ordered_subtree, in linear time whatever its keys.
      const std::string& text = arguments->get_ref<const std::string&>();
      if (json_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
        invalid_request(apath, fmt::format("'{}' nests deeper than {} levels", apath, kMaxJsonDepth));
      }
      ordered_json parsed = ordered_subtree(text, {});
      if (parsed.is_null() && !json::accept(text)) {
        invalid_request(apath, fmt::format("'{}' is not valid JSON: {}", apath, quote_text(text, kQuotedBytes)));
      }
      if (!parsed.is_object()) {
        invalid_request(apath, fmt::format("'{}' must be the JSON text of an object, not {}", apath,
                                           quote_text(text, kQuotedBytes)));
      }
      f["arguments"] = std::move(parsed);
    } else {
      invalid_request(apath, fmt::format("'{}' must be a string of JSON, not {}", apath, json_type_name(*arguments)));
    }
    out["function"] = std::move(f);
    calls.push_back(std::move(out));
  }
  return calls;
}

OutputConstraint tool_call_constraint(const ToolRequest& tools, tool_calls::ToolFormat format) {
  if (!tools.calls_allowed()) return {};
  OutputConstraint c;
  try {
    const auto g = tool_calls::tool_call_grammar(format, tools.specs, tools.choice, tools.parallel);
    if (!g) return {};
    c.kind = OutputConstraint::Kind::kGbnf;
    c.text = g->grammar.to_gbnf(grammar::kMaxGbnfBytes);  // what the constraint's parser takes
    c.triggers = g->triggers;
    c.trigger_in_grammar = g->trigger_in_grammar;
    c.triggers_at_start = g->trigger_at_start;
    c.control_tokens = g->control_tokens;
    // Compiled now (cached for the engine) so that a failure is this request's 400.
    grammar::compile_constraint(c);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kUnsupported) throw;
    invalid_request("tools", fmt::format("Invalid tools: {}", e.what()));
  }
  return c;
}

namespace {

// The tools the model may call (only the named one under a named tool_choice): name,
// description and parameters, a list item each.
std::string tool_list(const ToolRequest& tools) {
  std::string text;
  for (size_t i = 0; i < tools.specs.size(); ++i) {
    const tool_calls::ToolSpec& spec = tools.specs[i];
    if (tools.choice.mode == ToolChoice::Mode::kNamed && spec.name != tools.choice.name) continue;
    const ordered_json& function = tools.tools[i]["function"];
    text += fmt::format("\n- {}", spec.name);
    if (const ordered_json* d = field(function, "description")) text += ": " + d->get<std::string>();
    text += fmt::format("\n  parameters: {}", spec.parameters.is_null() ? std::string("{}") : spec.parameters.dump());
  }
  return text;
}

}  // namespace

std::string generic_tool_instructions(const ToolRequest& tools) {
  // The template has no tool syntax (and mostly ignores `tools`): the tools are listed here, as
  // llama.cpp's template polyfill does, then llama.cpp's wording (common_chat_params_init_generic),
  // so that models tuned on its prompts behave alike.
  std::string text = "You can call any of the following tools to satisfy the user's requests:\n";
  text += tool_list(tools);
  text += "\n\n";
  if (tools.choice.mode != ToolChoice::Mode::kAuto) {
    text += "Respond in JSON format with `tool_call` (a request to call tools)";
  } else {
    text +=
        "Respond in JSON format, either with `tool_call` (a request to call tools) or with `response` "
        "reply to the user's request";
  }
  return text;
}

std::string deepseek_tool_instructions(const ToolRequest& tools, tool_calls::ToolFormat format) {
  namespace ds = tool_calls::deepseek;
  const bool r1 = format == tool_calls::ToolFormat::kDeepSeekR1;
  // One call written out as the grammar (and the model's training) has it.
  const std::string call = r1 ? fmt::format("{}function{}NAME{}ARGUMENTS{}{}", ds::kCallBegin, ds::kSep, ds::kFenceOpen,
                                            ds::kFenceClose, ds::kCallEnd)
                              : fmt::format("{}NAME{}ARGUMENTS{}", ds::kCallBegin, ds::kSep, ds::kCallEnd);
  std::string text = "## Tools\nYou can call the following tools:\n";
  text += tool_list(tools);
  text += fmt::format(
      "\n\nTo call tools, write exactly:\n{}{}{}\nwhere NAME is one of the tools above and ARGUMENTS a JSON "
      "object that follows its parameters. Several calls follow one another{}, each as {}.",
      ds::kCallsBegin, call, ds::kCallsEnd, r1 ? " on their own lines" : " directly", call);
  if (tools.choice.mode != ToolChoice::Mode::kAuto) text += " Answer with tool calls only.";
  return text;
}

}  // namespace ember::server
