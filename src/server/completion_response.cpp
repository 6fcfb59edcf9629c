// OpenAI's response objects for the completion endpoints (see completion_response.h).
#include "server/completion_response.h"

#include <algorithm>
#include <cctype>

namespace ember::server {
namespace {

using nlohmann::json;

// The token's bytes as numbers: OpenAI's "bytes", which keeps a split UTF-8 character exact.
json bytes_json(std::string_view text) {
  json bytes = json::array();
  for (const char c : text) bytes.push_back(static_cast<uint8_t>(c));
  return bytes;
}

// Chat's logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}.
json chat_logprobs(const std::optional<std::vector<TokenOut>>& tokens) {
  if (!tokens) return nullptr;
  json content = json::array();
  for (const TokenOut& t : *tokens) {
    json top = json::array();
    for (const auto& [text, logprob] : t.top) {
      top.push_back({{"token", text}, {"logprob", logprob}, {"bytes", bytes_json(text)}});
    }
    content.push_back(
        {{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes_json(t.text)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

// Completions' logprobs: parallel arrays; top_logprobs a {text: logprob} object holding the chosen
// token too (OpenAI: "up to logprobs + 1"), the better one kept when two tokens share a text;
// text_offset in characters from `offset`.
json text_logprobs(const std::optional<std::vector<TokenOut>>& tokens, size_t offset) {
  if (!tokens) return nullptr;
  json texts = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenOut& t : *tokens) {
    texts.push_back(t.text);
    if (t.text_offset) offset = *t.text_offset;
    offsets.push_back(offset);
    if (t.no_logprob) {
      logprobs.push_back(nullptr);
      tops.push_back(nullptr);
      offset += utf8_characters(t.text);
      continue;
    }
    logprobs.push_back(t.logprob);
    json top = json::object();
    for (const auto& [text, logprob] : t.top) {
      if (!top.contains(text)) top[text] = logprob;  // best first: the first is the better
    }
    if (!top.contains(t.text)) top[t.text] = t.logprob;
    tops.push_back(top);
    offset += utf8_characters(t.text);
  }
  return {{"tokens", texts}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json base(const ResponseMeta& meta, std::string_view object) {
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

}  // namespace

size_t utf8_characters(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
}

json finish_reason_json(std::optional<FinishReason> reason, bool called_tools) {
  if (!reason) return nullptr;
  // A reply cut short keeps "length" (its last call's arguments may be incomplete).
  if (called_tools && (*reason == FinishReason::kEndOfGeneration || *reason == FinishReason::kStopString)) {
    return "tool_calls";
  }
  switch (*reason) {
    case FinishReason::kEndOfGeneration:
    case FinishReason::kStopString: return "stop";
    case FinishReason::kMaxTokens:
    case FinishReason::kMaxTime:
    case FinishReason::kContextFull: return "length";
    case FinishReason::kNone:
    case FinishReason::kCancelled:
    case FinishReason::kError: return nullptr;
  }
  return nullptr;
}

json usage_json(const Usage& usage) {
  json out = {{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
  if (usage.draft_tokens > 0) {
    // OpenAI's names for predicted tokens used and not used.
    out["completion_tokens_details"] = {{"accepted_prediction_tokens", usage.accepted_tokens},
                                        {"rejected_prediction_tokens", usage.draft_tokens - usage.accepted_tokens}};
  }
  return out;
}

json timings_json(const Usage& usage) {
  const double decode_ms = usage.total_ms - usage.first_token_ms;
  return {{"prompt_n", usage.prompt_tokens - usage.cached_tokens},
          {"cache_n", usage.cached_tokens},
          {"predicted_n", usage.completion_tokens},
          {"first_token_ms", usage.first_token_ms},
          {"total_ms", usage.total_ms},
          {"predicted_per_second",
           decode_ms > 0 && usage.completion_tokens > 1 ? (usage.completion_tokens - 1) * 1e3 / decode_ms : 0.0},
          {"draft_n", usage.draft_tokens},
          {"draft_n_accepted", usage.accepted_tokens}};
}

json chat_completion(const ResponseMeta& meta, const std::vector<ChoiceOut>& choices, const Usage& usage) {
  json out = base(meta, "chat.completion");
  json list = json::array();
  for (const ChoiceOut& c : choices) {
    json message = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    if (!c.tool_calls.is_null()) {
      // Only whitespace beside the calls (a newline before the marker): no content.
      if (std::all_of(c.text.begin(), c.text.end(),
                      [](char ch) { return std::isspace(static_cast<unsigned char>(ch)); }))
        message["content"] = nullptr;
      message["tool_calls"] = c.tool_calls;
    }
    list.push_back({{"index", c.index},
                    {"message", message},
                    {"logprobs", chat_logprobs(c.logprobs)},
                    {"finish_reason", finish_reason_json(c.finish, c.called_tools)}});
  }
  out["choices"] = list;
  out["usage"] = usage_json(usage);
  out["timings"] = timings_json(usage);
  return out;
}

json chat_chunk(const ResponseMeta& meta, const ChoiceOut& choice, bool first) {
  json out = base(meta, "chat.completion.chunk");
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (!choice.text.empty() || (!choice.finish && choice.tool_calls.is_null())) delta["content"] = choice.text;
  if (!choice.tool_calls.is_null()) delta["tool_calls"] = choice.tool_calls;
  out["choices"] = json::array({{{"index", choice.index},
                                 {"delta", delta},
                                 {"logprobs", chat_logprobs(choice.logprobs)},
                                 {"finish_reason", finish_reason_json(choice.finish, choice.called_tools)}}});
  if (meta.stream_usage) out["usage"] = nullptr;
  return out;
}

json usage_chunk(const ResponseMeta& meta, bool chat, const Usage& usage) {
  json out = base(meta, chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  out["timings"] = timings_json(usage);
  return out;
}

json text_completion(const ResponseMeta& meta, const std::vector<ChoiceOut>& choices,
                     const std::optional<Usage>& usage) {
  json out = base(meta, "text_completion");
  json list = json::array();
  for (const ChoiceOut& c : choices) {
    list.push_back({{"index", c.index},
                    {"text", c.text},
                    {"logprobs", text_logprobs(c.logprobs, c.offset)},
                    {"finish_reason", finish_reason_json(c.finish)}});
  }
  out["choices"] = list;
  if (usage) {
    out["usage"] = usage_json(*usage);
    out["timings"] = timings_json(*usage);
  } else if (meta.stream_usage) {
    out["usage"] = nullptr;
  }
  return out;
}

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& event) { return "data: " + dump_json(event) + "\n\n"; }

}  // namespace ember::server
