// ServerState: what every route shares — the options, the loaded model, the engine, the metrics,
// and the lifecycle flags — plus the helpers the route files have in common (JSON bodies, replies).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "ember/llm.h"
#include "engine/engine.h"
#include "server/api_error.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "server/server_options.h"

namespace ember {
class Model;
class Tokenizer;
}  // namespace ember

namespace ember::server {

struct ServerState {
  ServerOptions options;
  std::shared_ptr<Llm> llm;
  Model* model = nullptr;
  std::unique_ptr<Model> draft_model;  // --model-draft, on the model's backend
  const Tokenizer* tokenizer = nullptr;
  std::unique_ptr<Engine> engine;
  ServerMetrics metrics;
  std::mutex metrics_sync;  // /metrics scrapes catch the counters up to the engine one at a time
  std::string model_name;   // the alias, else the file name
  Pooling pooling = Pooling::kMean;
  int64_t created = 0;  // Unix seconds of the load
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  // API requests being handled, streams until their last write: the drain waits for them too (an
  // embeddings batch between two windows leaves the engine idle for a moment).
  std::atomic<int64_t> in_flight{0};
};

// The body as a JSON object. Throws ApiError 400: invalid JSON (with the byte offset), too deep,
// not an object.
nlohmann::json parse_body(const HttpRequest& request);
HttpReply json_reply(int status, const nlohmann::json& body);
HttpReply error_reply(const ApiError& error);
// 503 with Retry-After: the queue is full or the server is stopping.
HttpReply overloaded_reply(const std::string& message);
// A random hex id for responses ("chatcmpl-" + 24 hex digits).
std::string random_id(std::string_view prefix);
uint64_t random_seed();
// The text of one token as logprobs report it (its own bytes; control tokens as nothing).
std::string token_piece(const ServerState& state, int32_t id);

HttpReply handle_completion(ServerState& state, const HttpRequest& request, bool chat);
// llama.cpp's /completion (infill false) and /infill.
HttpReply handle_native_completion(ServerState& state, const HttpRequest& request, bool infill);
HttpReply handle_embeddings(ServerState& state, const HttpRequest& request);
HttpReply handle_tokenize(ServerState& state, const HttpRequest& request);
HttpReply handle_detokenize(ServerState& state, const HttpRequest& request);
HttpReply handle_tokenizer_info(ServerState& state);
HttpReply handle_apply_template(ServerState& state, const HttpRequest& request);

}  // namespace ember::server
