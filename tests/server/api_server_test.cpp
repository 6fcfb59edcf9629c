// The API's routes without HTTP (ApiServer::handle) on the bundled ember-tiny: status codes and
// OpenAI's objects for each endpoint, streaming through a Sink, authentication, the error paths,
// and draining. The HTTP layer itself is tested by the Node client and the raw-HTTP corpus.
#include "server/api_server.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api_server_support.h"
#include "ember/error.h"
#include "ember/sampling.h"
#include "gguf/gguf_reader.h"
#include "server/ui_assets.h"
#include "support/test_data.h"

namespace ember::server {
namespace {

using nlohmann::json;

class ApiServerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.model_path = kTiny;
    o.api_key = "secret";
    o.parallel = 4;
    o.threads = 2;
    o.batch_invariant = true;
    server_ = new ApiServer(o);
    server_->load();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ApiServer* server_;
};
ApiServer* ApiServerTest::server_ = nullptr;

TEST_F(ApiServerTest, HealthAndModels) {
  const HttpReply health = server_->handle(get("/health", ""));  // open without the key
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(body_of(health)["status"], "ok");
  const HttpReply models = server_->handle(get("/v1/models"));
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(body_of(models)["data"][0]["id"], "ember-tiny.gguf");
  EXPECT_EQ(body_of(models)["data"][0]["meta"]["n_ctx"], 256);
  const HttpReply one = server_->handle(get("/v1/models/ember-tiny.gguf"));
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(body_of(one)["id"], "ember-tiny.gguf");
  const HttpReply other = server_->handle(get("/v1/models/gpt-4"));
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(body_of(other)["error"]["code"], "model_not_found");
}

TEST_F(ApiServerTest, PropsDescribeTheServedModel) {
  const HttpReply reply = server_->handle(get("/props"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json p = body_of(reply);
  EXPECT_EQ(p["default_generation_settings"]["n_ctx"], 256);
  EXPECT_EQ(p["default_generation_settings"]["params"]["top_k"], SamplingParams{}.top_k);
  EXPECT_FLOAT_EQ(p["default_generation_settings"]["params"]["temperature"].get<float>(), SamplingParams{}.temperature);
  EXPECT_EQ(p["total_slots"], 4);
  EXPECT_EQ(p["model_path"], "ember-tiny.gguf");                                         // never the directory
  EXPECT_NE(p["chat_template"].get<std::string>().find("im_start"), std::string::npos);  // ChatML fallback
  EXPECT_EQ(server_->handle(get("/props", "wrong")).status, 401);
}

TEST_F(ApiServerTest, AuthenticationIsRequiredExceptForHealth) {
  for (const std::string& key : {std::string(), std::string("wrong"), std::string("secre"), std::string("secrets")}) {
    const HttpReply reply = server_->handle(get("/v1/models", key));
    EXPECT_EQ(reply.status, 401) << key;
    EXPECT_EQ(body_of(reply)["error"]["type"], "invalid_request_error");
    EXPECT_EQ(body_of(reply)["error"]["code"], "invalid_api_key");
  }
  HttpRequest basic = get("/v1/models", "");
  basic.headers.emplace_back("Authorization", "Basic c2VjcmV0");
  EXPECT_EQ(server_->handle(basic).status, 401);
  // The scheme's case does not matter, the key's does.
  for (const char* header : {"bearer secret", "BEARER secret", "Bearer  secret", "Bearer SECRET", "Bearersecret",
                             "Bearer secret ", "Bearer "}) {
    HttpRequest r = get("/v1/models", "");
    r.headers.emplace_back("Authorization", header);
    EXPECT_EQ(server_->handle(r).status, std::string(header).ends_with(" secret") ? 200 : 401) << header;
  }
}

TEST_F(ApiServerTest, CompletionIsGreedyAndCountsUsage) {
  const HttpReply reply = server_->handle(
      post("/v1/completions", R"({"prompt": "And it came to pass", "max_tokens": 12, "temperature": 0})"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json b = body_of(reply);
  EXPECT_EQ(b["object"], "text_completion");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(b["usage"]["completion_tokens"], 12);
  EXPECT_FALSE(b["choices"][0]["text"].get<std::string>().empty());
  // The same request again: the same text, and its prompt's full blocks... (5 tokens: none) reused.
  const HttpReply again = server_->handle(
      post("/v1/completions", R"({"prompt": "And it came to pass", "max_tokens": 12, "temperature": 0})"));
  EXPECT_EQ(body_of(again)["choices"][0]["text"], b["choices"][0]["text"]);
}

TEST_F(ApiServerTest, ChatStreamsChunksThenUsageThenDone) {
  HttpReply reply = server_->handle(post(
      "/v1/chat/completions",
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "Who begat whom?"}]}], "max_tokens": 6,
          "stream": true, "stream_options": {"include_usage": true}, "seed": 3})"));
  ASSERT_EQ(reply.status, 200);
  ASSERT_TRUE(reply.stream);
  EXPECT_EQ(reply.content_type, "text/event-stream");
  StringSink sink;
  reply.stream(sink);
  bool done = false;
  const std::vector<json> events = sse_events(sink.text, &done);
  ASSERT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "length");
  const json& usage = events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
}

