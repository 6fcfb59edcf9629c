// llama.cpp's own endpoints, /completion and /infill, as its clients call them: the answer object
// (content, stop_type, timings, ...) against what /v1/completions generates for the same request,
// n_probs, return_tokens, response_fields, several prompts and choices, the stream (chunks, a
// final object, no [DONE]), the code-completion limits n_indent and t_max_predict_ms, and the
// /infill prompt. On the bundled ember-tiny (FIM-keyed copies for /infill) through ApiServer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api_server_support.h"
#include "server/api_server.h"

namespace ember::server {
namespace {

using nlohmann::json;

class NativeCompletion : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.model_path = kTiny;
    o.parallel = 3;
    o.threads = 2;
    o.batch_invariant = true;  // a prompt's rows do not depend on what shares its steps
    server_ = new ApiServer(o);
    server_->load();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static HttpReply send(const std::string& path, const json& body) {
    return server_->handle(post(path, body.dump(), ""));
  }
  static json ok(const std::string& path, const json& body) {
    const HttpReply reply = send(path, body);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.status == 200 ? body_of(reply) : json::object();
  }
  // The stream's events; `done` says whether a [DONE] came (llama.cpp's endpoints send none).
  static std::vector<json> streamed(const std::string& path, json body, bool* done) {
    body["stream"] = true;
    HttpReply reply = send(path, body);
    EXPECT_EQ(reply.status, 200) << reply.body;
    if (reply.status != 200) return {};
    EXPECT_EQ(reply.content_type, "text/event-stream");
    StringSink sink;
    reply.stream(sink);
    return sse_events(sink.text, done);
  }

  static ApiServer* server_;
};
ApiServer* NativeCompletion::server_ = nullptr;

const std::string kKingPrompt = "And it came to pass, when the king";

// The answer's fields, each as llama.cpp defines it, and the same text /v1/completions generates.
TEST_F(NativeCompletion, AnswerHasLlamaCppsFieldsAndTheSameText) {
  const json body = {{"prompt", kKingPrompt}, {"n_predict", 8}, {"temperature", 0}};
  const json a = ok("/completion", body);
  const json openai = ok("/v1/completions", body);
  EXPECT_EQ(a["content"], openai["choices"][0]["text"]);
  EXPECT_EQ(a["stop"], true);
  EXPECT_EQ(a["stop_type"], "limit");
  EXPECT_EQ(a["stopping_word"], "");
  EXPECT_EQ(a["tokens_predicted"], 8);
  EXPECT_EQ(a["tokens_evaluated"], openai["usage"]["prompt_tokens"]);
  EXPECT_EQ(a["tokens_cached"], a["tokens_evaluated"].get<int>() + 8);
  EXPECT_EQ(a["tokens"], json::array());  // only with return_tokens
  EXPECT_EQ(a["truncated"], false);
  EXPECT_EQ(a["index"], 0);
  EXPECT_EQ(a["model"], "ember-tiny.gguf");
  // The tokens' pieces joined, control tokens spelled out, as llama.cpp reports it: "▁And" after
  // the BOS keeps its space.
  EXPECT_EQ(a["prompt"], "<s> " + kKingPrompt);
  EXPECT_EQ(a["has_new_line"], a["content"].get<std::string>().find('\n') != std::string::npos);
  const json& t = a["timings"];
  EXPECT_EQ(t["predicted_n"], 8);
  EXPECT_EQ(t["prompt_n"].get<int>() + t["cache_n"].get<int>(), a["tokens_evaluated"]);
  for (const char* name : {"prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_ms",
                           "predicted_per_token_ms", "predicted_per_second"}) {
    ASSERT_TRUE(t.contains(name)) << name;
    EXPECT_GE(t[name].get<double>(), 0.0) << name;
  }
  EXPECT_GT(t["predicted_per_second"].get<double>(), 0.0);
  const json& settings = a["generation_settings"];
  EXPECT_EQ(settings["n_predict"], 8);
  EXPECT_EQ(settings["temperature"], 0.0);
  EXPECT_EQ(settings["min_p"].get<double>(), 0.05);  // as written, not the float's 0.0500000007
  EXPECT_EQ(settings["top_p"].get<double>(), 0.95);
  EXPECT_EQ(settings["samplers"].size(), 8u);  // llama.cpp's default order
  EXPECT_FALSE(a.contains("completion_probabilities"));
  // /completions is the same route (llama.cpp's alias; /v1/completions is OpenAI's).
  EXPECT_EQ(ok("/completions", body)["content"], a["content"]);

  // return_tokens: the generated ids, which spell the content.
  json with_tokens = body;
  with_tokens["return_tokens"] = true;
  const json b = ok("/completion", with_tokens);
  ASSERT_EQ(b["tokens"].size(), 8u);
  const json text = ok("/detokenize", {{"tokens", b["tokens"]}});
  // Detokenized as a text of its own, the SPM space prefix of the first word goes.
  const std::string content = b["content"];
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(text["content"], content.substr(content[0] == ' ' ? 1 : 0));
}

// A stop string: "word", the string named, the text before it; an end-of-generation token: "eos".
TEST_F(NativeCompletion, StopTypes) {
  const json free = ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 24}, {"temperature", 0}});
  const std::string text = free["content"];
  ASSERT_GT(text.size(), 12u);
  const std::string word = text.substr(6, 4);
  const json stopped =
      ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 24}, {"temperature", 0}, {"stop", {word}}});
  EXPECT_EQ(stopped["stop_type"], "word");
  EXPECT_EQ(stopped["stopping_word"], word);
  EXPECT_EQ(stopped["content"], text.substr(0, text.find(word)));
  // A grammar that ends: the model's end-of-generation token follows.
  const json ended = ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 24}, {"grammar", "root ::= \"ab\""}});
  EXPECT_EQ(ended["content"], "ab");
  EXPECT_EQ(ended["stop_type"], "eos");
}

