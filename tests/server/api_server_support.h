// The API-server tests' helpers: requests without HTTP, a Sink that keeps what a stream writes (or
// fails after some writes, as a client that went away), and the SSE events of a stream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/http_types.h"

namespace ember::server {

inline const std::string kTiny = (std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf").string();

class StringSink : public Sink {
 public:
  explicit StringSink(size_t fail_after = SIZE_MAX) : fail_after_(fail_after) {}
  bool write(std::string_view data) override {
    if (writes_++ >= fail_after_) return false;
    text += data;
    return true;
  }
  std::string text;

 private:
  size_t fail_after_;
  size_t writes_ = 0;
};

inline HttpRequest post(const std::string& path, const std::string& body, const std::string& key = "secret") {
  HttpRequest r;
  r.method = "POST";
  r.path = path;
  r.body = body;
  if (!key.empty()) r.headers.emplace_back("authorization", "Bearer " + key);
  return r;
}

inline HttpRequest get(const std::string& path, const std::string& key = "secret") {
  HttpRequest r = post(path, "", key);
  r.method = "GET";
  return r;
}

inline nlohmann::json body_of(const HttpReply& reply) { return nlohmann::json::parse(reply.body); }

// The JSON of each "data: " event of an SSE text, up to "[DONE]" (`done` says whether it came).
inline std::vector<nlohmann::json> sse_events(const std::string& text, bool* done = nullptr) {
  std::vector<nlohmann::json> events;
  if (done != nullptr) *done = false;
  size_t pos = 0;
  while ((pos = text.find("data: ", pos)) != std::string::npos) {
    const size_t end = text.find("\n\n", pos);
    const std::string data = text.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") {
      if (done != nullptr) *done = true;
      break;
    }
    events.push_back(nlohmann::json::parse(data));
  }
  return events;
}

}  // namespace ember::server
