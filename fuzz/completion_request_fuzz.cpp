// libFuzzer target: arbitrary request bodies through the server's parsing of POST
// /v1/chat/completions, /v1/completions, and llama.cpp's /completion and /infill (the body's
// JSON, every field's type and range, tools and their grammar in every family's syntax, structured
// output compiled). Never a crash or hang, and a bad body is a client error: ApiError with a 4xx
// status, or Error(kInvalidArgument) (a 400); anything else would answer a bad request with a 500.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/http_types.h"
#include "server/server_state.h"
#include "server/tool_call_request.h"
#include "tool_calls/tool_format.h"

namespace {

using ember::server::Endpoint;

using ember::tool_calls::kAllToolFormats;
using ember::tool_calls::ToolFormat;

constexpr int32_t kVocab = 1000;

// The fields the parsers read (completion_request.cpp, tool_call_request.cpp): an input that is a
// JSON value is also tried as the value of some of them in an otherwise valid body, so the fuzzer
// reaches every field's checks without having to write a whole request first.
constexpr const char* kFields[] = {"messages",
                                   "prompt",
                                   "model",
                                   "max_tokens",
                                   "max_completion_tokens",
                                   "n",
                                   "stream",
                                   "stream_options",
                                   "stop",
                                   "seed",
                                   "temperature",
                                   "top_k",
                                   "top_p",
                                   "min_p",
                                   "typical_p",
                                   "logit_bias",
                                   "logprobs",
                                   "top_logprobs",
                                   "echo",
                                   "presence_penalty",
                                   "frequency_penalty",
                                   "repeat_penalty",
                                   "repeat_last_n",
                                   "mirostat",
                                   "mirostat_tau",
                                   "mirostat_eta",
                                   "dynatemp_range",
                                   "dynatemp_exponent",
                                   "xtc_probability",
                                   "xtc_threshold",
                                   "top_n_sigma",
                                   "dry_multiplier",
                                   "dry_base",
                                   "dry_allowed_length",
                                   "dry_penalty_last_n",
                                   "dry_sequence_breakers",
                                   "ignore_eos",
                                   "response_format",
                                   "json_schema",
                                   "grammar",
                                   "regex",
                                   "speculative",
                                   "speculative.n_max",
                                   "speculative.n_min",
                                   "speculative.p_min",
                                   "tools",
                                   "tool_choice",
                                   "parallel_tool_calls",
                                   "user",
                                   "suffix",
                                   "best_of",
                                   "n_predict",
                                   "samplers",
                                   "n_probs",
                                   "n_cmpl",
                                   "post_sampling_probs",
                                   "return_tokens",
                                   "response_fields",
                                   "t_max_predict_ms",
                                   "n_indent",
                                   "input_prefix",
                                   "input_suffix",
                                   "input_extra"};

constexpr Endpoint kEndpoints[] = {Endpoint::kChatCompletions, Endpoint::kCompletions, Endpoint::kNativeCompletion,
                                   Endpoint::kInfill};

void parse(const std::string& body, Endpoint endpoint) {
  try {
    ember::server::HttpRequest request;
    request.method = "POST";
    request.body = body;
    const nlohmann::json json = ember::server::parse_body(request);
    const ember::server::CompletionRequest r = ember::server::parse_completion_request(json, endpoint, kVocab, body);
    // The tools' grammar in each family's syntax, as the route builds it for the model's template.
    if (r.tools.calls_allowed()) {
      for (const ToolFormat format : kAllToolFormats) (void)ember::server::tool_call_constraint(r.tools, format);
    }
  } catch (const ember::server::ApiError& e) {
    if (e.status() < 400 || e.status() >= 500) {
      std::fprintf(stderr, "status %d for a bad body: %s\n", e.status(), e.what());
      std::abort();
    }
  } catch (const ember::Error& e) {
    if (e.code() != ember::ErrorCode::kInvalidArgument) {
      std::fprintf(stderr, "Error %s for a bad body: %s\n", std::string(ember::error_code_name(e.code())).c_str(),
                   e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception (a 500) for a bad body: %s\n", e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (const Endpoint endpoint : kEndpoints) parse(body, endpoint);
  if (body.size() > 4096) return 0;
  const nlohmann::json value = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return 0;
  // Three fields picked by the input's bytes, each set to the value in a minimal valid request.
  size_t hash = size;
  for (size_t i = 0; i < size; ++i) hash = hash * 131 + data[i];
  for (int pick = 0; pick < 3; ++pick, hash /= std::size(kFields)) {
    nlohmann::json request = {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                              {"prompt", "x"},
                              {"input_prefix", "a"},
                              {"input_suffix", "b"}};
    request[kFields[hash % std::size(kFields)]] = value;
    const std::string text = request.dump();
    for (const Endpoint endpoint : kEndpoints) parse(text, endpoint);
  }
  return 0;
}