// n_probs: per token its id, text, bytes, logprob and the best alternatives, the logprobs
// /v1/completions reports for the same tokens.
TEST_F(NativeCompletion, NProbsListsEachTokensProbabilities) {
  const json a =
      ok("/completion",
         {{"prompt", kKingPrompt}, {"n_predict", 6}, {"temperature", 0}, {"n_probs", 3}, {"return_tokens", true}});
  const json openai =
      ok("/v1/completions", {{"prompt", kKingPrompt}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 3}});
  const json& probs = a["completion_probabilities"];
  ASSERT_EQ(probs.size(), 6u);
  const json& expected = openai["choices"][0]["logprobs"];
  for (size_t i = 0; i < probs.size(); ++i) {
    SCOPED_TRACE(i);
    const json& p = probs[i];
    EXPECT_EQ(p["id"], a["tokens"][i]);
    EXPECT_EQ(p["token"], expected["tokens"][i]);
    std::string bytes;
    for (const json& b : p["bytes"]) bytes += static_cast<char>(b.get<int>());
    EXPECT_EQ(bytes, p["token"].get<std::string>());
    EXPECT_FLOAT_EQ(p["logprob"].get<float>(), expected["token_logprobs"][i].get<float>());
    ASSERT_EQ(p["top_logprobs"].size(), 3u);
    EXPECT_EQ(p["top_logprobs"][0]["id"], p["id"]);  // greedy: the best is the one drawn
    EXPECT_GE(p["top_logprobs"][0]["logprob"].get<float>(), p["top_logprobs"][1]["logprob"].get<float>());
  }
  // n_probs 0 is none; OpenAI's logprobs integer counts where n_probs is absent.
  EXPECT_FALSE(ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 2}, {"n_probs", 0}})
                   .contains("completion_probabilities"));
  EXPECT_EQ(
      ok("/completion",
         {{"prompt", kKingPrompt}, {"n_predict", 2}, {"logprobs", 2}})["completion_probabilities"][0]["top_logprobs"]
          .size(),
      2u);
  const HttpReply post_sampling =
      send("/completion", {{"prompt", kKingPrompt}, {"n_predict", 2}, {"n_probs", 2}, {"post_sampling_probs", true}});
  EXPECT_EQ(post_sampling.status, 400);
  EXPECT_NE(post_sampling.body.find("post_sampling_probs"), std::string::npos) << post_sampling.body;
}

// Streamed: a chunk per token ({content, tokens: [id], stop: false}) whose contents make the whole
// answer's, then the final object (stop: true, content ""), and no [DONE].
TEST_F(NativeCompletion, StreamSendsChunksThenTheFinalObject) {
  const json body = {{"prompt", kKingPrompt}, {"n_predict", 7}, {"temperature", 0}, {"n_probs", 2}};
  const json whole = ok("/completion", body);
  bool done = true;
  const std::vector<json> events = streamed("/completion", body, &done);
  EXPECT_FALSE(done);
  ASSERT_GE(events.size(), 2u);
  std::string text;
  size_t tokens = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i]["stop"], false);
    text += events[i]["content"].get<std::string>();
    tokens += events[i]["tokens"].size();
    EXPECT_EQ(events[i]["completion_probabilities"].size(), events[i]["tokens"].size());
  }
  EXPECT_EQ(text, whole["content"]);
  EXPECT_EQ(tokens, 7u);
  const json& last = events.back();
  EXPECT_EQ(last["stop"], true);
  EXPECT_EQ(last["content"], "");
  EXPECT_EQ(last["stop_type"], "limit");
  EXPECT_EQ(last["tokens_predicted"], 7);
  EXPECT_FALSE(last.contains("completion_probabilities"));
}

