// ToolCallParser per family: whole outputs, every split point, byte-by-byte feeding, markers that
// are not, content around calls, unicode split across pieces.
#include "tool_calls/tool_parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "grammar/reference_matcher.h"
#include "support/test_data.h"
#include "tool_calls/tool_grammar.h"

namespace ember::tool_calls {
namespace {

using F = ToolFormat;
using Kind = ToolCallEvent::Kind;

const std::vector<std::string> kTools = {"get_weather", "get_time"};

bool generated_call_id(const std::string& id) {
  if (id.size() != 29 || !id.starts_with("call_")) return false;
  for (char c : id.substr(5))
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

// Events as one string, adjacent fragments of the same kind (and call) merged: how a client sees
// them. Generated ids read "call_*" (other families: the id itself, or "*9" with `mask_ids`).
std::string render(const std::vector<ToolCallEvent>& events, bool mask_ids) {
  std::string out;
  Kind last = Kind::kCallStart;
  int last_index = -1;
  for (const ToolCallEvent& e : events) {
    EXPECT_TRUE(valid_utf8(e.text)) << "an event splits a character: " << e.text;
    const bool merge = e.kind != Kind::kCallStart && e.kind == last && e.index == last_index;
    if (merge) {
      out.pop_back();
      out += e.text + "]";
      continue;
    }
    switch (e.kind) {
      case Kind::kContent: out += "C[" + e.text + "]"; break;
      case Kind::kCallArguments: out += "A" + std::to_string(e.index) + "[" + e.text + "]"; break;
      case Kind::kCallStart: {
        std::string id = e.id;
        if (generated_call_id(id)) id = "call_*";
        if (mask_ids && id.size() == 9) id = "*9";
        out += "S" + std::to_string(e.index) + "(" + e.name + " " + id + ")";
        break;
      }
    }
    last = e.kind;
    last_index = e.kind == Kind::kContent ? 0 : e.index;
  }
  return out;
}

std::string parse(F format, const std::vector<std::string_view>& pieces, bool mask_ids, bool* saw = nullptr,
                  std::vector<std::string> tools = kTools) {
  ToolCallParser parser(format, std::move(tools), 42);
  std::vector<ToolCallEvent> events;
  for (std::string_view p : pieces) parser.push(p, events);
  parser.finish(events);
  if (saw) *saw = parser.saw_calls();
  return render(events, mask_ids);
}

// The output parsed whole, split in two at every byte, and fed one byte at a time: all the same.
std::string parse_every_split(F format, std::string_view text, bool mask_ids = false,
                              std::vector<std::string> tools = kTools) {
  const std::string whole = parse(format, {text}, mask_ids, nullptr, tools);
  for (size_t i = 0; i <= text.size(); ++i) {
    EXPECT_EQ(parse(format, {text.substr(0, i), text.substr(i)}, mask_ids, nullptr, tools), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  EXPECT_EQ(parse(format, bytes, mask_ids, nullptr, tools), whole) << "byte by byte";
  return whole;
}

TEST(ToolParser, HermesSingleCallAfterContent) {
  bool saw = false;
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  EXPECT_EQ(parse_every_split(F::kHermes, text), "C[Let me check.\n]S0(get_weather call_*)A0[{\"city\": \"Paris\"}]");
  parse(F::kHermes, {text}, false, &saw);
  EXPECT_TRUE(saw);
}

TEST(ToolParser, HermesParallelAndContentAfter) {
  const std::string text =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"n\": [1, {\"a\": \"}\"}]}}\n"
      "</tool_call>\n<tool_call>\n{\"name\":\"get_time\",\"arguments\":{}}\n</tool_call>\nDone.";
  EXPECT_EQ(parse_every_split(F::kHermes, text),
            "S0(get_weather call_*)A0[{\"city\": \"Paris\", \"n\": [1, {\"a\": \"}\"}]}]"
            "S1(get_time call_*)A1[{}]C[Done.]");
}

TEST(ToolParser, HermesMarkerPrefixesAreHeldThenReleased) {
  EXPECT_EQ(parse_every_split(F::kHermes, "a <tool_ b <tool_call2 <tool_cal"), "C[a <tool_ b <tool_call2 <tool_cal]");
  ToolCallParser parser(F::kHermes, kTools, 1);
  std::vector<ToolCallEvent> events;
  parser.push("x <tool_cal", events);
  EXPECT_EQ(render(events, false), "C[x ]");  // the possible marker is held back
  parser.push("endar", events);
  EXPECT_EQ(render(events, false), "C[x <tool_calendar]");
  EXPECT_FALSE(parser.saw_calls());
}

TEST(ToolParser, HermesMarkerWithoutCallIsContent) {
  EXPECT_EQ(parse_every_split(F::kHermes, "use <tool_call> tags"), "C[use <tool_call> tags]");
  // Cut off before the arguments began: no call, and the markup is not content either.
  bool saw = true;
  EXPECT_EQ(parse(F::kHermes, {"Hi <tool_call>\n{\"name\": \"get_we"}, false, &saw), "C[Hi ]");
  EXPECT_FALSE(saw);
  // Cut off inside the arguments: the call stands with what arrived.
  EXPECT_EQ(parse(F::kHermes, {"<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": "}, false),
            "S0(f call_*)A0[{\"a\": ]");
}

TEST(ToolParser, HermesUnicodeSplitAcrossPieces) {
  const std::string text =
      "Città ☀ 😀<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich 😀 \\\"q\\\" {\"}}\n"
      "</tool_call>";
  EXPECT_EQ(parse_every_split(F::kHermes, text),
            "C[Città ☀ 😀]S0(get_weather call_*)A0[{\"city\": \"Zürich 😀 \\\"q\\\" {\"}]");
}

TEST(ToolParser, Llama3) {
  EXPECT_EQ(parse_every_split(F::kLlama3, R"({"name": "get_weather", "parameters": {"city": "Paris"}})"),
            "S0(get_weather call_*)A0[{\"city\": \"Paris\"}]");
  EXPECT_EQ(parse_every_split(F::kLlama3, "{\n  \"name\":\"get_time\",\n  \"parameters\": {\"tz\": \"☀\"}\n}\n"),
            "S0(get_time call_*)A0[{\"tz\": \"☀\"}]");
  // Not a known tool, not a call shape, or not at the start: content.
  EXPECT_EQ(parse_every_split(F::kLlama3, R"({"name": "Bob", "parameters": {}})"),
            "C[{\"name\": \"Bob\", \"parameters\": {}}]");
  EXPECT_EQ(parse_every_split(F::kLlama3, R"({"answer": 42})"), "C[{\"answer\": 42}]");
  EXPECT_EQ(parse_every_split(F::kLlama3, R"(Call {"name": "get_time", "parameters": {}})"),
            "C[Call {\"name\": \"get_time\", \"parameters\": {}}]");
  EXPECT_EQ(parse_every_split(F::kLlama3, "{\"na"), "C[{\"na]");
  // Without tool names any name is a call.
  EXPECT_EQ(parse_every_split(F::kLlama3, R"({"name": "Bob", "parameters": {}})", false, {}), "S0(Bob call_*)A0[{}]");
}

TEST(ToolParser, MistralNemo) {
  const std::string one = R"({"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"})";
  const std::string two = R"({"name": "get_time", "arguments": {"x": "]}"}, "id": "x0x0x0x0x"})";
  EXPECT_EQ(parse_every_split(F::kMistralNemo, "[TOOL_CALLS][" + one + "]"),
            "S0(get_weather abcDEF123)A0[{\"city\": \"Paris\"}]");
  EXPECT_EQ(parse_every_split(F::kMistralNemo, "Sure.[TOOL_CALLS][" + one + ", " + two + "]"),
            "C[Sure.]S0(get_weather abcDEF123)A0[{\"city\": \"Paris\"}]S1(get_time x0x0x0x0x)A1[{\"x\": \"]}\"}]");
  // No id, or not 9 alphanumerics: a generated one.
  EXPECT_EQ(parse_every_split(F::kMistralNemo, R"([TOOL_CALLS][{"name": "f", "arguments": {}, "id": "x"}])", true),
            "S0(f *9)A0[{}]");
  EXPECT_EQ(parse_every_split(F::kMistralNemo, R"([TOOL_CALLS][{"name": "f", "arguments": {}}])", true),
            "S0(f *9)A0[{}]");
  EXPECT_EQ(parse_every_split(F::kMistralNemo, "[TOOL_CALL is [TOOL_ not [TOOL_CALLS"),
            "C[[TOOL_CALL is [TOOL_ not [TOOL_CALLS]");
  EXPECT_EQ(parse_every_split(F::kMistralNemo, "[TOOL_CALLS] no list"), "C[[TOOL_CALLS] no list]");
}

TEST(ToolParser, MistralNemoCallEndingBeforeItsCloserStands) {
  // The output ends after the call's object, before "]" (or its id): the arguments are whole.
  bool saw = false;
  EXPECT_EQ(parse_every_split(F::kMistralNemo, R"([TOOL_CALLS][{"name": "f", "arguments": {"a": 1}})", true),
            "S0(f *9)A0[{\"a\": 1}]");
  parse(F::kMistralNemo, {R"([TOOL_CALLS][{"name": "f", "arguments": {}}, )"}, true, &saw);
  EXPECT_TRUE(saw);
}

TEST(ToolParser, CutCallsAreReported) {
  for (const auto& [format, text] :
       std::vector<std::pair<F, std::string>>{{F::kHermes, R"(<tool_call>{"name": "f", "arguments": {"a": )"},
                                              {F::kLlama3, R"({"name": "get_time", "parameters": {"a": [)"},
                                              {F::kMistralNemo, R"([TOOL_CALLS][{"name": "f", "arguments": {"a)"}}) {
    ToolCallParser parser(format, kTools, 1);
    std::vector<ToolCallEvent> events;
    parser.push(text, events);
    parser.finish(events);
    EXPECT_TRUE(parser.saw_calls()) << text;
    EXPECT_TRUE(parser.cut_call()) << text;
  }
  ToolCallParser whole(F::kHermes, kTools, 1);
  std::vector<ToolCallEvent> events;
  whole.push(R"(<tool_call>{"name": "f", "arguments": {}})", events);  // the closer cut: the call is whole
  whole.finish(events);
  EXPECT_FALSE(whole.cut_call());
}

TEST(ToolParser, Llama3LongNonToolNameIsSettledAtOnce) {
  // The header is read again on every push while it is undecided: a name that no tool's begins
  // with must settle the output as content at once (byte by byte, 200k bytes: linear).
  const std::string text = "{\"name\": \"" + std::string(200000, 'x') + "\", \"parameters\": {}}";
  const auto start = std::chrono::steady_clock::now();
  ToolCallParser parser(F::kLlama3, kTools, 1);
  std::vector<ToolCallEvent> events;
  for (size_t i = 0; i < text.size(); ++i) parser.push(std::string_view(text).substr(i, 1), events);
  parser.finish(events);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(parser.saw_calls());
  EXPECT_EQ(render(events, false), "C[" + text + "]");
  // A prefix of a tool's name is still undecided.
  EXPECT_EQ(parse(F::kLlama3, {R"({"name": "get_)", R"(time", "parameters": {}})"}, false),
            "S0(get_time call_*)A0[{}]");
}

TEST(ToolParser, MistralSmall) {
  const std::string text =
      "I'll look.[TOOL_CALLS]get_weather[CALL_ID]abcDEF123[ARGS]{\"city\": \"Köln\"}"
      "[TOOL_CALLS]get_time[CALL_ID]x0x0x0x0x[ARGS]{}";
  EXPECT_EQ(parse_every_split(F::kMistralSmall, text),
            "C[I'll look.]S0(get_weather abcDEF123)A0[{\"city\": \"Köln\"}]S1(get_time x0x0x0x0x)A1[{}]");
  EXPECT_EQ(parse_every_split(F::kMistralSmall, "[TOOL_CALLS]f[ARGS]{\"a\": [1]}", true), "S0(f *9)A0[{\"a\": [1]}]");
}

TEST(ToolParser, Devstral) {
  EXPECT_EQ(parse_every_split(F::kDevstral,
                              "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}", true),
            "S0(get_weather *9)A0[{\"city\": \"Paris\"}]S1(get_time *9)A1[{}]");
  EXPECT_EQ(parse_every_split(F::kDevstral, "[TOOL_CALLS]oops"), "");  // cut off: dropped
}

TEST(ToolParser, DeepSeekV31) {
  const std::string begin = "<｜tool▁calls▁begin｜>", call = "<｜tool▁call▁begin｜>", sep = "<｜tool▁sep｜>",
                    call_end = "<｜tool▁call▁end｜>", end = "<｜tool▁calls▁end｜>";
  const std::string text = "Let me check." + begin + call + "get_weather" + sep + "{\"city\": \"Köln\"}" + call_end +
                           call + "get_time" + sep + "{}" + call_end + end + " Done.";
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, text),
            "C[Let me check.]S0(get_weather call_*)A0[{\"city\": \"Köln\"}]S1(get_time call_*)A1[{}]C[Done.]");
  // Cut off before the list's closer: the calls stand. Before a call's arguments: dropped.
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "f" + sep + "{\"a\": 1}" + call_end),
            "S0(f call_*)A0[{\"a\": 1}]");
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "get_wea"), "");
  // A marker not followed by a call is content, marker included.
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + "no call"), "C[" + begin + "no call]");
  // Arguments followed by something else than the call's closer: the call stands, the rest is content.
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "f" + sep + "{} trailing"),
            "S0(f call_*)A0[{}]C[ trailing]");
  // A second call whose header is malformed: its text is content, and no marker appears that the
  // model did not write (the marker came before the first call).
  const std::string bad = call + "g" + call_end + call + "h" + sep + "{}";  // a name through a closer
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "f" + sep + "{}" + call_end + bad),
            "S0(f call_*)A0[{}]C[" + bad + "]");
  // A name running into a later call's markup is not a name.
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "f" + call_end + call + "g" + sep + "{}"),
            "C[" + begin + call + "f" + call_end + call + "g" + sep + "{}]");
  // A malformed list closer: the call (its own closer read) stands, what follows is content.
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, begin + call + "f" + sep + "{}" + call_end + "oops"),
            "S0(f call_*)A0[{}]C[oops]");
}

