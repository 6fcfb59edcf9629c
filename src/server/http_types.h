// What the routes see of HTTP, without the HTTP library: a request (method, path, headers, body)
// and a reply that is either a whole body or a stream written piece by piece to a Sink. Only
// http_server.cpp knows cpp-httplib; the routes and their tests do not.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of header `name` (case-insensitive), empty when absent.
  std::string header(std::string_view name) const;
};

// Where a streamed reply goes. write() returns false once the client has gone away.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual bool write(std::string_view data) = 0;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Set for a streamed reply (body unused): runs on the connection's thread after the headers
  // went out, writing until it returns. `on_abort` (may be empty) runs when the connection ended
  // before the stream did.
  std::function<void(Sink&)> stream;
  std::function<void()> on_abort;
};

}  // namespace ember::server