// Several prompts, or n_cmpl choices: an array of answers, each with its index.
TEST_F(NativeCompletion, SeveralPromptsAndChoicesAnswerAnArray) {
  const json one = ok("/completion", {{"prompt", "In the beginning"}, {"n_predict", 4}, {"temperature", 0}});
  const json two = ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 4}, {"temperature", 0}});
  const json both =
      ok("/completion", {{"prompt", {"In the beginning", kKingPrompt}}, {"n_predict", 4}, {"temperature", 0}});
  ASSERT_TRUE(both.is_array());
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0]["index"], 0);
  EXPECT_EQ(both[0]["content"], one["content"]);
  EXPECT_EQ(both[1]["index"], 1);
  EXPECT_EQ(both[1]["content"], two["content"]);
  const json choices = ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 4}, {"n_cmpl", 3}, {"seed", 5}});
  ASSERT_TRUE(choices.is_array());
  ASSERT_EQ(choices.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(choices[i]["index"], i);
}

// response_fields keeps the fields named; "timings/predicted_n" comes out at the top under that
// name; a field the answer lacks is left out.
TEST_F(NativeCompletion, ResponseFieldsSelect) {
  const json a = ok("/completion", {{"prompt", kKingPrompt},
                                    {"n_predict", 3},
                                    {"response_fields", {"content", "timings/predicted_n", "no_such", "stop_type"}}});
  EXPECT_EQ(a.size(), 3u) << a.dump();
  EXPECT_EQ(a["timings/predicted_n"], 3);
  EXPECT_EQ(a["stop_type"], "limit");
  EXPECT_TRUE(a["content"].is_string());
}

// n_indent: a line indented less than n_indent ends the answer before its first character (a blank
// line too); t_max_predict_ms: the first line that ends past the time. Both are "limit". The
// grammar makes the lines.
TEST_F(NativeCompletion, CodeCompletionLimits) {
  const std::string grammar = R"(root ::= "ab\n  cd\n    ef\ngh\nij\n")";
  const json body = {{"prompt", kKingPrompt}, {"n_predict", 40}, {"grammar", grammar}};
  EXPECT_EQ(ok("/completion", body)["content"], "ab\n  cd\n    ef\ngh\nij\n");
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream);
    json indented = body;
    indented["n_indent"] = 2;
    json timed = body;
    timed["t_max_predict_ms"] = 0.001;
    json answers[2];
    for (int k = 0; k < 2; ++k) {
      const json& request = k == 0 ? indented : timed;
      if (!stream) {
        answers[k] = ok("/completion", request);
        continue;
      }
      bool done = false;
      const std::vector<json> events = streamed("/completion", request, &done);
      ASSERT_FALSE(events.empty());
      std::string text;
      for (const json& e : events) text += e["content"].get<std::string>();
      answers[k] = events.back();
      answers[k]["content"] = text;
    }
    EXPECT_EQ(answers[0]["content"], "ab\n  cd\n    ef\n");
    EXPECT_EQ(answers[0]["stop_type"], "limit");
    EXPECT_EQ(answers[1]["content"], "ab\n");
    EXPECT_EQ(answers[1]["stop_type"], "limit");
  }
  // Every choice and prompt stops at its own limit (the request ends when all have), and the
  // counts stop there too.
  json several = body;
  several["n_indent"] = 2;
  several["n_cmpl"] = 2;
  several["prompt"] = {kKingPrompt, "In the beginning"};
  const json all = ok("/completion", several);
  ASSERT_EQ(all.size(), 4u);
  for (const json& a : all) {
    EXPECT_EQ(a["content"], "ab\n  cd\n    ef\n") << a["index"];
    EXPECT_EQ(a["stop_type"], "limit");
    EXPECT_EQ(a["tokens_predicted"], a["timings"]["predicted_n"]);
    EXPECT_LT(a["tokens_predicted"].get<int>(), 40);
  }
  json blank = body;
  blank["grammar"] = R"(root ::= "ab\n  cd\n\n  ef\n")";
  blank["n_indent"] = 1;
  EXPECT_EQ(ok("/completion", blank)["content"], "ab\n  cd\n");
}