TEST(ToolParser, DeepSeekR1) {
  const std::string begin = "<｜tool▁calls▁begin｜>", call = "<｜tool▁call▁begin｜>", sep = "<｜tool▁sep｜>",
                    call_end = "<｜tool▁call▁end｜>", end = "<｜tool▁calls▁end｜>";
  const std::string text = begin + call + "function" + sep + "get_weather\n```json\n{\"city\": \"Paris\"}\n```" +
                           call_end + call + "function" + sep + "get_time\n```json\n{}\n```" + call_end + end;
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, text),
            "S0(get_weather call_*)A0[{\"city\": \"Paris\"}]S1(get_time call_*)A1[{}]");
  // As the template renders parallel calls: each after the first on its own line.
  const std::string lines = begin + call + "function" + sep + "a\n```json\n{}\n```" + call_end + "\n" + call +
                            "function" + sep + "b\n```json\n{}\n```" + call_end + end;
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, lines), "S0(a call_*)A0[{}]S1(b call_*)A1[{}]");
  // A closer without its fence is malformed: the call stands, the rest is content.
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, begin + call + "function" + sep + "a\n```json\n{}" + call_end + end),
            "S0(a call_*)A0[{}]C[" + call_end + end + "]");
  // Another type than "function", or V3.1's shape, is not a call.
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, begin + call + "tool" + sep + "a\n```json\n{}"),
            "C[" + begin + call + "tool" + sep + "a\n```json\n{}]");
  // Cut off inside the arguments: what arrived.
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, begin + call + "function" + sep + "get_time\n```json\n{\"a\":"),
            "S0(get_time call_*)A0[{\"a\":]");
}

