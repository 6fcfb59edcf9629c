// libFuzzer target: arbitrary request bodies through the server's parsing of POST
// /v1/chat/completions and /v1/completions (the body's JSON, every field's type and range, tools,
// structured output compiled). Never a crash or hang, and a bad body is a client error: ApiError
// with a 4xx status, or Error(kInvalidArgument) (a 400); anything else would answer a bad request
// with a 500.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/http_types.h"
#include "server/server_state.h"

namespace {

using ember::server::Endpoint;

constexpr int32_t kVocab = 1000;

void parse(const std::string& body, Endpoint endpoint) {
  try {
    ember::server::HttpRequest request;
    request.method = "POST";
    request.body = body;
    const nlohmann::json json = ember::server::parse_body(request);
    (void)ember::server::parse_completion_request(json, endpoint, kVocab, body);
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
  parse(body, Endpoint::kChatCompletions);
  parse(body, Endpoint::kCompletions);
  return 0;
}