// Bad requests: a 400 naming the field; other methods a 405; [] samplers run none (llama.vim's
// cache warming sends them, with n_predict 0).
TEST_F(NativeCompletion, BadRequestsAndCacheWarming) {
  for (const auto& [body, field] : std::vector<std::pair<json, std::string>>{
           {{{"n_predict", 2}}, "prompt"},
           {{{"prompt", kKingPrompt}, {"n_probs", 99}}, "n_probs"},
           {{{"prompt", kKingPrompt}, {"n_indent", -1}}, "n_indent"},
           {{{"prompt", kKingPrompt}, {"t_max_predict_ms", "soon"}}, "t_max_predict_ms"},
           {{{"prompt", kKingPrompt}, {"response_fields", "content"}}, "response_fields"},
           {{{"prompt", kKingPrompt}, {"return_tokens", 1}}, "return_tokens"},
           {{{"prompt", kKingPrompt}, {"samplers", {"top_k", "bogus"}}}, "samplers"}}) {
    const HttpReply r = send("/completion", body);
    EXPECT_EQ(r.status, 400) << body.dump();
    EXPECT_EQ(body_of(r)["error"]["param"], field) << r.body;
  }
  HttpRequest get_request = get("/completion", "");
  EXPECT_EQ(server_->handle(get_request).status, 405);
  const json warm = ok("/completion", {{"prompt", kKingPrompt}, {"n_predict", 0}, {"samplers", json::array()}});
  EXPECT_EQ(warm["content"], "");
  EXPECT_EQ(warm["tokens_predicted"], 0);
  EXPECT_EQ(
      ok("/completion",
         {{"prompt", kKingPrompt}, {"n_predict", 3}, {"samplers", json::array()}, {"seed", 3}})["tokens_predicted"],
      3);
}

// /infill builds [BOS] PRE prefix prompt SUF suffix MID: its answer is /completion's for those ids.
// With the repository tokens the other files come first; a model without the tokens is a 501.
TEST(NativeInfill, BuildsTheFillInTheMiddlePrompt) {
  for (const bool repo : {false, true}) {
    SCOPED_TRACE(repo);
    ServerOptions o;
    o.model_path = tiny_with_fill_in_middle(repo).string();
    o.threads = 2;
    o.batch_invariant = true;
    ApiServer server(o);
    server.load();
    const auto call = [&](const std::string& path, const json& body) {
      const HttpReply reply = server.handle(post(path, body.dump(), ""));
      EXPECT_EQ(reply.status, 200) << reply.body;
      return reply.status == 200 ? body_of(reply) : json::object();
    };
    const auto plain = [&](const std::string& text) {
      return call("/tokenize", {{"content", text}, {"add_special", false}, {"parse_special", false}})["tokens"]
          .get<std::vector<int32_t>>();
    };
    const std::string prefix = "In the beginning", suffix = " and the earth.", middle = " God";
    std::vector<int32_t> ids = {1};  // BOS: ember-tiny's vocabulary adds one
    const auto append = [&](const std::vector<int32_t>& more) { ids.insert(ids.end(), more.begin(), more.end()); };
    const json extra = json::array({{{"filename", "a.txt"}, {"text", "Let there be light"}}});
    if (repo) {
      ids.push_back(kFimRepo);
      append(plain("myproject\n"));
      ids.push_back(kFimFileSep);
      append(plain("a.txt\n"));
      append(plain("Let there be light"));
      ids.push_back(kFimFileSep);
      append(plain("filename\n"));
    } else {
      append(plain("\n\n--- snippet ---\n\n"));
      append(plain("Let there be light"));
    }
    ids.push_back(kFimPrefix);
    append(plain(prefix));
    append(call("/tokenize", {{"content", middle}})["tokens"].get<std::vector<int32_t>>());
    ids.push_back(kFimSuffix);
    append(plain(suffix));
    ids.push_back(kFimMiddle);

    const json infill = call("/infill", {{"input_prefix", prefix},
                                         {"input_suffix", suffix},
                                         {"input_extra", extra},
                                         {"prompt", middle},
                                         {"n_predict", 5},
                                         {"temperature", 0}});
    const json by_ids = call("/completion", {{"prompt", ids}, {"n_predict", 5}, {"temperature", 0}});
    EXPECT_EQ(infill["tokens_evaluated"], ids.size());
    EXPECT_EQ(infill["content"], by_ids["content"]);
    EXPECT_EQ(infill["prompt"], by_ids["prompt"]);
  }
  ServerOptions o;
  o.model_path = kTiny;
  o.threads = 2;
  ApiServer plain_model(o);
  plain_model.load();
  const HttpReply r =
      plain_model.handle(post("/infill", json{{"input_prefix", "a"}, {"input_suffix", "b"}}.dump(), ""));
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("fill-in-the-middle"), std::string::npos) << r.body;
}