TEST(ToolParser, Generic) {
  EXPECT_EQ(parse_every_split(F::kGeneric, R"({"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}})"),
            "S0(get_weather call_*)A0[{\"city\": \"Paris\"}]");
  EXPECT_EQ(
      parse_every_split(F::kGeneric,
                        "{\n  \"tool_calls\": [\n    {\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\"}},"
                        "\n    {\"name\": \"get_time\", \"arguments\": {}}\n  ]\n}"),
      "S0(get_weather call_*)A0[{\"city\": \"P\"}]S1(get_time call_*)A1[{}]");
  EXPECT_EQ(parse_every_split(F::kGeneric, R"({"response": "Hi \"there\" \u00e9\ud83d\ude00 ☀\n"})"),
            "C[Hi \"there\" é😀 ☀\n]");
  EXPECT_EQ(parse_every_split(F::kGeneric, "Just text."), "C[Just text.]");
  EXPECT_EQ(parse_every_split(F::kGeneric, R"({"other": 1})"), "C[{\"other\": 1}]");
}

// A \u escape with a non-hex digit among its four is U+FFFD and the rest plain characters; an
// unpaired surrogate is U+FFFD: whole characters in every event, whatever the split (a multi-byte
// character after a short \u once lost its lead byte to the escape).
TEST(ToolParser, BadUnicodeEscapesGiveReplacementCharacters) {
  EXPECT_EQ(parse_every_split(F::kGeneric, "{\"response\": \"\\u123é\"}"), "C[\uFFFD123é]");
  EXPECT_EQ(parse_every_split(F::kGeneric, "{\"response\": \"\\ud😀\"}"), "C[\uFFFDd😀]");
  EXPECT_EQ(parse_every_split(F::kGeneric, "{\"response\": \"\\ud83d\\u00e9 \\udc00 \\ud83dx\"}"),
            "C[\uFFFDé \uFFFD \uFFFDx]");
  EXPECT_EQ(parse_every_split(F::kGeneric, "{\"response\": \"\\u00zz\\\"\"}"), "C[\uFFFD00zz\"]");
}

