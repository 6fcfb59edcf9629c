// HttpServer: cpp-httplib (Debian's libcpp-httplib, a shared library: compiled with its pkg-config
// flags) adapted to ApiServer's HttpRequest / HttpReply.
#include "server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <httplib.h>

#include "core/check.h"
#include "core/log.h"
#include "core/strings.h"
#include "server/api_error.h"
#include "server/completion_response.h"

namespace ember::server {
namespace {

constexpr size_t kMaxHttpThreads = 1024;

class DataSinkAdapter : public Sink {
 public:
  explicit DataSinkAdapter(httplib::DataSink& sink) : sink_(sink) {}
  bool write(std::string_view data) override {
    // A zero-length write would end the chunked stream: never send one.
    return data.empty() || sink_.write(data.data(), data.size());
  }

 private:
  httplib::DataSink& sink_;
};

HttpRequest to_request(const httplib::Request& req, std::string body) {
  HttpRequest out;
  out.method = req.method;
  out.path = req.path;
  out.body = std::move(body);
  for (const auto& [key, value] : req.headers) out.headers.emplace_back(key, value);
  return out;
}

void apply(HttpReply reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [key, value] : reply.headers) res.set_header(key, value);
  if (!reply.stream) {
    // No content type and no body (a 304): no Content-Type header either.
    if (!reply.body.empty() || !reply.content_type.empty()) res.set_content(std::move(reply.body), reply.content_type);
    return;
  }
  auto stream = std::make_shared<std::function<void(Sink&)>>(std::move(reply.stream));
  auto on_abort = std::move(reply.on_abort);
  res.set_chunked_content_provider(
      reply.content_type,
      [stream](size_t, httplib::DataSink& sink) {
        DataSinkAdapter adapter(sink);
        try {
          (*stream)(adapter);
        } catch (const std::exception& e) {
          // Nothing may escape into httplib's connection thread; the client sees the stream cut.
          EMBER_LOG_ERROR("a stream failed: {}", e.what());
          return false;
        }
        sink.done();
        return true;
      },
      [on_abort](bool success) {
        if (!success && on_abort) on_abort();  // the connection ended first: stop generating
      });
}

// Answers `error` and ends the connection after it. httplib 0.11 keeps a connection by the
// request's Connection header alone (a reply's "Connection: close" does not end it), so where the
// request's framing is unknown its remaining bytes would be read as the next request (request
// smuggling behind a proxy). A content provider that fails once the body is out does end it.
void reply_and_close(httplib::Response& res, const ApiError& error) {
  res.status = error.status();
  res.set_header("Connection", "close");
  auto body = std::make_shared<std::string>(dump_json(error.to_json()));
  res.set_content_provider(body->size(), "application/json",
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             // (Ranges are cleared before this is made; never read past the body.)
                             if (offset < body->size()) {
                               sink.write(body->data() + offset, std::min(length, body->size() - offset));
                             }
                             return false;  // the body is out: close
                           });
}

// Range is ignored (RFC 9110 §14.2 allows it): httplib would cut any 200 to the ranges asked, API
// answers included (still status 200, as if whole), build a multipart body of thousands of ranges
// in memory, and apply them to content providers that trust their offsets. Called first in the
// pre-routing and error handlers, before httplib applies ranges; the request object is httplib's
// own per-connection local, not const, so clearing it is sound. (A Range httplib cannot parse is
// still a 416: it answers before any handler runs.)
void ignore_ranges(const httplib::Request& req, httplib::Response& res) {
  const_cast<httplib::Request&>(req).ranges.clear();
  res.set_header("Accept-Ranges", "none");  // httplib advertises "bytes" otherwise
}

// The request's framing (RFC 9112 §6), checked before httplib reads a body: a bad one is answered
// and the connection closed. Returns the error, or nothing when the framing is sound.
std::optional<ApiError> framing_error(const httplib::Request& req) {
  const auto bad = [](std::string message) { return ApiError(400, "invalid_request_error", "", std::move(message)); };
  const size_t lengths = req.get_header_value_count("Content-Length");
  const bool chunked = req.has_header("Transfer-Encoding");
  // Two Transfer-Encoding lines are one list ("chunked, gzip"), which must end in chunked, and
  // httplib reads only the first line: any second one is refused, as any list is.
  if (chunked && (req.get_header_value_count("Transfer-Encoding") > 1 ||
                  !iequals(req.get_header_value("Transfer-Encoding"), "chunked"))) {
    return bad("The request's Transfer-Encoding must be chunked, once.");
  }
  if (chunked && lengths > 0) return bad("The request has both Transfer-Encoding and Content-Length.");
  if (lengths > 1) return bad("The request has more than one Content-Length.");
  uint64_t length = 0;
  if (lengths == 1) {
    const std::string text = req.get_header_value("Content-Length");
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return bad("The request's Content-Length is not a whole number.");
    }
  }
  const bool takes_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (!takes_body && (chunked || length > 0)) return bad(fmt::format("A {} request takes no body.", req.method));
  return std::nullopt;
}

