// HttpServer: cpp-httplib carrying the ApiServer's routes — the only code that knows the HTTP
// library (DESIGN.md §9): bodies read with a cap, streamed replies flushed per write, the limits
// and timeouts a server on a network needs.
#pragma once

#include <memory>

#include "server/api_server.h"
#include "server/server_options.h"

namespace ember::server {

class HttpServer {
 public:
  HttpServer(ApiServer& api, const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: any free one) and returns the port. Throws Error(kIo) when the
  // address cannot be bound.
  int bind();
  // Serves until stop(), on the calling thread.
  void listen();
  // Whether listen() has started its loop (stop() before that would be missed).
  bool running() const;
  // Thread-safe: closes the listening socket; listen() returns once the open connections end.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember::server