// Only the first 1024 bytes decide whether a Llama 3.x or generic output is a call: a header that
// ends past them is content however the text was split (it was a call when pushed whole).
TEST(ToolParser, HeadersPastTheLimitAreContentWhateverTheSplit) {
  const std::string spaces(1100, ' ');
  const std::string generic = "{" + spaces + R"("tool_call": {"name": "a", "arguments": {}}})";
  EXPECT_EQ(parse_every_split(F::kGeneric, generic), "C[" + generic + "]");
  const std::string llama = R"({"name": ")" + std::string(1100, 'a') + R"(", "parameters": {}})";
  EXPECT_EQ(parse_every_split(F::kLlama3, llama, false, {}), "C[" + llama + "]");
  // Within the limit: still a call.
  const std::string near = "{" + std::string(900, ' ') + R"("tool_call": {"name": "a", "arguments": {}}})";
  EXPECT_EQ(parse_every_split(F::kGeneric, near), "S0(a call_*)A0[{}]");
}

// Markup after a marker or a call is decided on its first 1024 bytes too: unsettled by then, a
// header is not a call (marker and all are content) and a closer is malformed (the call stands,
// the rest is content). Whitespace after a call is dropped however long it runs.
TEST(ToolParser, MarkupPastTheLimitIsMalformedWhateverTheSplit) {
  const std::string spaces(1100, ' ');
  const std::string hermes = "<tool_call>{" + spaces + R"("name": "get_weather", "arguments": {}}</tool_call>)";
  EXPECT_EQ(parse_every_split(F::kHermes, hermes), "C[" + hermes + "]");
  const std::string small = "[TOOL_CALLS]" + std::string(1100, 'a') + "[ARGS]{}";
  EXPECT_EQ(parse_every_split(F::kMistralSmall, small), "C[" + small + "]");
  const std::string deepseek =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + std::string(1100, 'a') + "<｜tool▁sep｜>{}<｜tool▁call▁end｜>";
  EXPECT_EQ(parse_every_split(F::kDeepSeekV31, deepseek), "C[" + deepseek + "]");
  const std::string r1 = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>" + std::string(1100, 'a');
  EXPECT_EQ(parse_every_split(F::kDeepSeekR1, r1), "C[" + r1 + "]");  // a name line that never ends
  const std::string nemo = "[TOOL_CALLS]" + spaces + R"([{"name": "get_time", "arguments": {}}])";
  EXPECT_EQ(parse_every_split(F::kMistralNemo, nemo, true), "C[" + nemo + "]");
  const std::string closer = spaces + "}</tool_call>";
  EXPECT_EQ(parse_every_split(F::kHermes, R"(<tool_call>{"name": "get_time", "arguments": {})" + closer),
            "S0(get_time call_*)A0[{}]C[" + closer + "]");
  const std::string response_end = spaces + "}";
  EXPECT_EQ(parse_every_split(F::kGeneric, R"({"response": "hi")" + response_end), "C[hi" + response_end + "]");
  // Within the limit: still a call, and its closer still markup.
  EXPECT_EQ(
      parse_every_split(F::kHermes, "<tool_call>{" + std::string(900, ' ') + R"("name": "get_time", "arguments": {})" +
                                        std::string(1000, ' ') + "}</tool_call>"),
      "S0(get_time call_*)A0[{}]");
  const std::string call = R"(<tool_call>{"name": "get_time", "arguments": {}}</tool_call>)";
  EXPECT_EQ(parse_every_split(F::kHermes, call + std::string(3000, ' ') + "Done."),
            "S0(get_time call_*)A0[{}]C[Done.]");
  EXPECT_EQ(parse_every_split(F::kHermes, call + std::string(3000, '\n')), "S0(get_time call_*)A0[{}]");
}

