// The completion endpoints' response objects against OpenAI's shapes, written out in full: chat and
// text completions, stream chunks, usage, both logprob formats, finish reasons, and SSE framing
// of text that is not valid UTF-8.
#include <gtest/gtest.h>

#include <set>

#include "server/completion_response.h"
#include "server/tool_call_response.h"

namespace ember::server {
namespace {

using nlohmann::json;

const ResponseMeta kMeta{.id = "chatcmpl-1", .created = 1700000000, .model = "ember-tiny"};

TEST(CompletionResponse, ChatCompletionIsOpenAisObject) {
  const ChoiceOut choice{
      .index = 0, .text = "Hi there", .finish = FinishReason::kStopString, .logprobs = {}, .offset = 0};
  const json got =
      chat_completion(kMeta, {choice}, Usage{.prompt_tokens = 5, .completion_tokens = 2, .cached_tokens = 3});
  EXPECT_EQ(got, json::parse(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "ember-tiny",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "refusal": null},
                 "logprobs": null, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
              "prompt_tokens_details": {"cached_tokens": 3}},
    "timings": {"prompt_n": 2, "cache_n": 3, "predicted_n": 2, "first_token_ms": 0.0, "total_ms": 0.0,
                "predicted_per_second": 0.0, "draft_n": 0, "draft_n_accepted": 0}})"));
}

TEST(CompletionResponse, SpeculativeDraftsInUsageAndTimings) {
  // OpenAI's predicted-output counts, and llama.cpp's timings: 9 tokens after the first in 40 ms.
  const Usage usage{.prompt_tokens = 5,
                    .completion_tokens = 10,
                    .cached_tokens = 0,
                    .draft_tokens = 12,
                    .accepted_tokens = 7,
                    .first_token_ms = 10,
                    .total_ms = 50};
  const json got = usage_json(usage);
  EXPECT_EQ(got["completion_tokens_details"],
            json::parse(R"({"accepted_prediction_tokens": 7, "rejected_prediction_tokens": 5})"));
  const json t = timings_json(usage);
  EXPECT_EQ(t["draft_n"], 12);
  EXPECT_EQ(t["draft_n_accepted"], 7);
  EXPECT_EQ(t["prompt_n"], 5);
  EXPECT_DOUBLE_EQ(t["predicted_per_second"].get<double>(), 9 * 1e3 / 40);
}

TEST(CompletionResponse, ChatLogprobsCarryBytesAndAlternatives) {
  const ChoiceOut choice{
      .index = 1,
      .text = "A\xE2\x82",
      .finish = FinishReason::kMaxTokens,
      .logprobs = std::vector<TokenOut>{{.text = "A", .logprob = -0.5f, .top = {{"A", -0.5f}, {"B", -1.0f}}},
                                        {.text = "\xE2\x82", .logprob = -2.0f, .top = {}}},
      .offset = 0};
  const json got = chat_completion(kMeta, {choice}, Usage{})["choices"][0];
  EXPECT_EQ(got["finish_reason"], "length");
  ASSERT_EQ(got["logprobs"]["content"].size(), 2u);
  EXPECT_TRUE(got["logprobs"]["refusal"].is_null());
  EXPECT_EQ(got["logprobs"]["content"][0], json::parse(R"({"token": "A", "logprob": -0.5, "bytes": [65],
    "top_logprobs": [{"token": "A", "logprob": -0.5, "bytes": [65]}, {"token": "B", "logprob": -1.0, "bytes": [66]}]})"));
  // The split character's bytes are exact even though its text is not valid UTF-8.
  EXPECT_EQ(got["logprobs"]["content"][1]["bytes"], json::parse("[226, 130]"));
  EXPECT_EQ(got["logprobs"]["content"][1]["logprob"], -2.0);
  EXPECT_EQ(got["logprobs"]["content"][1]["top_logprobs"], json::array());
  // Serializing replaces the invalid bytes instead of throwing.
  const std::string event = sse_event(chat_completion(kMeta, {choice}, Usage{}));
  EXPECT_NE(event.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(event.substr(0, 6), "data: ");
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_EQ(event.find('\n'), event.size() - 2);  // one line of JSON
}

TEST(CompletionResponse, ChatChunksCarryRoleThenContentThenFinish) {
  const json first =
      chat_chunk(kMeta, ChoiceOut{.index = 2, .text = "", .finish = {}, .logprobs = {}, .offset = 0}, true);
  EXPECT_EQ(first, json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "ember-tiny", "choices": [{"index": 2, "delta": {"role": "assistant", "content": ""},
    "logprobs": null, "finish_reason": null}]})"));
  const json middle =
      chat_chunk(kMeta, ChoiceOut{.index = 2, .text = "Hi", .finish = {}, .logprobs = {}, .offset = 0}, false);
  EXPECT_EQ(middle["choices"][0]["delta"], json::parse(R"({"content": "Hi"})"));
  const json last = chat_chunk(
      kMeta, ChoiceOut{.index = 2, .text = "", .finish = FinishReason::kEndOfGeneration, .logprobs = {}, .offset = 0},
      false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last.contains("usage"));
  const json usage = usage_chunk(kMeta, true, Usage{.prompt_tokens = 1, .completion_tokens = 4, .cached_tokens = 0});
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5);
  EXPECT_EQ(usage["object"], "chat.completion.chunk");
  EXPECT_EQ(usage_chunk(kMeta, false, Usage{})["object"], "text_completion");
}

