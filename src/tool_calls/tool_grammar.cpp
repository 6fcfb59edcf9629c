// Tool-call grammars per output format: the tools' names and argument schemas in each family's
// call syntax (see tool_grammar.h).
#include "tool_calls/tool_grammar.h"

#include <fmt/format.h>

#include <set>

#include "core/check.h"
#include "grammar/json_schema.h"

namespace ember::tool_calls {
namespace {

using grammar::ExprId;
using grammar::Grammar;
using grammar::RuleId;
using Mode = ToolChoice::Mode;

// The tool's arguments as a complete grammar; converter errors renamed to the request field.
Grammar arguments_grammar(const ToolSpec& tool, size_t index) {
  nlohmann::ordered_json p = tool.parameters;
  const std::string field = fmt::format("tools[{}].function.parameters", index);
  if (p.is_null() || (p.is_object() && p.empty())) return grammar::json_object_grammar();
  // The parser streams the arguments as one JSON object (and OpenAI defines them as one): the
  // schema must say "type": "object", or hold only keywords about objects (then it is implied).
  // Anything else (anyOf, enum, const, $ref, ...) could describe a non-object.
  static const std::set<std::string, std::less<>> kObjectKeywords = {"properties",
                                                                     "required",
                                                                     "additionalProperties",
                                                                     "patternProperties",
                                                                     "propertyNames",
                                                                     "minProperties",
                                                                     "maxProperties",
                                                                     "dependentRequired",
                                                                     "title",
                                                                     "description",
                                                                     "$defs",
                                                                     "definitions",
                                                                     "$schema",
                                                                     "$id",
                                                                     "$comment",
                                                                     "examples",
                                                                     "default"};
  if (!p.is_object()) {
    fail(ErrorCode::kInvalidArgument, "{}: the arguments must be a JSON object (type \"object\")", field);
  }
  if (const auto type = p.find("type"); type != p.end()) {
    if (*type != "object")
      fail(ErrorCode::kInvalidArgument, "{}: the arguments must be a JSON object (type \"object\")", field);
  } else {
    for (const auto& [key, value] : p.items()) {
      if (kObjectKeywords.count(key) == 0) {
        fail(ErrorCode::kInvalidArgument,
             "{}: without \"type\": \"object\", '{}' may describe something else than the JSON object the "
             "arguments must be",
             field, key);
      }
    }
    p["type"] = "object";
  }
  try {
    return grammar::json_schema_grammar(p, {.strict = tool.strict});
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.starts_with("schema")) message.replace(0, 6, field);
    throw Error(e.code(), message);
  }
}

class Builder {
 public:
  Builder(const std::vector<const ToolSpec*>& tools, const std::vector<size_t>& indices) {
    for (size_t i = 0; i < tools.size(); ++i) {
      const Grammar args = arguments_grammar(*tools[i], indices[i]);
      const RuleId root = g_.import(args, fmt::format("tool{}-", i));
      tools_.push_back({tools[i]->name, g_.ref(root)});
    }
  }

  Grammar& g() { return g_; }

  // Bounded whitespace, as json_schema.h's json-ws: "", " ", or one or two newlines and up to 20
  // spaces or tabs (unbounded padding would let a randomly sampling model run forever).
  ExprId ws() {
    if (ws_ < 0) {
      const ExprId newline_indent =
          g_.sequence({g_.repeat(g_.literal("\n"), 1, 2), g_.repeat(g_.char_class({{' ', ' '}, {'\t', '\t'}}), 0, 20)});
      ws_ = g_.choice({g_.empty(), g_.literal(" "), newline_indent});
    }
    return ws_;
  }
  // "key" ws : ws
  ExprId key(std::string_view name) {
    return g_.sequence({g_.literal(fmt::format("\"{}\"", name)), ws(), g_.literal(":"), ws()});
  }
  ExprId comma() { return g_.sequence({ws(), g_.literal(","), ws()}); }
  ExprId alnum9() { return g_.repeat(g_.char_class({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}}), 9, 9); }

  // {"name": "<tool>", "<args_key>": <arguments>[, "id": "<9 alnum>"]}, one alternative per tool.
  ExprId json_call(std::string_view args_key, bool with_id) {
    std::vector<ExprId> alts;
    for (const Tool& t : tools_) {
      std::vector<ExprId> items = {
          g_.literal("{"), ws(),          key("name"), g_.literal(nlohmann::json(t.name).dump()),
          comma(),         key(args_key), t.arguments};
      if (with_id) {
        items.insert(items.end(), {comma(), key("id"), g_.literal("\""), alnum9(), g_.literal("\"")});
      }
      items.insert(items.end(), {ws(), g_.literal("}")});
      alts.push_back(g_.sequence(std::move(items)));
    }
    return g_.ref(g_.add_rule("tool-call", one_of(alts)));
  }