// Byte 0 of the seeds below picks a format modulo this count: a new format changes it, and every
// seed's byte 0 must then be rewritten to keep its format (fuzz/regressions/README.md).
static_assert(std::size(kAllToolFormats) == 8, "rewrite byte 0 of fuzz/regressions/tool_parser/*");

// The fuzzer's seeds and past findings (fuzz/regressions/tool_parser: byte 0 picks the format and
// the tool names as tool_parser_fuzz does; the rest is the output): every split gives the whole
// text's events, in whole characters.
TEST(ToolParser, FuzzRegressionsParseTheSameWhateverTheSplit) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(EMBER_SOURCE_DIR) / "fuzz" /
                                                               "regressions" / "tool_parser")) {
    const std::string bytes = test::read_file(entry.path());
    ASSERT_GE(bytes.size(), 2u) << entry.path();
    const auto selector = static_cast<unsigned char>(bytes[0]);
    SCOPED_TRACE(entry.path().filename().string());
    const std::vector<std::string> names = selector / std::size(kAllToolFormats) % 2 == 0
                                               ? std::vector<std::string>{}
                                               : std::vector<std::string>{"get_weather", "search"};
    parse_every_split(kAllToolFormats[selector % std::size(kAllToolFormats)], std::string_view(bytes).substr(2), false,
                      names);
    ++n;
  }
  EXPECT_GE(n, 10) << "the seeds in fuzz/regressions/tool_parser are missing";
}

