// ServerOptions: everything `ember serve` can be told (docs/server.md lists the flags).
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine_request.h"

namespace ember::server {

struct ServerOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int32_t port = 8080;          // 0: any free port (printed)
  int32_t parallel = 4;         // sequences decoding at once
  int32_t ctx_size = 0;         // tokens per sequence; 0: the model's training context, at most 4096
  int32_t kv_tokens = 0;        // the shared KV pool; 0: ctx_size * parallel
  DType kv_type = DType::kF16;  // --kv-type
  int32_t max_queue = 64;       // requests waiting beyond the running ones; more get 503
  int32_t threads = 0;          // compute threads; 0: every CPU
  std::string api_key;          // empty: no authentication
  std::string alias;            // the model's name in /v1/models and responses; empty: the file's
  std::string cors_origin;      // Access-Control-Allow-Origin; empty: no CORS headers
  std::string chat_template;    // preset, file or Jinja source; empty: the model's
  bool no_ui = false;
  bool prefix_cache = true;
  bool batch_invariant = false;      // --deterministic
  int32_t gpu_layers = 0;            // --device / -ngl (model's ModelOptions::gpu_layers)
  Pooling pooling = Pooling::kMean;  // embeddings, when the model does not say
  bool pooling_set = false;          // --pooling given: it wins over the model's
  size_t max_body = 8u << 20;        // request body bytes
  int32_t http_threads = 0;          // 0: parallel + max_queue + 8 (a stream holds a thread)
  int32_t read_timeout_s = 10;
  double shutdown_timeout_s = 30;  // SIGTERM: running streams get this long to finish
  // Speculative decoding: --model-draft (empty: prompt lookup), and the defaults of a request's
  // "speculative" (--draft-max, 0: off unless a request asks; --draft-min; --spec-ngram).
  std::string draft_model_path;
  GenerateOptions::Speculative speculative;
};

}  // namespace ember::server