TEST(CompletionResponse, StreamedChunksCarryNullUsageWhenUsageWasAsked) {
  ResponseMeta meta = kMeta;
  meta.stream_usage = true;
  const ChoiceOut piece{.index = 0,
                        .text = "Hi",
                        .finish = {},
                        .logprobs = std::vector<TokenOut>{{.text = "Hi", .logprob = -0.1f, .top = {}}},
                        .offset = 0};
  const json chunk = chat_chunk(meta, piece, false);
  ASSERT_TRUE(chunk.contains("usage"));
  EXPECT_TRUE(chunk["usage"].is_null());
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["content"][0]["token"], "Hi");
  const json text_chunk = text_completion(meta, {piece}, std::nullopt);
  ASSERT_TRUE(text_chunk.contains("usage"));
  EXPECT_TRUE(text_chunk["usage"].is_null());
}

TEST(CompletionResponse, TextCompletionLogprobsAreParallelArrays) {
  // Offsets in characters from the prompt's start: "é" is one character of two bytes.
  const ChoiceOut choice{
      .index = 0,
      .text =
          "\xC3\xA9"
          "d",
      .finish = {},
      .logprobs = std::vector<TokenOut>{{.text = "\xC3\xA9", .logprob = -1.0f, .top = {{"\xC3\xA9", -1.0f}}},
                                        {.text = "d", .logprob = -0.25f, .top = {{"d", -0.25f}}}},
      .offset = 2};
  const json got = text_completion(ResponseMeta{.id = "cmpl-9", .created = 1, .model = "m"}, {choice}, std::nullopt);
  EXPECT_EQ(got, json::parse(R"({"id": "cmpl-9", "object": "text_completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "text": "\u00e9d", "finish_reason": null, "logprobs": {
      "tokens": ["\u00e9", "d"], "token_logprobs": [-1.0, -0.25], "top_logprobs": [{"\u00e9": -1.0}, {"d": -0.25}],
      "text_offset": [2, 3]}}]})"));
  // Two alternatives with one text keep the better; the chosen token is always among them.
  const ChoiceOut dup{
      .index = 0,
      .text = "x",
      .finish = {},
      .logprobs = std::vector<TokenOut>{{.text = "x", .logprob = -3.0f, .top = {{"a", -0.5f}, {"a", -0.9f}}}},
      .offset = 0};
  EXPECT_EQ(text_completion(ResponseMeta{}, {dup}, std::nullopt)["choices"][0]["logprobs"]["top_logprobs"][0],
            json::parse(R"({"a": -0.5, "x": -3.0})"));
  const json with_usage = text_completion(ResponseMeta{}, {choice}, Usage{.prompt_tokens = 3, .completion_tokens = 2});
  EXPECT_EQ(with_usage["usage"]["total_tokens"], 5);
}

