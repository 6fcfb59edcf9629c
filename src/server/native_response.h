// The JSON of llama.cpp's own completion endpoints (/completion, /infill): the answer object,
// its per-token probabilities, timings and generation settings, and response_fields' selection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/session.h"
#include "server/completion_request.h"

namespace ember::server {

// llama.cpp's stop_type: "eos" (an end-of-generation token), "word" (a stop string), "limit"
// (n_predict, the context, a time or indentation limit: `limited`), "none" (not finished).
std::string_view native_stop_type(std::optional<FinishReason> finish, bool limited) noexcept;

// One token of completion_probabilities: its id and text (the token's own bytes, which may be part
// of a character; "bytes" has them exactly), logprob, and the best alternatives.
struct NativeTokenProbs {
  int32_t id = 0;
  std::string text;
  float logprob = 0.0f;
  struct Alternative {
    int32_t id = 0;
    std::string text;
    float logprob = 0.0f;
  };
  std::vector<Alternative> top;
};

// {"id", "token", "bytes", "logprob", "top_logprobs": [{"id", "token", "bytes", "logprob"}]}; a
// logprob of -inf is written as the lowest float, as llama.cpp does (JSON has no infinity).
nlohmann::json native_token_probs(const NativeTokenProbs& probs);

// {"cache_n", "prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
// "predicted_ms", "predicted_per_token_ms", "predicted_per_second"} (plus "draft_n",
// "draft_n_accepted" with speculative decoding). prompt_ms runs from the request's arrival to its
// first token; rates over nothing are 0. `predicted`: the tokens the answer shows (fewer than the
// engine made when a limit cut it).
nlohmann::json native_timings(const GenerationStats& stats, int32_t prompt_tokens, int32_t predicted);

// The sampling settings the request ran with (llama.cpp's generation_settings subset).
nlohmann::json native_generation_settings(const CompletionRequest& req, uint64_t seed, int32_t context);

// response_fields: the fields named, each where found ("a/b" is b inside a, kept at the top under
// the name "a/b"); every field when `fields` is empty.
nlohmann::json select_response_fields(const nlohmann::json& reply, const std::vector<std::string>& fields);

}  // namespace ember::server