// The request llama.vim sends: its sampler chain ends in "infill" (no temperature step), and it
// reads the fields it names in response_fields.
TEST(NativeInfill, LlamaVimsRequest) {
  ServerOptions o;
  o.model_path = tiny_with_fill_in_middle(/*repo=*/true).string();
  o.threads = 2;
  ApiServer server(o);
  server.load();
  const json request = {
      {"input_prefix", "In the beginning God created"},
      {"input_suffix", "\nAnd the earth was without form"},
      {"input_extra", json::array({{{"filename", "genesis.txt"}, {"text", "Let there be light"}}})},
      {"prompt", " the"},
      {"n_predict", 16},
      {"n_indent", 0},
      {"top_k", 40},
      {"top_p", 0.99},
      {"stream", false},
      {"samplers", {"top_k", "top_p", "infill"}},
      {"seed", 11},
      {"cache_prompt", true},
      {"t_max_prompt_ms", 500},
      {"t_max_predict_ms", 1000},
      {"response_fields",
       {"content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms", "timings/prompt_per_second",
        "timings/predicted_n", "timings/predicted_ms", "timings/predicted_per_token_ms", "timings/predicted_per_second",
        "truncated", "tokens_cached"}}};
  const HttpReply r = server.handle(post("/infill", request.dump(), ""));
  ASSERT_EQ(r.status, 200) << r.body;
  const json a = body_of(r);
  EXPECT_EQ(a.size(), 11u) << a.dump();
  EXPECT_TRUE(a["content"].is_string());
  EXPECT_GE(a["timings/predicted_n"].get<int>(), 1);
  EXPECT_EQ(a["truncated"], false);
  // The same chain runs on /completion, and the settings name it.
  const HttpReply c = server.handle(
      post("/completion",
           json{{"prompt", "In the beginning"}, {"n_predict", 4}, {"samplers", {"top_k", "infill"}}}.dump(), ""));
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(body_of(c)["generation_settings"]["samplers"], json({"top_k", "infill"}));
}

TEST(NativeInfill, BadRequestsNameTheField) {
  ServerOptions o;
  o.model_path = tiny_with_fill_in_middle().string();
  o.threads = 2;
  ApiServer server(o);
  server.load();
  for (const auto& [body, field] : std::vector<std::pair<json, std::string>>{
           {{{"input_suffix", "b"}}, "input_prefix"},
           {{{"input_prefix", "a"}}, "input_suffix"},
           {{{"input_prefix", 1}, {"input_suffix", "b"}}, "input_prefix"},
           {{{"input_prefix", "a"}, {"input_suffix", "b"}, {"input_extra", "x"}}, "input_extra"},
           {{{"input_prefix", "a"}, {"input_suffix", "b"}, {"input_extra", {1}}}, "input_extra[0]"},
           {{{"input_prefix", "a"}, {"input_suffix", "b"}, {"input_extra", {{{"filename", "f"}}}}},
            "input_extra[0].text"},
           {{{"input_prefix", "a"}, {"input_suffix", "b"}, {"input_extra", {{{"text", "t"}, {"filename", 2}}}}},
            "input_extra[0].filename"},
           {{{"input_prefix", "a"}, {"input_suffix", "b"}, {"prompt", {1, 2}}}, "prompt"}}) {
    const HttpReply r = server.handle(post("/infill", body.dump(), ""));
    EXPECT_EQ(r.status, 400) << body.dump();
    EXPECT_EQ(body_of(r)["error"]["param"], field) << r.body;
  }
  // Code longer than the context is cut to fit; the answer still comes.
  std::string long_prefix;
  for (int i = 0; i < 3000; ++i) long_prefix += "and the earth ";
  const HttpReply r = server.handle(
      post("/infill", json{{"input_prefix", long_prefix}, {"input_suffix", long_prefix}, {"n_predict", 4}}.dump(), ""));
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_LE(body_of(r)["tokens_evaluated"].get<int>() + 4, body_of(r)["generation_settings"]["n_ctx"].get<int>());
}

}  // namespace
}  // namespace ember::server