// The counter `name` in the /metrics text.
double metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
}

TEST_F(ApiServerTest, ADisconnectedStreamCancelsItsRequest) {
  const double before = metric(server_->handle(get("/metrics")).body, "ember_generated_tokens_total");
  HttpReply reply = server_->handle(post(
      "/v1/completions", R"({"prompt": "In the beginning", "max_tokens": 200, "stream": true, "ignore_eos": true})"));
  ASSERT_TRUE(reply.stream);
  StringSink sink(3);  // the client goes away after three writes
  reply.stream(sink);  // returns instead of generating 200 tokens into the void
  for (int i = 0; i < 100; ++i) {
    const std::string metrics = server_->handle(get("/metrics")).body;
    if (metrics.find("\nember_kv_blocks_used 0\n") != std::string::npos &&
        metrics.find("\nember_running_sequences 0\n") != std::string::npos) {
      // Cancelled: far fewer than the 200 tokens asked for were generated.
      EXPECT_LT(metric(metrics, "ember_generated_tokens_total") - before, 100);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "the KV blocks did not come back";
}

TEST_F(ApiServerTest, BadRequestsNameTheField) {
  struct Case {
    std::string path, body, param;
    int status;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "{", "", 400},
      {"/v1/chat/completions", "[1]", "", 400},
      // A number past a double's range: out_of_range from the parser, still the client's 400.
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "x": 1e309})", "", 400},
      {"/v1/chat/completions", std::string(100, '[') + std::string(100, ']'), "", 400},
      {"/v1/chat/completions", R"({"messages": "hi"})", "messages", 400},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})",
       "temperature", 400},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 1000})", "max_tokens", 400},
      {"/v1/completions", R"({"prompt": ")" + std::string(2000, 'a') + " " + std::string(2000, 'b') + R"("})", "prompt",
       400},
      {"/v1/embeddings", R"({"input": ""})", "input", 400},
      {"/v1/embeddings", R"({"input": [[]]})", "input[0]", 400},
      {"/v1/embeddings", R"({"input": "x", "dimensions": 16})", "dimensions", 400},
      {"/detokenize", R"({"tokens": [-1]})", "tokens[0]", 400},
      {"/tokenize", R"({"content": 5})", "content", 400},
      {"/apply-template", R"({"messages": []})", "messages", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": 3})", "speculative", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": {"draft_max": 65}})", "speculative.draft_max", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": {"n": 1}})", "speculative.n", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": {"p_min": 1.5}})", "speculative.p_min", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative.p_min": "high"})", "speculative.p_min", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": {"draft_max": 2, "draft_min": 3}})",
       "speculative.draft_min", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative.n_max": 2, "mirostat": 2})", "speculative.n_max", 400},
      {"/v1/completions", R"({"prompt": "x", "speculative": {"draft_max": 2}, "mirostat": 2})", "speculative.draft_max",
       400},
      {"/v1/completions", R"({"prompt": "x", "speculative.n_max": 2, "speculative.n_min": 3})", "speculative.n_min",
       400},
  };
  for (const Case& c : cases) {
    const HttpReply reply = server_->handle(post(c.path, c.body));
    EXPECT_EQ(reply.status, c.status) << c.path << " " << c.body.substr(0, 80) << " -> " << reply.body;
    const json b = body_of(reply);
    EXPECT_EQ(b["error"]["type"], "invalid_request_error") << reply.body;
    if (c.param.empty()) {
      EXPECT_TRUE(b["error"]["param"].is_null()) << reply.body;
    } else {
      EXPECT_EQ(b["error"]["param"], c.param) << reply.body;
    }
  }
  // A known route with another method: 405 naming the methods it takes.
  const auto allow = [](const HttpReply& r) {
    for (const auto& [k, v] : r.headers) {
      if (k == "Allow") return v;
    }
    return std::string("(none)");
  };
  EXPECT_EQ(server_->handle(get("/v1/chat/completions")).status, 405);
  EXPECT_EQ(allow(server_->handle(get("/v1/chat/completions"))), "POST");
  for (const char* path : {"/health", "/props", "/metrics", "/v1/models"}) {
    const HttpReply r = server_->handle(post(path, "{}"));
    EXPECT_EQ(r.status, 405) << path;
    EXPECT_EQ(allow(r), "GET, HEAD") << path;
  }
  EXPECT_EQ(server_->handle(get("/etc/passwd")).status, 404);
  EXPECT_EQ(server_->handle(get("/../models/ember-tiny.gguf")).status, 404);
}

