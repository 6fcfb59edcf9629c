// The API-server tests' helpers: requests without HTTP, a Sink that keeps what a stream writes (or
// fails after some writes, as a client that went away), and the SSE events of a stream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "server/http_types.h"
#include "support/test_data.h"

namespace ember::server {

inline const std::string kTiny = (std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny.gguf").string();

// ember-tiny with three of its ordinary tokens named as the fill-in-the-middle ones (and, with
// `repo`, two more as the repository and file separator tokens): the prompts' layout is what these
// tests check, not the model's skill at filling gaps.
inline constexpr int32_t kFimPrefix = 100, kFimSuffix = 101, kFimMiddle = 102, kFimRepo = 103, kFimFileSep = 104;
inline std::filesystem::path tiny_with_fill_in_middle(bool repo = false) {
  const GgufFile in = GgufFile::open(kTiny);
  GgufWriter w;
  for (const GgufKeyValue& kv : in.metadata()) w.add_value(kv.key, kv.value);
  w.add<uint32_t>("tokenizer.ggml.fim_pre_token_id", kFimPrefix);
  w.add<uint32_t>("tokenizer.ggml.fim_suf_token_id", kFimSuffix);
  w.add<uint32_t>("tokenizer.ggml.fim_mid_token_id", kFimMiddle);
  if (repo) {
    w.add<uint32_t>("tokenizer.ggml.fim_rep_token_id", kFimRepo);
    w.add<uint32_t>("tokenizer.ggml.fim_sep_token_id", kFimFileSep);
  }
  for (const GgufTensorInfo& t : in.tensors()) {
    w.add_tensor(t.name, t.dtype, t.shape(), std::span(in.tensor_data(t), t.n_bytes));
  }
  const std::filesystem::path out =
      test::temp_dir(repo ? "server_fim_repo" : "server_fim") / (repo ? "tiny-fim-repo.gguf" : "tiny-fim.gguf");
  w.write_file(out.string());
  return out;
}

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
