// The JSON the completion endpoints answer with, shaped as OpenAI's: chat.completion and its
// streamed chat.completion.chunk, text_completion (streamed as the same object), usage, logprobs
// in each endpoint's format, and the SSE framing ("data: {...}\n\n", "data: [DONE]\n\n").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/session.h"

namespace ember::server {

// What every object of one response shares.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  // Streaming with stream_options.include_usage: every chunk but the last carries "usage": null.
  bool stream_usage = false;
};

// One generated (or, echoed, prompt) token as the endpoints report it.
struct TokenOut {
  std::string text;  // the token's own bytes (may be part of a UTF-8 character)
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // alternatives, best first
  bool no_logprob = false;                         // an echoed prompt's first token: logprob and top_logprobs null
  // Completions: this token's text_offset, where the running count of the tokens' texts is not it
  // (the first generated token after an echoed prompt starts after the prompt's text).
  std::optional<size_t> text_offset = std::nullopt;
};

// Texts are cut at UTF-8 character boundaries by the caller (the Detokenizer holds incomplete
// characters back); only TokenOut::text, a single token's bytes, may hold part of one.
struct ChoiceOut {
  int32_t index = 0;
  std::string text;
  std::optional<FinishReason> finish;             // absent while streaming
  std::optional<std::vector<TokenOut>> logprobs;  // present when the request asked for them
  // Completions' text_offset of the first token: characters (code points) from the start of the
  // prompt to `text` (the prompt's length, plus what earlier chunks of a stream carried; 0 for an
  // echoed prompt's logprobs).
  size_t offset = 0;
  // Chat with tools: the whole message's tool_calls ([{id, type, function: {name, arguments}}]), or
  // a chunk's delta.tool_calls; null: none. A message with calls and no text has content null.
  nlohmann::json tool_calls = nullptr;
  bool called_tools = false;  // calls were emitted: finish_reason "tool_calls" (unless "length")
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_tokens = 0;  // of the prompt's (usage.prompt_tokens_details.cached_tokens)
  // Speculative decoding, over the choices: draft tokens proposed and kept
  // (usage.completion_tokens_details's accepted / rejected_prediction_tokens, and "timings").
  int32_t draft_tokens = 0;
  int32_t accepted_tokens = 0;
  double first_token_ms = 0;  // the request's arrival at the engine to its first token (choice 0)
  double total_ms = 0;        // to the end of its last choice
};

// OpenAI's finish_reason: "stop" (end of turn, a stop string) or "length" (max tokens, the
// context, the time limit); null for a generation that did not finish by itself.
nlohmann::json finish_reason_json(std::optional<FinishReason> reason, bool called_tools = false);

nlohmann::json usage_json(const Usage& usage);
// llama.cpp's "timings" (an extension beside "usage"): prompt_n, cache_n, predicted_n,
// first_token_ms, total_ms, predicted_per_second, draft_n, draft_n_accepted.
nlohmann::json timings_json(const Usage& usage);

// {"id", "object": "chat.completion", "created", "model", "choices": [{"index", "message":
// {"role": "assistant", "content"}, "logprobs", "finish_reason"}], "usage"}
nlohmann::json chat_completion(const ResponseMeta& meta, const std::vector<ChoiceOut>& choices, const Usage& usage);
// One chat.completion.chunk: a delta for choice `choice.index` (role on the first, content, and
// finish_reason on the last), its logprobs when given. As OpenAI does, the caller sends the first
// chunk (role, content "") on its own and the finish in a chunk of its own.
nlohmann::json chat_chunk(const ResponseMeta& meta, const ChoiceOut& choice, bool first);
// The last chunk when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ResponseMeta& meta, bool chat, const Usage& usage);

// {"id", "object": "text_completion", "created", "model", "choices": [{"index", "text",
// "logprobs", "finish_reason"}], "usage"}; streaming sends the same object per piece (no usage).
nlohmann::json text_completion(const ResponseMeta& meta, const std::vector<ChoiceOut>& choices,
                               const std::optional<Usage>& usage);

// Code points in `text` (bytes that do not continue a UTF-8 sequence): OpenAI's text offsets.
size_t utf8_characters(std::string_view text);

// "data: <json>\n\n", the JSON on one line with invalid UTF-8 replaced by U+FFFD.
std::string sse_event(const nlohmann::json& event);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
// The JSON text of a response body (invalid UTF-8 replaced, as in sse_event).
std::string dump_json(const nlohmann::json& value);

}  // namespace ember::server
