// ApiServer: the OpenAI-compatible API over one model — routing, authentication, CORS, errors and
// the lifecycle (loading, serving, draining) — without HTTP itself (http_server.h carries it).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "server/http_types.h"
#include "server/server_options.h"

namespace ember {
class KvCache;
class Model;
}  // namespace ember

namespace ember::server {

struct ServerState;

class ApiServer {
 public:
  explicit ApiServer(const ServerOptions& options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Loads the model and starts the engine; until it returns, /health answers 503 and the API
  // routes 503 "loading". Throws Error (the file, the options).
  void load();
  // Thread-safe: one HTTP request, whole.
  HttpReply handle(const HttpRequest& request);
  // Stops taking requests (503, /health too), lets the running ones finish for up to `timeout` (or
  // until `*hurry` turns true), cancels what is left, and stops the engine. Streams then end with
  // their finish chunk.
  void drain(std::chrono::milliseconds timeout, const std::atomic<bool>* hurry = nullptr);

  // The served model's name, context and the model itself (valid after load()).
  const std::string& model_name() const;
  int32_t context() const;
  const Model& model() const;
  const KvCache& kv_cache() const;

 private:
  HttpReply route(const HttpRequest& request);
  std::unique_ptr<ServerState> state_;
};

}  // namespace ember::server