TEST(ToolParser, IdsAreDeterministicBySeed) {
  const auto ids = [](uint64_t seed) {
    ToolCallParser parser(F::kHermes, kTools, seed);
    std::vector<ToolCallEvent> events;
    parser.push(
        "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"g\", "
        "\"arguments\": {}}</tool_call>",
        events);
    parser.finish(events);
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.kind == Kind::kCallStart) out.push_back(e.id);
    return out;
  };
  const auto a = ids(7);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(generated_call_id(a[0])) << a[0];
  EXPECT_NE(a[0], a[1]);
  EXPECT_EQ(ids(7), a);
  EXPECT_NE(ids(8), a);
}

TEST(ToolParser, EventsCarryIndexNameAndId) {
  ToolCallParser parser(F::kMistralSmall, kTools, 3);
  std::vector<ToolCallEvent> events;
  parser.push("[TOOL_CALLS]get_time[CALL_ID]abcDEF123[ARGS]{\"a\"", events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kCallStart);
  EXPECT_EQ(events[0].index, 0);
  EXPECT_EQ(events[0].name, "get_time");
  EXPECT_EQ(events[0].id, "abcDEF123");
  EXPECT_EQ(events[1].kind, Kind::kCallArguments);
  EXPECT_EQ(events[1].text, "{\"a\"");  // streamed as it arrives
}