TEST_F(ApiServerTest, ContextOverflowReportsTheCounts) {
  const HttpReply reply = server_->handle(post("/v1/completions", R"({"prompt": "x", "max_tokens": 300})"));
  ASSERT_EQ(reply.status, 400);
  const std::string message = body_of(reply)["error"]["message"];
  EXPECT_NE(message.find("256"), std::string::npos) << message;
  EXPECT_NE(message.find("300"), std::string::npos) << message;
}

TEST_F(ApiServerTest, EmbeddingsAreUnitVectorsInBothEncodings) {
  const json floats = body_of(server_->handle(post("/v1/embeddings", R"({"input": ["In the beginning", "God"]})")));
  ASSERT_EQ(floats["data"].size(), 2u) << floats.dump();
  const std::vector<float> v = floats["data"][0]["embedding"];
  ASSERT_EQ(v.size(), 384u);
  double norm = 0;
  for (const float x : v) norm += double{x} * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  const json b64 =
      body_of(server_->handle(post("/v1/embeddings", R"({"input": "In the beginning", "encoding_format": "base64"})")));
  const std::string text = b64["data"][0]["embedding"];
  EXPECT_EQ(text.size(), (384 * 4 + 2) / 3 * 4);
  EXPECT_EQ(floats["usage"]["prompt_tokens"].get<int>(), floats["usage"]["total_tokens"].get<int>());
  // More inputs than the queue holds: they go a window at a time, never a 503.
  json many = json::array();
  for (int i = 0; i < 150; ++i) many.push_back(fmt::format("And the {} day", i));
  const HttpReply batch = server_->handle(post("/v1/embeddings", json{{"input", many}}.dump()));
  ASSERT_EQ(batch.status, 200) << batch.body.substr(0, 200);
  EXPECT_EQ(body_of(batch)["data"].size(), 150u);
  EXPECT_EQ(body_of(batch)["data"][149]["index"], 149);
}

// A model with a NaN weight (one value of ember-tiny-draft's layer-0 attn_q): embeddings and
// completions fail with a message that says so, never a vector of zeros or invisible tokens.
TEST(ApiServerNan, EmbeddingsAndCompletionsOfANanModelFail) {
  const std::filesystem::path draft = std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny-draft.gguf";
  std::string bytes = test::read_file(draft);
  {
    const GgufFile f = GgufFile::open(draft.string());
    const GgufTensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(q->dtype, DType::kF16);
    const size_t at = static_cast<size_t>(f.data_offset() + q->offset) + 2 * 70;
    bytes[at] = 0x00;  // f16 0x7E00: NaN
    bytes[at + 1] = 0x7E;
  }
  const std::filesystem::path model = test::temp_dir("server_nan") / "nan.gguf";
  std::ofstream(model, std::ios::binary) << bytes;
  ServerOptions o;
  o.model_path = model.string();
  o.threads = 2;
  ApiServer server(o);
  server.load();
  const HttpReply embedding = server.handle(post("/v1/embeddings", R"({"input": "In the beginning"})", ""));
  EXPECT_EQ(embedding.status, 500) << embedding.body;
  EXPECT_NE(embedding.body.find("hidden states are not finite"), std::string::npos) << embedding.body;
  const HttpReply completion =
      server.handle(post("/v1/completions", R"({"prompt": "And the", "max_tokens": 3, "temperature": 0})", ""));
  EXPECT_EQ(completion.status, 500) << completion.body;
  EXPECT_NE(completion.body.find("NaN or -inf"), std::string::npos) << completion.body;
}

