// tool_call_grammar per family and tool_choice, checked with the reference matcher and compiled.
#include "tool_calls/tool_grammar.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/reference_matcher.h"

namespace ember::tool_calls {
namespace {

using F = ToolFormat;
using Mode = ToolChoice::Mode;
using grammar::testing::reference_matches;

std::vector<ToolSpec> tools() {
  return {
      {.name = "get_weather", .parameters = nlohmann::ordered_json::parse(R"({"type": "object",
           "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
           "required": ["city"]})")},
      {.name = "get_time", .parameters = {}},  // any object
  };
}

ToolCallGrammar make(F format, Mode mode, bool parallel, std::string name = "") {
  auto g = tool_call_grammar(format, tools(), {.mode = mode, .name = std::move(name)}, parallel);
  EMBER_CHECK(g.has_value());
  return std::move(*g);
}

bool accepts(const ToolCallGrammar& g, std::string_view text) { return reference_matches(g.grammar, text); }

const char kWeather[] = R"({"name": "get_weather", "arguments": {"city": "Paris"}})";
const char kTime[] = R"({"name": "get_time", "arguments": {"tz": "UTC", "n": [1, 2]}})";

TEST(ToolGrammar, HermesAuto) {
  const ToolCallGrammar g = make(F::kHermes, Mode::kAuto, true);
  EXPECT_TRUE(g.lazy);
  EXPECT_EQ(g.triggers, std::vector<std::string>{"<tool_call>"});
  EXPECT_TRUE(g.trigger_in_grammar);
  EXPECT_FALSE(g.trigger_at_start);
  const std::string one = std::string("<tool_call>\n") + kWeather + "\n</tool_call>";
  const std::string two = one + "\n<tool_call>\n" + kTime + "\n</tool_call>";
  EXPECT_TRUE(accepts(g, one));
  EXPECT_TRUE(accepts(g, two));
  EXPECT_TRUE(accepts(g, R"(<tool_call>{"name":"get_weather","arguments":{"city":"Paris","unit":"c"}}</tool_call>)"));
  EXPECT_TRUE(accepts(g, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_wether\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 3}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"arguments\": {\"city\": \"P\"}, \"name\": \"get_weather\"}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, one + "\n"));      // nothing after the last call
  EXPECT_FALSE(accepts(g, "Sure. " + one));  // content precedes the trigger, not the grammar
  EXPECT_FALSE(accepts(g, "<tool_call>\n" + std::string(kWeather) + "\n"));  // unclosed
  // Whitespace stays bounded.
  EXPECT_FALSE(accepts(g, "<tool_call>\n\n\n" + std::string(kWeather) + "\n</tool_call>"));

  const ToolCallGrammar single = make(F::kHermes, Mode::kAuto, false);
  EXPECT_TRUE(accepts(single, one));
  EXPECT_FALSE(accepts(single, two));
}

TEST(ToolGrammar, HermesRequiredAndNamed) {
  const ToolCallGrammar req = make(F::kHermes, Mode::kRequired, true);
  EXPECT_FALSE(req.lazy);
  EXPECT_TRUE(req.triggers.empty());
  EXPECT_TRUE(accepts(req, std::string("<tool_call>\n") + kWeather + "\n</tool_call>"));
  EXPECT_FALSE(accepts(req, "Hello"));
  EXPECT_FALSE(accepts(req, ""));
  const ToolCallGrammar named = make(F::kHermes, Mode::kNamed, true, "get_time");
  EXPECT_FALSE(named.lazy);
  EXPECT_TRUE(accepts(named, std::string("<tool_call>\n") + kTime + "\n</tool_call>"));
  EXPECT_FALSE(accepts(named, std::string("<tool_call>\n") + kWeather + "\n</tool_call>"));
}

TEST(ToolGrammar, Llama3) {
  const ToolCallGrammar g = make(F::kLlama3, Mode::kAuto, true);
  EXPECT_TRUE(g.lazy);
  EXPECT_TRUE(g.trigger_in_grammar);
  EXPECT_TRUE(g.trigger_at_start);
  ASSERT_EQ(g.triggers, (std::vector<std::string>{R"({"name": "get_weather)", R"({"name": "get_time)"}));
  const std::string call = R"({"name": "get_weather", "parameters": {"city": "Paris"}})";
  EXPECT_TRUE(accepts(g, call));
  EXPECT_TRUE(call.starts_with(g.triggers[0]));
  EXPECT_TRUE(accepts(g, R"({"name": "get_time", "parameters": {}})"));
  EXPECT_FALSE(accepts(g, R"({"name": "get_weather", "arguments": {"city": "Paris"}})"));
  EXPECT_FALSE(accepts(g, R"({"name": "other", "parameters": {}})"));
  EXPECT_FALSE(accepts(g, R"({"name": "get_weather", "parameters": {"town": "Paris"}})"));
  EXPECT_FALSE(accepts(g, call + call));  // one call per turn, parallel or not
  const ToolCallGrammar req = make(F::kLlama3, Mode::kRequired, true);
  EXPECT_FALSE(req.lazy);
  EXPECT_TRUE(req.triggers.empty());
  EXPECT_TRUE(accepts(req, call));
  const ToolCallGrammar named = make(F::kLlama3, Mode::kNamed, false, "get_weather");
  EXPECT_TRUE(accepts(named, call));
  EXPECT_FALSE(accepts(named, R"({"name": "get_time", "parameters": {}})"));
}

TEST(ToolGrammar, MistralNemo) {
  const ToolCallGrammar g = make(F::kMistralNemo, Mode::kAuto, true);
  EXPECT_TRUE(g.lazy);
  EXPECT_EQ(g.triggers, std::vector<std::string>{"[TOOL_CALLS]"});
  EXPECT_FALSE(g.trigger_in_grammar);  // a control token: the grammar starts after it
  EXPECT_EQ(g.control_tokens, std::vector<std::string>{"[TOOL_CALLS]"});
  const std::string one = R"([{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}])";
  const std::string two =
      R"([{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}, {"name": "get_time", "arguments": {}, "id": "000000000"}])";
  EXPECT_TRUE(accepts(g, one));
  EXPECT_TRUE(accepts(g, two));
  EXPECT_FALSE(accepts(g, "[TOOL_CALLS]" + one));
  EXPECT_FALSE(accepts(g, R"([{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF12"}])"));
  EXPECT_FALSE(accepts(g, R"([{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF12_"}])"));
  EXPECT_FALSE(accepts(g, R"([{"name": "get_weather", "arguments": {"city": "Paris"}}])"));
  EXPECT_FALSE(accepts(g, R"([{"name": "get_weather", "arguments": {"city": null}, "id": "abcDEF123"}])"));
  EXPECT_FALSE(accepts(g, "[]"));
  const ToolCallGrammar single = make(F::kMistralNemo, Mode::kAuto, false);
  EXPECT_TRUE(accepts(single, one));
  EXPECT_FALSE(accepts(single, two));
  const ToolCallGrammar req = make(F::kMistralNemo, Mode::kRequired, false);
  EXPECT_FALSE(req.lazy);
  EXPECT_TRUE(accepts(req, "[TOOL_CALLS]" + one));
  EXPECT_FALSE(accepts(req, one));
  const ToolCallGrammar named = make(F::kMistralNemo, Mode::kNamed, true, "get_time");
  EXPECT_FALSE(accepts(named, "[TOOL_CALLS]" + one));
  EXPECT_TRUE(accepts(named, R"([TOOL_CALLS][{"name": "get_time", "arguments": {"a": 1}, "id": "a1B2c3D4e"}])"));
}

TEST(ToolGrammar, MistralSmall) {
  const ToolCallGrammar g = make(F::kMistralSmall, Mode::kAuto, true);
  EXPECT_TRUE(g.lazy);
  EXPECT_EQ(g.triggers, std::vector<std::string>{"[TOOL_CALLS]"});
  EXPECT_FALSE(g.trigger_in_grammar);
  EXPECT_EQ(g.control_tokens, (std::vector<std::string>{"[TOOL_CALLS]", "[CALL_ID]", "[ARGS]"}));
  const std::string one = R"(get_weather[CALL_ID]abcDEF123[ARGS]{"city": "Paris"})";
  const std::string two = one + R"([TOOL_CALLS]get_time[CALL_ID]x0x0x0x0x[ARGS]{})";
  EXPECT_TRUE(accepts(g, one));
  EXPECT_TRUE(accepts(g, two));
  EXPECT_FALSE(accepts(g, R"(get_weather[ARGS]{"city": "Paris"})"));
  EXPECT_FALSE(accepts(g, R"(get_weathers[CALL_ID]abcDEF123[ARGS]{"city": "Paris"})"));
  EXPECT_FALSE(accepts(g, R"(get_weather[CALL_ID]abcDEF123[ARGS]{"city": 1})"));
  EXPECT_FALSE(accepts(make(F::kMistralSmall, Mode::kAuto, false), two));
  const ToolCallGrammar req = make(F::kMistralSmall, Mode::kRequired, true);
  EXPECT_TRUE(accepts(req, "[TOOL_CALLS]" + two));
  EXPECT_FALSE(accepts(req, two));
}

TEST(ToolGrammar, Devstral) {
  const ToolCallGrammar g = make(F::kDevstral, Mode::kAuto, true);
  EXPECT_EQ(g.control_tokens, (std::vector<std::string>{"[TOOL_CALLS]", "[ARGS]"}));
  const std::string one = R"(get_weather[ARGS]{"city": "Paris"})";
  EXPECT_TRUE(accepts(g, one));
  EXPECT_TRUE(accepts(g, one + "[TOOL_CALLS]get_time[ARGS]{}"));
  EXPECT_FALSE(accepts(g, R"(get_weather[CALL_ID]abcDEF123[ARGS]{"city": "Paris"})"));
  EXPECT_FALSE(accepts(make(F::kDevstral, Mode::kAuto, false), one + "[TOOL_CALLS]get_time[ARGS]{}"));
  const ToolCallGrammar named = make(F::kDevstral, Mode::kNamed, false, "get_weather");
  EXPECT_FALSE(named.lazy);
  EXPECT_TRUE(accepts(named, "[TOOL_CALLS]" + one));
  EXPECT_FALSE(accepts(named, "[TOOL_CALLS]get_time[ARGS]{}"));
}

// DeepSeek's control tokens, written out (tool_format.h's constants are what is under test).
constexpr std::string_view kDsBegin = "<｜tool▁calls▁begin｜>", kDsCall = "<｜tool▁call▁begin｜>",
                           kDsSep = "<｜tool▁sep｜>", kDsCallEnd = "<｜tool▁call▁end｜>",
                           kDsEnd = "<｜tool▁calls▁end｜>";

std::string ds_call(std::string_view name, std::string_view args) {
  return std::string(kDsCall) + std::string(name) + std::string(kDsSep) + std::string(args) + std::string(kDsCallEnd);
}
std::string r1_call(std::string_view name, std::string_view args) {
  return std::string(kDsCall) + "function" + std::string(kDsSep) + std::string(name) + "\n```json\n" +
         std::string(args) + "\n```" + std::string(kDsCallEnd);
}

TEST(ToolGrammar, DeepSeekV31) {
  const ToolCallGrammar g = make(F::kDeepSeekV31, Mode::kAuto, true);
  EXPECT_TRUE(g.lazy);
  EXPECT_EQ(g.triggers, std::vector<std::string>{std::string(kDsBegin)});
  EXPECT_FALSE(g.trigger_in_grammar);
  EXPECT_EQ(g.control_tokens,
            (std::vector<std::string>{std::string(kDsBegin), std::string(kDsCall), std::string(kDsSep),
                                      std::string(kDsCallEnd), std::string(kDsEnd)}));
  const std::string one = ds_call("get_weather", R"({"city": "Paris"})");
  const std::string two = one + ds_call("get_time", "{}");
  EXPECT_TRUE(accepts(g, one + std::string(kDsEnd)));
  EXPECT_TRUE(accepts(g, two + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(g, one));  // the list's closer is required
  EXPECT_FALSE(accepts(g, ds_call("get_weathers", R"({"city": "Paris"})") + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(g, ds_call("get_weather", R"({"city": 1})") + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(g, r1_call("get_time", "{}") + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(make(F::kDeepSeekV31, Mode::kAuto, false), two + std::string(kDsEnd)));
  const ToolCallGrammar req = make(F::kDeepSeekV31, Mode::kRequired, true);
  EXPECT_FALSE(req.lazy);
  EXPECT_TRUE(accepts(req, std::string(kDsBegin) + two + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(req, two + std::string(kDsEnd)));
}

TEST(ToolGrammar, DeepSeekR1) {
  const ToolCallGrammar g = make(F::kDeepSeekR1, Mode::kAuto, true);
  const std::string one = r1_call("get_weather", R"({"city": "Paris"})");
  EXPECT_TRUE(accepts(g, one + r1_call("get_time", R"({"n": [1]})") + std::string(kDsEnd)));
  // Each call after the first on its own line, as the template renders them.
  EXPECT_TRUE(accepts(g, one + "\n" + r1_call("get_time", "{}") + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(g, one + "\n\n" + r1_call("get_time", "{}") + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(g, ds_call("get_time", "{}") + std::string(kDsEnd)));
  const ToolCallGrammar named = make(F::kDeepSeekR1, Mode::kNamed, false, "get_weather");
  EXPECT_TRUE(accepts(named, std::string(kDsBegin) + one + std::string(kDsEnd)));
  EXPECT_FALSE(accepts(named, std::string(kDsBegin) + r1_call("get_time", "{}") + std::string(kDsEnd)));
  // Names are raw text ended by a control token or a line break.
  EXPECT_THROW((void)tool_call_grammar(F::kDeepSeekR1, {{.name = "a\nb"}}, {}, true), Error);
  EXPECT_THROW((void)tool_call_grammar(F::kDeepSeekV31, {{.name = "a<｜tool▁sep｜>"}}, {}, true), Error);
}

TEST(ToolGrammar, Generic) {
  const ToolCallGrammar g = make(F::kGeneric, Mode::kAuto, false);
  EXPECT_FALSE(g.lazy);  // the whole reply is JSON, a call or a response
  EXPECT_TRUE(g.triggers.empty());
  EXPECT_TRUE(accepts(g, std::string(R"({"tool_call": )") + kWeather + "}"));
  EXPECT_TRUE(accepts(g, R"({"response": "It is sunny.\n"})"));
  EXPECT_TRUE(accepts(g, "{\n  \"response\": \"ok\"\n}"));
  EXPECT_FALSE(accepts(g, std::string(R"({"tool_calls": [)") + kWeather + "]}"));
  EXPECT_FALSE(accepts(g, "It is sunny."));
  const ToolCallGrammar par = make(F::kGeneric, Mode::kRequired, true);
  EXPECT_TRUE(accepts(par, std::string(R"({"tool_calls": [)") + kWeather + ", " + kTime + "]}"));
  EXPECT_TRUE(accepts(par, std::string(R"({"tool_calls": [)") + kWeather + "]}"));
  EXPECT_FALSE(accepts(par, R"({"tool_calls": []})"));
  EXPECT_FALSE(accepts(par, R"({"response": "ok"})"));
  const ToolCallGrammar named = make(F::kGeneric, Mode::kNamed, false, "get_weather");
  EXPECT_TRUE(accepts(named, std::string(R"({"tool_call": )") + kWeather + "}"));
  EXPECT_FALSE(accepts(named, std::string(R"({"tool_call": )") + kTime + "}"));
}

TEST(ToolGrammar, NoneIsNoConstraint) {
  for (F f : kAllToolFormats) EXPECT_FALSE(tool_call_grammar(f, tools(), {.mode = Mode::kNone}, true).has_value());
}

TEST(ToolGrammar, Errors) {
  const auto message = [](F f, const std::vector<ToolSpec>& t, ToolChoice c) -> std::string {
    try {
      tool_call_grammar(f, t, c, true);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message(F::kHermes, tools(), {.mode = Mode::kNamed, .name = "nope"}),
            "tool_choice: no tool named \"nope\"");
  EXPECT_EQ(message(F::kHermes, {}, {.mode = Mode::kAuto}), "tool_choice: no tools to call");
  std::vector<ToolSpec> dup = tools();
  dup.push_back(dup[0]);
  EXPECT_EQ(message(F::kHermes, dup, {}), "tools[2].function.name: \"get_weather\" is given twice");
  std::vector<ToolSpec> bad = tools();
  bad[1].parameters = nlohmann::ordered_json::parse(R"({"type": "object", "properties": {"x": {"type": "wat"}}})");
  EXPECT_TRUE(message(F::kHermes, bad, {}).starts_with("tools[1].function.parameters/properties/x"))
      << message(F::kHermes, bad, {});
  bad[1].parameters = nlohmann::ordered_json::parse(R"({"type": "string"})");
  EXPECT_EQ(message(F::kHermes, bad, {}),
            "tools[1].function.parameters: the arguments must be a JSON object (type \"object\")");
  // Schemas that may describe something else than an object (the output would not be a call).
  for (const char* schema : {R"({"anyOf": [{"type": "string"}, {"type": "integer"}]})", R"({"enum": ["a", "b"]})",
                             R"({"const": 1})", R"({"$ref": "#/$defs/n", "$defs": {"n": {"type": "integer"}}})",
                             R"({"type": ["object", "null"]})", "[1]", "\"x\""}) {
    bad[1].parameters = nlohmann::ordered_json::parse(schema);
    EXPECT_TRUE(message(F::kHermes, bad, {}).starts_with("tools[1].function.parameters: ")) << schema;
  }
  EXPECT_EQ(message(F::kDevstral, {{.name = "a[b", .parameters = {}}}, {}),
            "tools[0].function.name: \"[\" is not allowed in this model's tool names");
}

TEST(ToolGrammar, ObjectKeywordsWithoutTypeMeanAnObject) {
  // No "type", only object keywords: an object, as "type": "object" would say.
  std::vector<ToolSpec> t = {{.name = "f",
                              .parameters = nlohmann::ordered_json::parse(
                                  R"({"properties": {"x": {"type": "integer"}}, "required": ["x"],
                                                   "additionalProperties": false, "description": "d"})")}};
  const auto g = tool_call_grammar(F::kLlama3, t, {.mode = Mode::kRequired}, true);
  ASSERT_TRUE(g.has_value());
  EXPECT_TRUE(accepts(*g, R"({"name": "f", "parameters": {"x": 1}})"));
  EXPECT_FALSE(accepts(*g, R"({"name": "f", "parameters": {"x": "1"}})"));
  t[0].parameters = nullptr;
  EXPECT_TRUE(tool_call_grammar(F::kLlama3, t, {.mode = Mode::kRequired}, true).has_value());
}

TEST(ToolGrammar, EveryVariantCompiles) {
  for (F f : kAllToolFormats) {
    for (Mode m : {Mode::kAuto, Mode::kRequired, Mode::kNamed}) {
      for (bool parallel : {false, true}) {
        SCOPED_TRACE(std::string(tool_format_name(f)) + " mode " + std::to_string(static_cast<int>(m)) +
                     (parallel ? " parallel" : ""));
        const ToolCallGrammar g = make(f, m, parallel, m == Mode::kNamed ? "get_weather" : "");
        EXPECT_NO_THROW(grammar::CompiledGrammar::compile(g.grammar)) << g.grammar.to_gbnf();
      }
    }
  }
}

}  // namespace
}  // namespace ember::tool_calls