// What the grammar of tool_choice "required" accepts, the parser reads as calls only.
TEST(ToolParser, GrammarOutputsParseAsCalls) {
  const std::vector<ToolSpec> specs = {{.name = "get_weather", .parameters = {}},
                                       {.name = "get_time", .parameters = {}}};
  const struct {
    F format;
    std::string text;
    std::string parsed;
  } cases[] = {
      {F::kHermes, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"a\": 1}}\n</tool_call>",
       "S0(get_time call_*)A0[{\"a\": 1}]"},
      {F::kLlama3, "{\"name\": \"get_time\", \"parameters\": {\"a\": 1}}", "S0(get_time call_*)A0[{\"a\": 1}]"},
      {F::kMistralNemo, "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {\"a\": 1}, \"id\": \"abcDEF123\"}]",
       "S0(get_time abcDEF123)A0[{\"a\": 1}]"},
      {F::kMistralSmall, "[TOOL_CALLS]get_time[CALL_ID]abcDEF123[ARGS]{\"a\": 1}",
       "S0(get_time abcDEF123)A0[{\"a\": 1}]"},
      {F::kDevstral, "[TOOL_CALLS]get_time[ARGS]{\"a\": 1}", "S0(get_time *9)A0[{\"a\": 1}]"},
      {F::kDeepSeekV31,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"a\": "
       "1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "S0(get_time call_*)A0[{\"a\": 1}]"},
      {F::kDeepSeekR1,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"a\": "
       "1}\n```<｜tool▁call▁"
       "end｜><｜tool▁calls▁end｜>",
       "S0(get_time call_*)A0[{\"a\": 1}]"},
      {F::kGeneric, "{\"tool_call\": {\"name\": \"get_time\", \"arguments\": {\"a\": 1}}}",
       "S0(get_time call_*)A0[{\"a\": 1}]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(tool_format_name(c.format));
    const auto g = tool_call_grammar(c.format, specs, {.mode = ToolChoice::Mode::kRequired}, false);
    ASSERT_TRUE(g.has_value());
    EXPECT_TRUE(grammar::testing::reference_matches(g->grammar, c.text));
    EXPECT_EQ(parse_every_split(c.format, c.text, c.format == F::kDevstral), c.parsed);
  }
}

}  // namespace
}  // namespace ember::tool_calls
