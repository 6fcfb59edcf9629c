// The server's errors as OpenAI reports them: an HTTP status and {"error": {"message", "type",
// "param", "code"}}, thrown by request parsing and turned into the response by the routes.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace ember::server {

class ApiError : public std::runtime_error {
 public:
  // `param` names the offending request field ("messages[2].content"), empty when none does.
  // `code` is OpenAI's machine-readable code ("invalid_api_key", "context_length_exceeded"), empty
  // for null.
  ApiError(int status, std::string type, std::string param, const std::string& message, std::string code = {})
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const noexcept { return status_; }
  const std::string& type() const noexcept { return type_; }
  const std::string& param() const noexcept { return param_; }
  const std::string& code() const noexcept { return code_; }

  // {"error": {"message": ..., "type": ..., "param": ... or null, "code": ... or null}}
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::string param_;
  std::string code_;
};

// 400 invalid_request_error naming `param`.
[[noreturn]] void invalid_request(const std::string& param, const std::string& message);

// "a boolean", "a number", "a string", "an array", "an object" or "null": the kind of a request
// value, for "'x' must be ..., not a string" messages (json or ordered_json).
template <class Json>
std::string json_type_name(const Json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

}  // namespace ember::server