  // name[CALL_ID]<9 alnum>[ARGS]{...} (Mistral Small 3.2) or name[ARGS]{...} (Devstral).
  ExprId mistral_call(bool with_id) {
    std::vector<ExprId> alts;
    for (const Tool& t : tools_) {
      std::vector<ExprId> items = {g_.literal(t.name)};
      if (with_id) items.insert(items.end(), {g_.literal("[CALL_ID]"), alnum9()});
      items.insert(items.end(), {g_.literal("[ARGS]"), t.arguments});
      alts.push_back(g_.sequence(std::move(items)));
    }
    return g_.ref(g_.add_rule("tool-call", one_of(alts)));
  }

  // <｜tool▁call▁begin｜>name<｜tool▁sep｜>{...}<｜tool▁call▁end｜> (DeepSeek V3.1), or with the type
  // and the fenced arguments of R1: ...begin｜>function<｜tool▁sep｜>name\n```json\n{...}\n```<｜...
  ExprId deepseek_call(bool r1) {
    namespace ds = deepseek;
    std::vector<ExprId> alts;
    for (const Tool& t : tools_) {
      std::vector<ExprId> items = {g_.literal(ds::kCallBegin)};
      if (r1) {
        items.insert(items.end(), {g_.literal("function"), g_.literal(ds::kSep), g_.literal(t.name),
                                   g_.literal(ds::kFenceOpen), t.arguments, g_.literal(ds::kFenceClose)});
      } else {
        items.insert(items.end(), {g_.literal(t.name), g_.literal(ds::kSep), t.arguments});
      }
      items.push_back(g_.literal(ds::kCallEnd));
      alts.push_back(g_.sequence(std::move(items)));
    }
    return g_.ref(g_.add_rule("tool-call", one_of(alts)));
  }

  // item (separator item)* when parallel, item alone otherwise.
  ExprId list(ExprId item, ExprId separator, bool parallel) {
    if (!parallel) return item;
    return g_.sequence({item, g_.star(g_.sequence({separator, item}))});
  }

  ExprId one_of(const std::vector<ExprId>& alts) { return alts.size() == 1 ? alts[0] : g_.choice(alts); }

  void set_root(ExprId body) { g_.set_root(g_.add_rule("root", body)); }

 private:
  struct Tool {
    std::string name;
    ExprId arguments;
  };
  Grammar g_;
  std::vector<Tool> tools_;
  ExprId ws_ = -1;
};

}  // namespace