TEST(CompletionResponse, FinishReasonsMapToOpenAis) {
  EXPECT_EQ(finish_reason_json(FinishReason::kEndOfGeneration), "stop");
  EXPECT_EQ(finish_reason_json(FinishReason::kStopString), "stop");
  EXPECT_EQ(finish_reason_json(FinishReason::kMaxTokens), "length");
  EXPECT_EQ(finish_reason_json(FinishReason::kContextFull), "length");
  EXPECT_EQ(finish_reason_json(FinishReason::kMaxTime), "length");
  EXPECT_TRUE(finish_reason_json(FinishReason::kCancelled).is_null());
  EXPECT_TRUE(finish_reason_json(FinishReason::kError).is_null());
  EXPECT_TRUE(finish_reason_json(std::nullopt).is_null());
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

// The reply's tool calls as chat_completion writes them, for output `text` that ended by `finish`.
json tool_reply(const std::string& text, FinishReason finish) {
  ToolCallOutput tools(tool_calls::ToolFormat::kHermes, {"f"});
  std::vector<ToolCallOutput::Delta> ignored;
  tools.push(text, ignored);
  tools.finish(ignored);
  ChoiceOut o;
  o.text = tools.content();
  o.tool_calls = tools.calls();
  o.called_tools = tools.saw_calls();
  o.finish = finish;
  return chat_completion(kMeta, {o}, Usage{})["choices"][0];
}

TEST(CompletionResponse, ACallCutShortIsNotReportedAsToolCalls) {
  // A stop string cut the arguments: no call with invalid arguments, and the reply's own reason.
  json c = tool_reply("<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": ", FinishReason::kStopString);
  EXPECT_EQ(c["finish_reason"], "stop") << c.dump();
  EXPECT_FALSE(c["message"].contains("tool_calls")) << c.dump();
  // A whole call before it stands; the cut one is dropped.
  c = tool_reply(
      "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"f\", "
      "\"arguments\": {\"a",
      FinishReason::kStopString);
  EXPECT_EQ(c["finish_reason"], "stop") << c.dump();
  ASSERT_EQ(c["message"]["tool_calls"].size(), 1u) << c.dump();
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["arguments"], "{}");
  // Whole: "tool_calls", and whitespace beside the call is no content.
  c = tool_reply("\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n", FinishReason::kEndOfGeneration);
  EXPECT_EQ(c["finish_reason"], "tool_calls") << c.dump();
  EXPECT_TRUE(c["message"]["content"].is_null()) << c.dump();
}

// Streamed, a chunk holds at most one entry per call: the start (id, name, arguments "") and the
// arguments that came with it in one push go out as two chunks; arguments alone join up.
TEST(CompletionResponse, AStreamedChunkHoldsOneEntryPerCall) {
  ToolCallOutput tools(tool_calls::ToolFormat::kHermes, {"f", "g"});
  std::vector<ToolCallOutput::Delta> deltas;
  tools.push("<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1", deltas);
  tools.push("}}</tool_call><tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>", deltas);
  tools.finish(deltas);
  std::string f_arguments;
  for (const ToolCallOutput::Delta& d : deltas) {
    if (d.tool_calls.is_null()) continue;
    std::set<int> indices;
    for (const json& entry : d.tool_calls) {
      EXPECT_TRUE(indices.insert(entry["index"].get<int>()).second) << d.tool_calls.dump();
      if (entry.contains("id")) {
        EXPECT_EQ(entry["function"]["arguments"], "") << entry.dump();
      }
      if (entry["index"] == 0) f_arguments += entry["function"]["arguments"].get<std::string>();
    }
  }
  EXPECT_EQ(f_arguments, "{\"a\": 1}");
  ASSERT_EQ(tools.calls().size(), 2u);
}

}  // namespace
}  // namespace ember::server
