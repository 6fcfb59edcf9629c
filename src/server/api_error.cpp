// ApiError's JSON body, OpenAI's error object.
#include "server/api_error.h"

namespace ember::server {

nlohmann::json ApiError::to_json() const {
  return {{"error",
           {{"message", what()},
            {"type", type_},
            {"param", param_.empty() ? nlohmann::json(nullptr) : nlohmann::json(param_)},
            {"code", code_.empty() ? nlohmann::json(nullptr) : nlohmann::json(code_)}}}};
}

void invalid_request(const std::string& param, const std::string& message) {
  throw ApiError(400, "invalid_request_error", param, message);
}

}  // namespace ember::server
