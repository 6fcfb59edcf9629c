// ApiServer: routes, auth, CORS, error objects, /health, /v1/models, /metrics, loading and draining.
#include "server/api_server.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "api/llm_impl.h"
#include "core/check.h"
#include "core/log.h"
#include "core/strings.h"
#include "server/completion_response.h"
#include "server/ordered_body.h"
#include "server/server_state.h"
#include "server/ui_assets.h"

namespace ember::server {

using nlohmann::json;

// --- helpers shared by the route files (server_state.h) ---

namespace {

// Compares in time that depends on the key's length only, not on where the strings differ.
bool constant_time_equal(std::string_view given, std::string_view key) {
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (size_t i = 0; i < key.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned>(static_cast<uint8_t>(g) ^ static_cast<uint8_t>(key[i]));
  }
  return diff == 0;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

}  // namespace

json parse_body(const HttpRequest& request) {
  if (json_depth(request.body, kMaxJsonDepth) > kMaxJsonDepth) {
    invalid_request("", fmt::format("the JSON body nests deeper than {} levels", kMaxJsonDepth));
  }
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    // Parse again for the message with the position (rare: only bad requests pay).
    try {
      const json again = json::parse(request.body);
    } catch (const json::exception& e) {
      // parse_error, or out_of_range for a number past a double's range (1e309).
      invalid_request("", fmt::format("the body is not valid JSON: {}", e.what()));
    }
    invalid_request("", "the body is not valid JSON");
  }
  if (!body.is_object()) invalid_request("", "the body must be a JSON object");
  return body;
}

HttpReply json_reply(int status, const json& body) {
  HttpReply reply;
  reply.status = status;
  reply.body = dump_json(body);
  return reply;
}

HttpReply error_reply(const ApiError& error) { return json_reply(error.status(), error.to_json()); }

HttpReply overloaded_reply(const std::string& message) {
  HttpReply reply = error_reply(ApiError(503, "server_error", "", message));
  reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

std::string random_id(std::string_view prefix) {
  return fmt::format("{}{:016x}{:08x}", prefix, rng()(), static_cast<uint32_t>(rng()()));
}

uint64_t random_seed() { return rng()(); }

std::string token_piece(const ServerState& state, int32_t id) {
  std::string out;
  state.tokenizer->append_piece(id, /*render_special=*/false, out);
  return out;
}

// --- ApiServer ---

ApiServer::ApiServer(const ServerOptions& options) : state_(std::make_unique<ServerState>()) {
  state_->options = options;
}

ApiServer::~ApiServer() {
  if (state_->engine) state_->engine->stop(true);
}

void ApiServer::load() {
  ServerState& s = *state_;
  const ServerOptions& o = s.options;
  LoadOptions load;
  load.threads = o.threads;
  load.context = o.ctx_size;
  load.kv_type = o.kv_type;
  load.chat_template = o.chat_template;
  load.batch_invariant = o.batch_invariant;
  load.gpu_layers = o.gpu_layers;
  load.repack_output = o.parallel > 1;  // every running sequence wants a logits row per step
  s.llm = Llm::load(o.model_path, load);
  s.model = LlmAccess::impl(*s.llm).model.get();
  s.tokenizer = &*LlmAccess::impl(*s.llm).tokenizer;
  s.model_name = o.alias.empty() ? std::filesystem::path(o.model_path).filename().string() : o.alias;
  s.pooling = o.pooling;
  if (!o.pooling_set) {
    // llama.cpp's key: 1 mean, 2 cls, 3 last (0 none, which we serve as mean).
    const std::string key = s.llm->info().architecture + ".pooling_type";
    int64_t type = 0;
    if (const GgufValue* v = s.model->file().find(key); v != nullptr && v->to_int64(&type)) {
      s.pooling = type == 2 ? Pooling::kCls : type == 3 ? Pooling::kLast : Pooling::kMean;
    }
  }
  if (!o.draft_model_path.empty()) {
    // On the model's backend (its threads): the engine's thread runs both, one after the other.
    ModelOptions draft;
    draft.max_step_tokens = s.model->options().max_step_tokens;
    draft.context_size = s.llm->info().context;
    s.draft_model = Model::load(o.draft_model_path, *LlmAccess::impl(*s.llm).backend, draft);
    check_draft_vocabulary(*s.model, *s.draft_model);
  }
  EngineOptions engine;
  engine.draft_model = s.draft_model.get();
  engine.context = s.llm->info().context;
  engine.max_running = o.parallel;
  engine.kv_tokens = o.kv_tokens;
  engine.max_waiting = o.max_queue;
  engine.prefix_cache = o.prefix_cache;
  engine.kv_type = LlmAccess::impl(*s.llm).kv_type;
  s.engine = std::make_unique<Engine>(*s.model, *s.tokenizer, engine);
  s.engine->start();
  s.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  s.ready.store(true);
}

void ApiServer::drain(std::chrono::milliseconds timeout, const std::atomic<bool>* hurry) {
  state_->draining.store(true);
  if (!state_->engine) return;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool idle = false;
  while (!idle && std::chrono::steady_clock::now() < deadline && (hurry == nullptr || !hurry->load())) {
    idle = state_->engine->wait_idle(std::chrono::milliseconds(100)) && state_->in_flight.load() == 0;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!idle) EMBER_LOG_INFO("shutdown: cancelling the requests still running");
  state_->engine->stop(true);
}

const std::string& ApiServer::model_name() const { return state_->model_name; }
int32_t ApiServer::context() const { return state_->engine ? state_->engine->options().context : 0; }
const KvCache& ApiServer::kv_cache() const {
  EMBER_CHECK(state_->engine != nullptr);
  return state_->engine->kv();
}
const Model& ApiServer::model() const {
  EMBER_CHECK(state_->llm != nullptr);
  return *LlmAccess::impl(*state_->llm).model;
}

namespace {

// Counts a request in ServerState::in_flight while it lives (held by a stream's callbacks).
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& count) : count_(count) { ++count_; }
  ~InFlight() { --count_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int64_t>& count_;
};

}  // namespace

HttpReply ApiServer::handle(const HttpRequest& request) {
  ServerState& s = *state_;
  const auto in_flight = std::make_shared<InFlight>(s.in_flight);
  HttpReply reply;
  try {
    reply = route(request);
  } catch (const ApiError& e) {
    reply = error_reply(e);
  } catch (const Error& e) {
    const bool bad_input = e.code() == ErrorCode::kInvalidArgument;
    reply = error_reply(
        ApiError(bad_input ? 400 : 500, bad_input ? "invalid_request_error" : "server_error", "", e.what()));
  } catch (const std::exception& e) {
    reply = error_reply(ApiError(500, "server_error", "", e.what()));
  }
  if (!s.options.cors_origin.empty()) {
    reply.headers.emplace_back("Access-Control-Allow-Origin", s.options.cors_origin);
    reply.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
    reply.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    if (s.options.cors_origin != "*") reply.headers.emplace_back("Vary", "Origin");
  }
  s.metrics.requests.add(std::to_string(reply.status));
  if (reply.stream) {  // in flight until the stream is over (or never ran)
    reply.stream = [in_flight, stream = std::move(reply.stream)](Sink& sink) { stream(sink); };
    reply.on_abort = [in_flight, abort = std::move(reply.on_abort)] {
      if (abort) abort();
    };
  }
  return reply;
}

namespace {

// llama.cpp's /props, the part that is true of ember (its clients and the chat UI read it): the
// per-sequence context, the sampling defaults where a request is silent, the template and its
// tokens. The model path is the file name only: a network client learns nothing of the disk.
json props(ServerState& s) {
  const SamplingParams d;
  const Llm::Impl& impl = LlmAccess::impl(*s.llm);
  const int32_t n_ctx = s.engine->options().context;
  return {{"default_generation_settings",
           {{"n_ctx", n_ctx},
            {"params",
             {{"temperature", d.temperature},
              {"top_k", d.top_k},
              {"top_p", d.top_p},
              {"min_p", d.min_p},
              {"typical_p", d.typical_p},
              {"repeat_penalty", d.repeat_penalty},
              {"repeat_last_n", d.penalty_last_n},
              {"presence_penalty", d.presence_penalty},
              {"frequency_penalty", d.frequency_penalty},
              {"n_predict", -1},
              {"seed", -1}}}}},
          {"total_slots", s.options.parallel},
          {"model_alias", s.model_name},
          {"model_path", std::filesystem::path(s.options.model_path).filename().string()},
          {"modalities", {{"vision", false}, {"audio", false}}},
          {"chat_template", impl.chat_template.source},
          {"bos_token", impl.chat_template.bos_token},
          {"eos_token", impl.chat_template.eos_token},
          {"endpoint_metrics", true},
          {"build_info", "ember " EMBER_VERSION_STRING}};
}

}  // namespace

namespace {

// The page's policy: its own scripts and styles only, no inline code, and Trusted Types with no
// policy, so any HTML-string sink (innerHTML, ...) throws — model text can only ever become text.
constexpr const char* kUiPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

// Whether If-None-Match (`*`, or a comma-separated list of entity tags) names `etag`, by weak
// comparison (RFC 9110 §13.1.2: the opaque parts equal, W/ ignored).
bool etag_matches(std::string_view header, std::string_view etag) {
  const auto opaque = [](std::string_view tag) {
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    return tag;
  };
  const std::string_view want = opaque(etag);
  while (!header.empty()) {
    const size_t comma = header.find(',');
    const std::string_view tag = opaque(header.substr(0, comma));
    if (tag == "*" || tag == want) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

// An embedded file: revalidated on every load (a new binary's UI shows at once), 304 when the
// browser's copy is current.
HttpReply ui_reply(const UiAsset& asset, const HttpRequest& request) {
  HttpReply reply;
  reply.headers = {{"ETag", asset.etag},
                   {"Cache-Control", "no-cache"},
                   {"Vary", "Accept-Encoding"},
                   {"X-Content-Type-Options", "nosniff"},
                   {"Referrer-Policy", "no-referrer"}};
  if (std::string_view(asset.content_type).starts_with("text/html")) {
    reply.headers.emplace_back("Content-Security-Policy", kUiPolicy);
  }
  if (etag_matches(request.header("If-None-Match"), asset.etag)) {
    reply.status = 304;
    reply.content_type.clear();
    return reply;
  }
  reply.content_type = asset.content_type;
  reply.body = std::string(asset.bytes());
  return reply;
}

}  // namespace

HttpReply ApiServer::route(const HttpRequest& request) {
  ServerState& s = *state_;
  const std::string& path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (request.method == "OPTIONS") {  // CORS preflight: no auth, no body
    HttpReply reply;
    reply.status = 204;
    return reply;
  }
  if (path == "/health" && get) {
    if (s.draining.load()) return error_reply(ApiError(503, "server_error", "", "shutting down"));
    if (!s.ready.load()) return error_reply(ApiError(503, "server_error", "", "Loading model"));
    return json_reply(200, {{"status", "ok"}});
  }
  // The chat UI's files need no key (they hold no secret; the page asks for the key and sends it
  // with its API calls) and are served while the model loads.
  if (get && !s.options.no_ui) {
    if (const UiAsset* asset = find_ui_asset(path)) return ui_reply(*asset, request);
  }
  if (!s.options.api_key.empty()) {
    const std::string auth = request.header("Authorization");
    // The scheme is case-insensitive (RFC 9110 §11.1), the key is not.
    constexpr std::string_view kBearer = "bearer ";
    const bool bearer = iequals(std::string_view(auth).substr(0, kBearer.size()), kBearer);
    // One or more spaces after the scheme (RFC 9110 §11.4: 1*SP).
    const size_t key_at = bearer ? auth.find_first_not_of(' ', kBearer.size()) : std::string::npos;
    const bool ok =
        key_at != std::string::npos && constant_time_equal(std::string_view(auth).substr(key_at), s.options.api_key);
    if (!ok) {
      throw ApiError(401, "invalid_request_error", "",
                     "Incorrect or missing API key: send it as the header 'Authorization: Bearer <key>'.",
                     "invalid_api_key");
    }
  }
  if (s.draining.load()) return overloaded_reply("The server is shutting down.");
  if (!s.ready.load()) return overloaded_reply("The model is loading.");

  if (post && path == "/v1/chat/completions") return handle_completion(s, request, true);
  if (post && path == "/v1/completions") return handle_completion(s, request, false);
  if (post && (path == "/completion" || path == "/completions")) return handle_native_completion(s, request, false);
  if (post && path == "/infill") return handle_native_completion(s, request, true);
  if (post && path == "/v1/embeddings") return handle_embeddings(s, request);
  if (post && path == "/tokenize") return handle_tokenize(s, request);
  if (post && path == "/detokenize") return handle_detokenize(s, request);
  if (post && path == "/apply-template") return handle_apply_template(s, request);
  if (get && (path == "/v1/models" || path.starts_with("/v1/models/"))) {
    const ModelInfo& info = s.llm->info();
    const json model = {{"id", s.model_name},
                        {"object", "model"},
                        {"created", s.created},
                        {"owned_by", "ember"},
                        {"meta",
                         {{"architecture", info.architecture},
                          {"type", info.type},
                          {"parameters", info.parameters},
                          {"n_vocab", info.n_vocab},
                          {"n_ctx", s.engine->options().context},
                          {"n_ctx_train", info.trained_context}}}};
    if (path == "/v1/models") return json_reply(200, {{"object", "list"}, {"data", json::array({model})}});
    if (path.substr(std::string_view("/v1/models/").size()) == s.model_name) return json_reply(200, model);
    throw ApiError(404, "invalid_request_error", "model",
                   fmt::format("The model '{}' does not exist.", path.substr(std::string_view("/v1/models/").size())),
                   "model_not_found");
  }
  if (get && path == "/props") return json_reply(200, props(s));
  if (get && path == "/tokenizer_info") return handle_tokenizer_info(s);
  if (get && path == "/metrics") {
    const EngineStats e = s.engine->stats();
    ServerMetrics& m = s.metrics;
    {
      // The engine counts; the metrics' counters catch up to it, one scrape at a time, and only
      // ever grow (a scrape holding an older snapshot adds nothing).
      const std::lock_guard lock(s.metrics_sync);
      const auto catch_up = [](Counter& counter, double total) { counter.add(std::max(0.0, total - counter.value())); };
      catch_up(m.prompt_tokens, static_cast<double>(e.prompt_tokens));
      catch_up(m.prompt_tokens_cached, static_cast<double>(e.prefix_hit_tokens));
      catch_up(m.generated_tokens, static_cast<double>(e.generated_tokens));
      catch_up(m.draft_tokens, static_cast<double>(e.draft_tokens));
      catch_up(m.draft_tokens_accepted, static_cast<double>(e.accepted_tokens));
      catch_up(m.prefill_seconds, e.prefill_seconds);
      catch_up(m.decode_seconds, e.decode_seconds);
    }
    MetricsGauges gauges;
    gauges.queue_depth = e.waiting;
    gauges.running_sequences = e.running;
    gauges.kv_blocks_used = e.kv_blocks_used;
    gauges.kv_blocks_cached = e.kv_blocks_cached;
    gauges.kv_blocks_total = e.kv_blocks_total;
    gauges.preemptions = e.preemptions;
    gauges.drafted_at = e.drafted_at;
    gauges.accepted_at = e.accepted_at;
    HttpReply reply;
    reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.body = m.render(gauges);
    return reply;
  }
  // A route asked with another method: 405 with the methods it takes (Allow, RFC 9110 §15.5.6).
  struct Route {
    std::string_view path, allow;
  };
  static constexpr Route kRoutes[] = {{"/v1/chat/completions", "POST"},
                                      {"/v1/completions", "POST"},
                                      {"/completion", "POST"},
                                      {"/completions", "POST"},
                                      {"/infill", "POST"},
                                      {"/v1/embeddings", "POST"},
                                      {"/tokenize", "POST"},
                                      {"/detokenize", "POST"},
                                      {"/apply-template", "POST"},
                                      {"/v1/models", "GET, HEAD"},
                                      {"/metrics", "GET, HEAD"},
                                      {"/props", "GET, HEAD"},
                                      {"/health", "GET, HEAD"},
                                      {"/tokenizer_info", "GET, HEAD"}};
  for (const Route& route : kRoutes) {
    if (path == route.path) {
      HttpReply reply = error_reply(
          ApiError(405, "invalid_request_error", "", fmt::format("{} does not take {}", path, request.method)));
      reply.headers.emplace_back("Allow", std::string(route.allow));
      return reply;
    }
  }
  throw ApiError(404, "invalid_request_error", "", fmt::format("no route {} {}", request.method, path));
}

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

}  // namespace ember::server