std::optional<ToolCallGrammar> tool_call_grammar(ToolFormat format, const std::vector<ToolSpec>& tools,
                                                 const ToolChoice& choice, bool parallel_calls) {
  if (choice.mode == Mode::kNone) return std::nullopt;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string& name = tools[i].name;
    if (name.empty()) fail(ErrorCode::kInvalidArgument, "tools[{}].function.name: empty", i);
    if (!names.insert(name).second)
      fail(ErrorCode::kInvalidArgument, "tools[{}].function.name: \"{}\" is given twice", i, name);
    // The Mistral Small / Devstral name is raw text ended by a control token's text.
    if ((format == ToolFormat::kMistralSmall || format == ToolFormat::kDevstral) && name.find('[') != std::string::npos)
      fail(ErrorCode::kInvalidArgument, "tools[{}].function.name: \"[\" is not allowed in this model's tool names", i);
    // DeepSeek's too, ended by <｜tool▁sep｜> (V3.1) or a newline (R1).
    if ((format == ToolFormat::kDeepSeekV31 || format == ToolFormat::kDeepSeekR1) &&
        (name.find("<｜") != std::string::npos || name.find('\n') != std::string::npos))
      fail(ErrorCode::kInvalidArgument,
           "tools[{}].function.name: \"<｜\" and line breaks are not allowed in this model's tool names", i);
  }
  // The tools the model may call: all, or the named one.
  std::vector<const ToolSpec*> allowed;
  std::vector<size_t> indices;
  for (size_t i = 0; i < tools.size(); ++i) {
    if (choice.mode == Mode::kNamed && tools[i].name != choice.name) continue;
    allowed.push_back(&tools[i]);
    indices.push_back(i);
  }
  if (choice.mode == Mode::kNamed && allowed.empty())
    fail(ErrorCode::kInvalidArgument, "tool_choice: no tool named \"{}\"", choice.name);
  if (allowed.empty()) fail(ErrorCode::kInvalidArgument, "tool_choice: no tools to call");

  const bool lazy = choice.mode == Mode::kAuto && format != ToolFormat::kGeneric;
  Builder b(allowed, indices);
  Grammar& g = b.g();
  ToolCallGrammar out;
  out.lazy = lazy;
  switch (format) {
    case ToolFormat::kHermes: {
      const ExprId tagged = g.sequence(
          {g.literal("<tool_call>"), b.ws(), b.json_call("arguments", false), b.ws(), g.literal("</tool_call>")});
      b.set_root(b.list(tagged, b.ws(), parallel_calls));
      if (lazy) out.triggers = {"<tool_call>"};
      break;
    }
    case ToolFormat::kLlama3: {
      // One call per turn whatever parallel_calls says (the template refuses more).
      b.set_root(b.json_call("parameters", false));
      if (lazy) {
        for (const ToolSpec* t : allowed) out.triggers.push_back("{\"name\": " + nlohmann::json(t->name).dump());
        // The trigger ends mid-string: drop the closing quote the dump added.
        for (std::string& t : out.triggers) t.pop_back();
        out.trigger_at_start = true;
      }
      break;
    }
    case ToolFormat::kMistralNemo: {
      const ExprId list =
          g.sequence({g.literal("["), b.ws(), b.list(b.json_call("arguments", true), b.comma(), parallel_calls), b.ws(),
                      g.literal("]")});
      b.set_root(lazy ? list : g.sequence({g.literal("[TOOL_CALLS]"), list}));
      out.control_tokens = {"[TOOL_CALLS]"};
      break;
    }
    case ToolFormat::kMistralSmall:
    case ToolFormat::kDevstral: {
      const bool with_id = format == ToolFormat::kMistralSmall;
      // Each further call starts with its own [TOOL_CALLS] (as the template renders them).
      const ExprId calls = b.list(b.mistral_call(with_id), g.literal("[TOOL_CALLS]"), parallel_calls);
      b.set_root(lazy ? calls : g.sequence({g.literal("[TOOL_CALLS]"), calls}));
      out.control_tokens = {"[TOOL_CALLS]", "[ARGS]"};
      if (with_id) out.control_tokens.insert(out.control_tokens.begin() + 1, "[CALL_ID]");
      break;
    }
    case ToolFormat::kDeepSeekV31:
    case ToolFormat::kDeepSeekR1: {
      namespace ds = deepseek;
      // The calls one after the other, as the templates render them (R1's on their own lines,
      // V3.1's directly), then the list's closer.
      const bool r1 = format == ToolFormat::kDeepSeekR1;
      const ExprId separator = r1 ? g.choice({g.empty(), g.literal("\n")}) : g.empty();
      const ExprId calls =
          g.sequence({b.list(b.deepseek_call(r1), separator, parallel_calls), g.literal(ds::kCallsEnd)});
      b.set_root(lazy ? calls : g.sequence({g.literal(ds::kCallsBegin), calls}));
      out.control_tokens = {std::string(ds::kCallsBegin), std::string(ds::kCallBegin), std::string(ds::kSep),
                            std::string(ds::kCallEnd), std::string(ds::kCallsEnd)};
      if (lazy) {
        out.triggers = {std::string(ds::kCallsBegin)};
        out.trigger_in_grammar = false;
      }
      break;
    }
    case ToolFormat::kGeneric: {
      const ExprId call = b.json_call("arguments", false);
      std::vector<ExprId> bodies;
      if (parallel_calls) {
        bodies.push_back(g.sequence(
            {b.key("tool_calls"), g.literal("["), b.ws(), b.list(call, b.comma(), true), b.ws(), g.literal("]")}));
      } else {
        bodies.push_back(g.sequence({b.key("tool_call"), call}));
      }
      if (choice.mode == Mode::kAuto) {
        const RuleId string =
            g.import(grammar::json_schema_grammar(nlohmann::ordered_json{{"type", "string"}}), "response-");
        bodies.push_back(g.sequence({b.key("response"), g.ref(string)}));
      }
      b.set_root(g.sequence({g.literal("{"), b.ws(), b.one_of(bodies), b.ws(), g.literal("}")}));
      break;
    }
  }
  if (lazy &&
      (format == ToolFormat::kMistralNemo || format == ToolFormat::kMistralSmall || format == ToolFormat::kDevstral)) {
    out.triggers = {"[TOOL_CALLS]"};
    out.trigger_in_grammar = false;
  }
  g.check_complete();
  out.grammar = std::move(g);
  return out;
}

}  // namespace ember::tool_calls