TEST_F(ApiServerTest, TokenizeDetokenizeAndTemplate) {
  const json ids = body_of(server_->handle(post("/tokenize", R"({"content": "And God said"})")));
  ASSERT_FALSE(ids["tokens"].empty());
  const json text = body_of(server_->handle(post("/detokenize", json{{"tokens", ids["tokens"]}}.dump())));
  EXPECT_EQ(text["content"], "And God said");
  const json pieces = body_of(server_->handle(post("/tokenize", R"({"content": "And", "with_pieces": true})")));
  EXPECT_TRUE(pieces["tokens"][0].contains("piece"));
  const json prompt =
      body_of(server_->handle(post("/apply-template", R"({"messages": [{"role": "user", "content": "Hello"}]})")));
  EXPECT_NE(prompt["prompt"].get<std::string>().find("<|im_start|>user\nHello"), std::string::npos);
  EXPECT_TRUE(prompt["prompt"].get<std::string>().ends_with("<|im_start|>assistant\n"));
  // The prompt /v1/chat/completions would render: tools included (ChatML has no tool syntax, so
  // the generic format's instruction names them); no generation prompt when asked.
  const json with_tools = body_of(server_->handle(post("/apply-template", R"({
      "messages": [{"role": "user", "content": "Weather in Paris?"}], "add_generation_prompt": false,
      "tools": [{"type": "function", "function": {"name": "get_weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]})")));
  const std::string rendered = with_tools["prompt"].get<std::string>();
  EXPECT_NE(rendered.find("get_weather"), std::string::npos) << rendered;
  EXPECT_FALSE(rendered.ends_with("<|im_start|>assistant\n")) << rendered;
  const HttpReply bad = server_->handle(post("/apply-template", R"({"messages": [], "add_generation_prompt": 1})"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(body_of(bad)["error"]["param"], "add_generation_prompt");
  // Tools a chat completion would refuse (a parameter schema the converter cannot enforce).
  const HttpReply bad_tools = server_->handle(post("/apply-template", R"({
      "messages": [{"role": "user", "content": "Hi"}],
      "tools": [{"type": "function", "function": {"name": "f",
                 "parameters": {"type": "object", "properties": {"x": {"not": {"type": "string"}}}}}}]})"));
  EXPECT_EQ(bad_tools.status, 400);
  EXPECT_EQ(body_of(bad_tools)["error"]["param"], "tools");
}

TEST_F(ApiServerTest, MetricsAreCountedPerStatus) {
  server_->handle(get("/nowhere"));
  const HttpReply metrics = server_->handle(get("/metrics"));
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  EXPECT_NE(metrics.body.find("ember_requests_total{status=\"404\"}"), std::string::npos);
  EXPECT_NE(metrics.body.find("ember_kv_blocks_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("ember_time_to_first_token_seconds_bucket"), std::string::npos);
}

// Speculative decoding through the API: a server with ember-tiny-draft and speculation off by
// default; a request that asks for it gets plain decoding's greedy text, the drafts in usage and
// timings, and /metrics counts them.
TEST(ApiServerSpeculative, DraftModelRequestsKeepTheTextAndReportDrafts) {
  ServerOptions o;
  o.model_path = kTiny;
  o.draft_model_path = (std::filesystem::path(EMBER_SOURCE_DIR) / "models" / "ember-tiny-draft.gguf").string();
  o.threads = 2;
  o.batch_invariant = true;
  ApiServer server(o);
  server.load();
  const std::string prompt = R"("prompt": "And the LORD said unto Moses", "max_tokens": 40, "temperature": 0)";
  const json plain = body_of(server.handle(post("/v1/completions", "{" + prompt + "}", "")));
  EXPECT_EQ(plain["timings"]["draft_n"], 0);
  EXPECT_FALSE(plain["usage"].contains("completion_tokens_details"));
  // p_min 0: every draft to its full length, so some are rejected; the default cuts unsure ones.
  for (const char* ask : {R"("speculative": {"draft_max": 5, "p_min": 0})",
                          R"("speculative.n_max": 5, "speculative.n_min": 2, "speculative.p_min": 0.0)",
                          R"("speculative": {"draft_max": 5})"}) {
    const json spec = body_of(server.handle(post("/v1/completions", "{" + prompt + ", " + ask + "}", "")));
    EXPECT_EQ(spec["choices"][0]["text"], plain["choices"][0]["text"]) << ask;
    const int drafted = spec["timings"]["draft_n"].get<int>();
    const int accepted = spec["timings"]["draft_n_accepted"].get<int>();
    EXPECT_GT(accepted, 0) << ask;
    if (std::string(ask).find("p_min") != std::string::npos) {
      EXPECT_LT(accepted, drafted) << ask;
    } else {
      EXPECT_LE(accepted, drafted) << ask;
    }
    EXPECT_EQ(spec["usage"]["completion_tokens_details"]["accepted_prediction_tokens"], accepted);
    EXPECT_EQ(spec["usage"]["completion_tokens_details"]["rejected_prediction_tokens"], drafted - accepted);
  }
  const std::string metrics = server.handle(get("/metrics", "")).body;
  EXPECT_NE(metrics.find("ember_draft_tokens_accepted_total"), std::string::npos);
  EXPECT_NE(metrics.find("ember_draft_position_accepted_ratio{position=\"1\"}"), std::string::npos);
  EXPECT_EQ(metrics.find("ember_draft_tokens_total 0\n"), std::string::npos);
  server.drain(std::chrono::milliseconds(1000));
}

// A non-streaming request the shutdown cancels gets 503 (a reply with a null finish_reason is not
// OpenAI's shape); a stream would end with its finish chunk instead.
TEST(ApiServerLifecycle, ANonStreamingRequestCancelledByShutdownIs503) {
  ServerOptions o;
  o.model_path = kTiny;
  o.threads = 1;
  ApiServer server(o);
  server.load();
  HttpReply reply;
  std::thread client([&] {
    reply = server.handle(
        post("/v1/completions", R"({"prompt": "In the beginning", "max_tokens": 240, "ignore_eos": true})", ""));
  });
  // Cancel once it runs: the running-sequences gauge says so.
  for (int i = 0; i < 5000; ++i) {
    if (server.handle(get("/metrics", "")).body.find("ember_running_sequences 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.drain(std::chrono::milliseconds(0));
  client.join();
  EXPECT_EQ(reply.status, 503) << reply.body;
  EXPECT_NE(reply.body.find("shutting down"), std::string::npos) << reply.body;
}

TEST(ApiServerLifecycle, LoadingThenDrainingAnswer503) {
  ServerOptions o;
  o.model_path = kTiny;
  o.threads = 1;
  ApiServer server(o);
  HttpRequest health;
  health.method = "GET";
  health.path = "/health";
  EXPECT_EQ(server.handle(health).status, 503);  // not loaded yet
  HttpRequest models = health;
  models.path = "/v1/models";
  EXPECT_EQ(server.handle(models).status, 503);
  server.load();
  EXPECT_EQ(server.handle(health).status, 200);
  server.drain(std::chrono::milliseconds(1000));
  EXPECT_EQ(server.handle(health).status, 503);
  const HttpReply refused = server.handle(models);
  EXPECT_EQ(refused.status, 503);
  bool retry_after = false;
  for (const auto& [k, v] : refused.headers) retry_after = retry_after || k == "Retry-After";
  EXPECT_TRUE(retry_after);
}

// A request whose history holds a tool round trip (a call with an OpenAI-style id, its result) and
// offers the tool again.
json tool_round_trip() {
  return json::parse(R"({
      "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_openai_style_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_openai_style_1", "content": "18 C"}],
      "tools": [{"type": "function", "function": {"name": "get_weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]})");
}

// The prompt /apply-template renders for `body` through the chat template at `path` ("" and a
// failure when the server refuses it).
std::string prompt_through(const std::filesystem::path& path, const json& body) {
  ServerOptions o;
  o.model_path = kTiny;
  o.threads = 1;
  o.chat_template = path.string();
  ApiServer server(o);
  server.load();
  const HttpReply reply = server.handle(post("/apply-template", body.dump(), ""));
  EXPECT_EQ(reply.status, 200) << reply.body;
  return reply.status == 200 ? body_of(reply)["prompt"].get<std::string>() : std::string();
}

// A tool round trip in the history renders through the real Mistral-family templates: ids from
// another API (mapped to the 9 alphanumerics Nemo and Small 3.2 demand, the same for the call and
// its result), and a tool-call turn without content (Devstral's template indexes it).
TEST(ApiServerTools, HistoryRendersThroughTheMistralTemplates) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  for (const char* name : {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja",
                           "unsloth-mistral-Devstral-Small-2507.jinja"}) {
    SCOPED_TRACE(name);
    const std::string prompt = prompt_through(data / "templates" / name, tool_round_trip());
    EXPECT_NE(prompt.find("get_weather"), std::string::npos) << prompt;
    EXPECT_NE(prompt.find("18 C"), std::string::npos) << prompt;
    EXPECT_EQ(prompt.find("call_openai_style_1"), std::string::npos) << "ids reach these templates mapped";
  }
}

// DeepSeek's templates render a past call exactly as the tool-call grammar asks the model to write
// one (tool_grammar.cpp's deepseek_call): V3.1's name<｜tool▁sep｜>{args}, R1's fenced arguments.
TEST(ApiServerTools, HistoryRendersThroughTheDeepSeekTemplatesAsTheGrammarWrites) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  const std::string call = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>";
  const struct {
    const char* name;
    bool r1;
    std::string rendered_call;
  } cases[] = {
      {"deepseek-ai-DeepSeek-V3.1.jinja", false,
       call + "get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", true,
       call + "function<｜tool▁sep｜>get_weather\n```json\n{\"city\": "
              "\"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string prompt = prompt_through(data / "templates" / c.name, tool_round_trip());
    EXPECT_NE(prompt.find(c.rendered_call), std::string::npos) << prompt;
    EXPECT_NE(prompt.find("18 C"), std::string::npos) << prompt;
    // These templates never render `tools`: the tools and the call syntax come in a system line.
    EXPECT_NE(prompt.find("- get_weather\n  parameters: {"), std::string::npos) << prompt;
    EXPECT_NE(prompt.find("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + std::string(c.r1 ? "function" : "NAME")),
              std::string::npos)
        << prompt;
  }
  // A DeepSeek template that renders the tools itself (as llama.cpp's R1 template does; that one
  // pipes a map() into tojson, which Jinja2, and so ember, refuses): no instruction of ember's.
  const std::filesystem::path own = std::filesystem::temp_directory_path() / "ember-deepseek-own-tools.jinja";
  {
    std::ofstream f(own);
    f << "{% for t in tools %}tool {{ t.function.name }};{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}"
         "<｜tool▁sep｜>";
  }
  const std::string prompt = prompt_through(own, tool_round_trip());
  EXPECT_NE(prompt.find("tool get_weather;"), std::string::npos) << prompt;
  EXPECT_EQ(prompt.find("You can call the following tools"), std::string::npos) << prompt;
  std::filesystem::remove(own);
}

std::string header_of(const HttpReply& reply, std::string_view name) {
  for (const auto& [k, v] : reply.headers) {
    if (k == name) return v;
  }
  return {};
}

// The embedded chat UI: served without the API key (the page asks for it) and before the model has
// loaded, with its policy headers, and revalidated by ETag.
TEST(ApiServerUi, AssetsAreServedWithoutTheKeyAndRevalidated) {
  ASSERT_GT(kUiAssetCount, 0u);
  ServerOptions o;
  o.model_path = kTiny;
  o.api_key = "secret";
  ApiServer server(o);  // not loaded: the page still comes
  const HttpReply page = server.handle(get("/", ""));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  EXPECT_NE(header_of(page, "Content-Security-Policy").find("trusted-types 'none'"), std::string::npos);
  EXPECT_EQ(header_of(page, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header_of(page, "Cache-Control"), "no-cache");
  const std::string etag = header_of(page, "ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(server.handle(get("/index.html", "")).body, page.body);

  HttpRequest again = get("/", "");
  again.headers.emplace_back("If-None-Match", etag);
  const HttpReply not_modified = server.handle(again);
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_TRUE(not_modified.body.empty());
  HttpRequest stale = get("/", "");
  stale.headers.emplace_back("If-None-Match", "\"0000000000000000\"");
  EXPECT_EQ(server.handle(stale).status, 200);
  ASSERT_TRUE(etag.starts_with("W/\""));  // weak: httplib may compress the body
  const std::string opaque = etag.substr(2);
  for (const std::string& header : {opaque, "\"1111\", " + etag, "\"1111\",W/" + opaque + " ", std::string("*")}) {
    HttpRequest listed = get("/", "");
    listed.headers.emplace_back("If-None-Match", header);
    EXPECT_EQ(server.handle(listed).status, 304) << header;
  }
  HttpRequest junk = get("/", "");
  junk.headers.emplace_back("If-None-Match", opaque + "junk");
  EXPECT_EQ(server.handle(junk).status, 200);

  for (size_t i = 0; i < kUiAssetCount; ++i) {
    const UiAsset& asset = kUiAssets[i];
    SCOPED_TRACE(asset.path);
    const HttpReply reply = server.handle(get(asset.path, ""));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, asset.bytes());
    EXPECT_EQ(reply.content_type, asset.content_type);
    if (std::string_view(asset.path).ends_with(".js")) {
      EXPECT_EQ(reply.content_type, "text/javascript; charset=utf-8");
    }
    if (i > 0) {
      EXPECT_LT(std::string_view(kUiAssets[i - 1].path), std::string_view(asset.path));  // sorted
    }
  }
  // Only the table: no file system behind it, and the API still wants its key.
  EXPECT_EQ(server.handle(get("/../CMakeLists.txt", "")).status, 401);
  EXPECT_EQ(server.handle(get("/v1/models", "")).status, 401);
  EXPECT_EQ(server.handle(get("/props", "")).status, 401);
  EXPECT_EQ(server.handle(post("/", "{}", "")).status, 401);  // GET and HEAD only
  EXPECT_EQ(find_ui_asset("/nope.js"), nullptr);
  EXPECT_EQ(find_ui_asset(""), nullptr);
}

TEST(ApiServerUi, NoUiServesNoPage) {
  ServerOptions o;
  o.model_path = kTiny;
  o.no_ui = true;
  o.threads = 1;
  ApiServer server(o);
  server.load();
  EXPECT_EQ(server.handle(get("/", "")).status, 404);
  EXPECT_EQ(server.handle(get("/app.js", "")).status, 404);
}

// Templates without a tool syntax (the generic format): the instruction that lists the tools goes
// in as a system message, or, for a template that refuses one (gemma-2), into the user's.
TEST(ApiServerTemplates, GenericToolsWorkWithTemplatesWithoutASystemRole) {
  const std::filesystem::path dir = std::filesystem::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "templates";
  for (const char* name : {"google-gemma-2-2b-it.jinja", "microsoft-Phi-3.5-mini-instruct.jinja"}) {
    if (!std::filesystem::exists(dir / name)) GTEST_SKIP() << "no " << (dir / name);
    ServerOptions o;
    o.model_path = kTiny;
    o.threads = 2;
    o.chat_template = (dir / name).string();
    ApiServer server(o);
    server.load();
    const std::string tools = R"([{"type": "function", "function": {"name": "get_time", "parameters": {}}}])";
    for (const std::string system : {"", R"({"role": "system", "content": "Be brief."}, )"}) {
      const HttpReply reply = server.handle(post("/v1/chat/completions",
                                                 R"({"messages": [)" + system +
                                                     R"({"role": "user", "content": "hi"}],
          "max_tokens": 4, "tools": )" + tools + "}",
                                                 ""));
      // gemma-2 refuses a client's system message too: that one stays the client's 400.
      const bool refused = std::string(name).find("gemma-2") != std::string::npos && !system.empty();
      EXPECT_EQ(reply.status, refused ? 400 : 200) << name << " " << system << ": " << reply.body;
    }
  }
}

TEST(ApiServerLifecycle, MissingModelFailsToLoad) {
  ServerOptions o;
  o.model_path = "/nonexistent/model.gguf";
  ApiServer server(o);
  EXPECT_THROW(server.load(), ember::Error);
}

}  // namespace
}  // namespace ember::server