std::string status_message(int status) {
  switch (status) {
    case 400: return "The request could not be read.";
    case 404: return "Not found.";
    case 413: return "The request body is too large.";
    case 414: return "The request URI is too long.";
    default: return fmt::format("HTTP status {}.", status);
  }
}

}  // namespace

struct HttpServer::Impl {
  // httplib listens with a backlog of 5; 64 clients connecting at once would see resets. (A member
  // type, not one of the anonymous namespace: Impl has linkage.)
  class BackloggedServer : public httplib::Server {
   public:
    void raise_backlog(int n) { ::listen(svr_sock_, n); }
  };

  Impl(ApiServer& a, const ServerOptions& o) : api(a), options(o) {}
  ApiServer& api;
  ServerOptions options;
  BackloggedServer server;
};

HttpServer::HttpServer(ApiServer& api, const ServerOptions& options) : impl_(std::make_unique<Impl>(api, options)) {
  Impl::BackloggedServer& svr = impl_->server;
  ApiServer* server_api = &api;
  const size_t max_body = options.max_body;
  // Each stream holds a thread for its whole life: enough for every running and queued request,
  // within reason (threads are created up front).
  const size_t threads =
      options.http_threads > 0
          ? static_cast<size_t>(options.http_threads)
          : std::min<size_t>(static_cast<size_t>(options.parallel) + static_cast<size_t>(options.max_queue) + 8,
                             kMaxHttpThreads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_tcp_nodelay(true);
  svr.set_read_timeout(options.read_timeout_s, 0);
  svr.set_write_timeout(options.read_timeout_s, 0);
  svr.set_keep_alive_timeout(5);
  svr.set_keep_alive_max_count(100);
  // A Content-Length past this makes httplib stop reading (status 413); chunked bodies are capped
  // by the receiver below.
  svr.set_payload_max_length(max_body);

  // Framing first, for every method, before httplib reads anything of a body.
  svr.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    ignore_ranges(req, res);
    if (const std::optional<ApiError> error = framing_error(req)) {
      reply_and_close(res, *error);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  const auto plain = [server_api](const httplib::Request& req, httplib::Response& res) {
    apply(server_api->handle(to_request(req, req.body)), res);
  };
  svr.Get(".*", plain);
  svr.Options(".*", plain);
  svr.Delete(".*", plain);
  const auto with_body = [server_api, max_body](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
    // Without Content-Length or Transfer-Encoding a request has no body (RFC 9112 §6.3); httplib
    // would wait for one until the read timeout.
    if (!req.has_header("Transfer-Encoding") && !req.has_header("Content-Length")) {
      apply(server_api->handle(to_request(req, std::string())), res);
      return;
    }
    // Chunked bodies have no Content-Length for httplib to check: the cap is ours. (A length past
    // it: httplib reads the body away and sets 413, so the connection stays in step.)
    std::string body;
    bool too_large = false;
    const bool complete = reader([&](const char* data, size_t n) {
      if (body.size() + n > max_body) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (!complete || too_large) {
      // Too large (ours, or httplib's check of the Content-Length: it set 413), or cut short: a
      // stalled or vanished client. A partial body is never run, even when it parses, and what is
      // left of it on the connection must not be read as a request: the connection ends.
      const bool large = too_large || res.status == 413;
      reply_and_close(res, ApiError(large ? 413 : 400, "invalid_request_error", "",
                                    large ? fmt::format("The request body is larger than {} bytes.", max_body)
                                          : std::string("The request body ended before its announced length.")));
      return;
    }
    apply(server_api->handle(to_request(req, std::move(body))), res);
  };
  svr.Post(".*", with_body);
  svr.Put(".*", with_body);
  svr.Patch(".*", with_body);
  // Statuses httplib sets itself (400 unreadable, 413, 414, ...) get OpenAI's error object (ours
  // have a body or, from reply_and_close, a content type).
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    ignore_ranges(req, res);  // (a 416 for a Range httplib could not parse: its body whole)
    if (!res.body.empty() || res.has_header("Content-Type")) return;
    const ApiError error(res.status, res.status >= 500 ? "server_error" : "invalid_request_error", "",
                         status_message(res.status));
    res.set_content(dump_json(error.to_json()), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(dump_json(ApiError(500, "server_error", "", message).to_json()), "application/json");
  });
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  Impl::BackloggedServer& svr = impl_->server;
  const ServerOptions& o = impl_->options;
  int port = o.port;
  if (o.port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) fail(ErrorCode::kIo, "cannot listen on {} (any port): not an address of this machine?", o.host);
  } else if (!svr.bind_to_port(o.host, o.port)) {
    fail(ErrorCode::kIo, "cannot listen on {}:{} (in use, or not an address of this machine?)", o.host, o.port);
  }
  svr.raise_backlog(512);
  return port;
}

void HttpServer::listen() { impl_->server.listen_after_bind(); }

bool HttpServer::running() const { return impl_->server.is_running(); }

void HttpServer::stop() { impl_->server.stop(); }

}  // namespace ember::server
