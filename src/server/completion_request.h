// The body of POST /v1/chat/completions and POST /v1/completions, checked field by field: a wrong
// type or an out-of-range value is an ApiError (400) naming the field; unknown fields are ignored;
// null counts as absent (clients send it for unset fields). A structured-output constraint is
// compiled here, so that a schema or grammar the engine cannot take is a 400 naming its field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/sampling.h"
#include "server/tool_call_request.h"
#include "tokenizer/fill_in_middle.h"

namespace ember::server {

// OpenAI's two, and llama.cpp's own /completion and /infill (their answer has llama.cpp's shape).
enum class Endpoint { kChatCompletions, kCompletions, kNativeCompletion, kInfill };

struct RequestMessage {
  std::string role;     // system, developer, user, assistant or tool
  std::string content;  // a string, or the text parts of a content-part array joined
  // An assistant turn with tool calls may have no content: the template then sees null.
  bool has_content = true;
  // assistant: its tool_calls, arguments parsed into objects (tool_call_request.h); null: none.
  nlohmann::ordered_json tool_calls = nullptr;
  std::string tool_call_id = {};  // tool: the call it answers (may be empty)
};

// One prompt of /v1/completions: its text, or its token ids (then text is empty).
struct PromptInput {
  std::string text;
  std::vector<int32_t> tokens;
};

// llama.cpp's /completion and /infill fields that OpenAI's endpoints do not have.
struct NativeOptions {
  bool return_tokens = false;  // the generated ids in the answer's "tokens" (streamed chunks carry theirs anyway)
  // Fields of the answer to keep (all when empty); "timings/prompt_n" names a nested one, which
  // the answer then carries at the top under that name (llama.cpp's response_fields).
  std::vector<std::string> response_fields;
  // Code completion (llama.vim, llama.vscode): a line that ends after this long generating ends
  // the answer (0: no limit) ...
  double t_max_predict_ms = 0;
  // ... as does a line indented less than n_indent columns, cut before its first character.
  int32_t n_indent = 0;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;                     // as sent; empty when absent
  std::vector<RequestMessage> messages;  // chat: at least one
  // Completions: one or more prompts (a string, an array of strings, token ids or arrays of token
  // ids); each gets n choices, indexed prompt * n + choice as OpenAI does.
  std::vector<PromptInput> prompts;
  // max_tokens or max_completion_tokens; -1: up to the context. Completions may ask for 0 (with
  // echo and logprobs: the prompt scored, nothing generated).
  int32_t max_tokens = -1;
  int32_t n = 1;  // choices to return (per prompt)
  // Completions: candidates to generate per prompt (>= n); the n with the highest mean token
  // logprob are returned, best first. n when absent; above n not with stream.
  int32_t best_of = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // -1: no logprobs; otherwise the number of alternatives per token (chat: top_logprobs when
  // logprobs is true; completions: the logprobs integer; llama.cpp's: n_probs above 0, else the
  // logprobs integer).
  int32_t logprobs = -1;
  // Completions: the prompt is part of the text; with logprobs, its tokens' logprobs come first
  // (the first token's null: nothing precedes it).
  bool echo = false;
  // Completions: the text after the gap to fill (fill-in-the-middle, for code models with its
  // tokens); the prompt is the text before it. Not with echo or token-id prompts.
  std::optional<std::string> suffix;
  NativeOptions native;  // kNativeCompletion, kInfill
  // kInfill: input_prefix, input_suffix and input_extra; prompts[0].text is llama.cpp's `prompt`,
  // the start of the middle (may be empty).
  std::string infill_prefix, infill_suffix;
  std::vector<InfillFile> infill_extra;
  std::vector<std::string> stop;  // non-empty strings
  std::optional<uint64_t> seed;   // absent (or -1 in the body): the server picks one
  bool ignore_eos = false;        // extension
  std::string user;               // kept for logs only
  // The engine's defaults (llama.cpp's) where the body is silent. top_p / typical_p 0 become the
  // smallest positive float (the best token only); top_k <= 0 is 0 (off); `samplers` orders the
  // steps. Not parsed: llama.cpp's `min_keep`.
  SamplingParams sampling;
  // Structured output (docs/server.md, "Structured output"): from response_format (json_object,
  // json_schema), or the extensions json_schema (llama.cpp's), grammar (GBNF) or regex; at most one.
  OutputConstraint constraint;
  // Chat: tools, tool_choice and parallel_tool_calls (docs/server.md, "Tool calling"). Their
  // grammar depends on the chat template, so the route builds it (tool_call_constraint).
  ToolRequest tools;
  // Speculative decoding, overriding the server's flags where given: "speculative": {"draft_max",
  // "draft_min", "ngram_max", "p_min"} or false (off); llama.cpp's "speculative.n_max" / "n_min" /
  // "p_min".
  std::optional<int32_t> draft_max, draft_min, ngram_max;
  std::optional<float> p_min;
  std::string draft_max_param = "speculative.draft_max";  // as the body named them, for errors
  std::string draft_min_param = "speculative.draft_min";
};

// Parses `body`. n_vocab bounds logit_bias keys and prompt token ids. `body_text`, the body as
// sent, gives JSON Schemas their keys in the client's order (`body` sorts them, and a schema's
// properties are generated in its order); empty: the order of `body`. Throws ApiError.
CompletionRequest parse_completion_request(const nlohmann::json& body, Endpoint endpoint, int32_t n_vocab,
                                           std::string_view body_text = {});

// Limits a request may ask for.
inline constexpr int32_t kMaxChoices = 128;         // n (OpenAI's limit)
inline constexpr size_t kMaxPrompts = 2048;         // prompts in one completions request (OpenAI's limit)
inline constexpr int32_t kMaxStopStrings = 16;      // OpenAI allows 4; llama.cpp any number
inline constexpr int32_t kMaxTopLogprobs = 20;      // OpenAI's for chat (legacy completions: 5; we take 20)
inline constexpr size_t kMaxSchemaNameLength = 64;  // response_format.json_schema.name (OpenAI's limit)

}  // namespace ember::server
