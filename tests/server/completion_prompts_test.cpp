// /v1/completions as evaluation harnesses use it (lm-evaluation-harness's local-completions): several
// prompts in one request, echo with logprobs (the prompt's tokens scored), max_tokens 0, whole and
// streamed; vLLM's tokenizer routes the harness tokenizes with; and `suffix` (fill in the middle). On the
// bundled ember-tiny through ApiServer::handle.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api_server_support.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "server/api_server.h"
#include "support/test_data.h"

namespace ember::server {
namespace {

using nlohmann::json;

class CompletionPrompts : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.model_path = kTiny;
    o.parallel = 3;
    o.max_queue = 5;
    o.threads = 2;
    o.batch_invariant = true;  // a prompt's rows do not depend on what shares its steps
    server_ = new ApiServer(o);
    server_->load();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static json complete(const json& body) {
    const HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.status == 200 ? body_of(reply) : json::object();
  }
  static ApiServer* server_;
};
ApiServer* CompletionPrompts::server_ = nullptr;

// The token ids of `text` as the server tokenizes a prompt (BOS first).
std::vector<int32_t> tokenize(ApiServer& server, const std::string& text) {
  const HttpReply reply = server.handle(post("/tokenize", json{{"content", text}, {"add_special", true}}.dump(), ""));
  EXPECT_EQ(reply.status, 200) << reply.body;
  return body_of(reply)["tokens"].get<std::vector<int32_t>>();
}

// What lm-evaluation-harness sends for a loglikelihood: the context and continuation's token ids,
// one generated token, one alternative, echo. It sums token_logprobs[ctxlen:-1] and calls the
// continuation greedy when each of its tokens is the best of its top_logprobs.
TEST_F(CompletionPrompts, EchoWithLogprobsScoresThePrompt) {
  const std::vector<int32_t> ids = tokenize(*server_, "And it came to pass, when the king heard it");
  const json b = complete({{"prompt", json::array({ids})},
                           {"max_tokens", 1},
                           {"logprobs", 1},
                           {"echo", true},
                           {"temperature", 0},
                           {"seed", 1234}});
  ASSERT_EQ(b["choices"].size(), 1u);
  const json& lp = b["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), ids.size() + 1);  // the prompt, then the generated token
  ASSERT_EQ(lp["tokens"].size(), ids.size() + 1);
  ASSERT_EQ(lp["top_logprobs"].size(), ids.size() + 1);
  ASSERT_EQ(lp["text_offset"].size(), ids.size() + 1);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());  // nothing precedes the first token
  EXPECT_EQ(lp["text_offset"][0], 0);              // offsets count from the echoed text's start
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  double sum = 0;
  for (size_t i = 1; i <= ids.size(); ++i) {
    ASSERT_TRUE(lp["token_logprobs"][i].is_number()) << i;
    const double v = lp["token_logprobs"][i].get<double>();
    EXPECT_LE(v, 0.0);
    EXPECT_TRUE(lp["top_logprobs"][i].is_object());
    EXPECT_GE(lp["top_logprobs"][i].size(), 1u);
    EXPECT_LE(lp["top_logprobs"][i].size(), 2u);  // the best, and the token itself when it is not
    if (i < ids.size()) sum += v;
  }
  EXPECT_LT(sum, 0.0);
  // The echoed text is the prompt's (its ids detokenized, BOS shown), then the generated token's.
  const std::string text = b["choices"][0]["text"];
  EXPECT_NE(text.find("And it came to pass, when the king heard it"), std::string::npos) << text;
  EXPECT_EQ(b["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(b["usage"]["completion_tokens"], 1);

  // Causal: a prefix's scores are the first of the whole prompt's. The generated token's logprob
  // is the one a request without echo reports.
  const std::vector<int32_t> prefix(ids.begin(), ids.begin() + 6);
  const json p = complete({{"prompt", prefix}, {"max_tokens", 0}, {"logprobs", 2}, {"echo", true}});
  const json& plp = p["choices"][0]["logprobs"];
  ASSERT_EQ(plp["token_logprobs"].size(), prefix.size());
  for (size_t i = 1; i < prefix.size(); ++i) EXPECT_EQ(plp["token_logprobs"][i], lp["token_logprobs"][i]) << i;
  EXPECT_EQ(p["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(p["usage"]["completion_tokens"], 0);
  // A prompt that fills the context can be scored when nothing is generated.
  const json full =
      complete({{"prompt", std::vector<int32_t>(256, ids[1])}, {"max_tokens", 0}, {"logprobs", 0}, {"echo", true}});
  EXPECT_EQ(full["choices"][0]["logprobs"]["token_logprobs"].size(), 256u);
  const json plain = complete({{"prompt", ids}, {"max_tokens", 1}, {"logprobs", 1}, {"temperature", 0}});
  EXPECT_EQ(plain["choices"][0]["logprobs"]["token_logprobs"][0], lp["token_logprobs"][ids.size()]);
  EXPECT_EQ(plain["choices"][0]["logprobs"]["text_offset"][0], lp["text_offset"][ids.size()]);
}

// text_offset of an echoed prompt's tokens: where each token's text starts in the echoed text, for
// a text prompt (control tokens not shown) and for token ids (shown); the generated tokens after.
TEST_F(CompletionPrompts, EchoedTextOffsetsPointIntoTheText) {
  const std::string prompt = "And it came to pass, when the king heard it";
  for (const json& sent : {json(prompt), json(tokenize(*server_, prompt))}) {
    const json b = complete({{"prompt", sent}, {"max_tokens", 3}, {"logprobs", 0}, {"echo", true}, {"temperature", 0}});
    const std::string text = b["choices"][0]["text"];
    const json& lp = b["choices"][0]["logprobs"];
    const size_t n = lp["tokens"].size();
    ASSERT_EQ(n, tokenize(*server_, prompt).size() + 3);
    size_t last = 0;  // (the text is ASCII: characters are bytes)
    for (size_t i = 0; i < n; ++i) {
      const size_t offset = lp["text_offset"][i];
      EXPECT_GE(offset, last) << i;
      last = offset;
      const std::string piece = lp["tokens"][i];
      // A word's piece carries its space, except the first word's (detokenizing drops it there).
      if (i >= 2 && !piece.empty()) {
        EXPECT_EQ(text.substr(offset, piece.size()), piece) << i << " in " << text;
      }
    }
    // The first generated token starts where the echoed prompt ends ("<s> " first for token ids).
    EXPECT_EQ(lp["text_offset"][n - 3], text.find(prompt) + prompt.size());
  }
}

// Control-token text in a text prompt is parsed into those tokens: their offsets point at that text
// (the BOS the tokenizer added takes none). Token ids that are not whole characters echo as U+FFFD,
// one character each, and the offsets count them so.
TEST_F(CompletionPrompts, EchoedOffsetsWithControlTextAndBrokenCharacters) {
  // "<s>" written first is the BOS itself (not a second one); a BOS the tokenizer adds takes no
  // characters; a space SPM puts before a word the text does not have is not counted.
  const auto offsets_of = [&](const std::string& prompt) {
    const json b = complete({{"prompt", prompt}, {"max_tokens", 0}, {"logprobs", 0}, {"echo", true}});
    EXPECT_EQ(b["choices"][0]["text"], prompt);
    return b["choices"][0]["logprobs"]["text_offset"].get<std::vector<size_t>>();
  };
  EXPECT_EQ(offsets_of("<s>Hi </s> there"), (std::vector<size_t>{0, 3, 4, 5, 6, 10, 11}));
  EXPECT_EQ(offsets_of("Hi </s> there"), (std::vector<size_t>{0, 0, 1, 2, 3, 7, 8}));

  // Byte tokens that never complete a character.
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 64; ++i) ids.push_back((i * 7) % 200 + 3);
  const json echoed =
      complete({{"prompt", ids}, {"max_tokens", 2}, {"logprobs", 0}, {"echo", true}, {"temperature", 0}});
  const json plain = complete({{"prompt", ids}, {"max_tokens", 2}, {"temperature", 0}});
  const std::string text = echoed["choices"][0]["text"];
  const std::string generated = plain["choices"][0]["text"];
  ASSERT_TRUE(text.ends_with(generated));
  const auto characters = [](const std::string& t) {
    return static_cast<size_t>(std::count_if(t.begin(), t.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  const size_t prompt_chars = characters(text) - characters(generated);
  const json& offs = echoed["choices"][0]["logprobs"]["text_offset"];
  ASSERT_EQ(offs.size(), ids.size() + 2);
  EXPECT_EQ(offs[ids.size()], prompt_chars);  // the first generated token starts after the prompt
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_LE(offs[i].get<size_t>(), prompt_chars) << i;
}

// OpenAI's order for several prompts: prompt i's choice j is choice i * n + j, each what the prompt
// alone gives; usage counts every prompt once and every choice.
TEST_F(CompletionPrompts, SeveralPromptsAreEachTheirOwnRequest) {
  const std::vector<std::string> prompts = {"In the beginning", "And the LORD spake unto Moses", "Blessed are"};
  const json batch = complete({{"prompt", prompts}, {"n", 2}, {"max_tokens", 5}, {"temperature", 0.8}, {"seed", 9}});
  ASSERT_EQ(batch["choices"].size(), 6u);
  int64_t prompt_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const json alone =
        complete({{"prompt", prompts[i]}, {"n", 2}, {"max_tokens", 5}, {"temperature", 0.8}, {"seed", 9}});
    for (size_t j = 0; j < 2; ++j) {
      const json& c = batch["choices"][i * 2 + j];
      EXPECT_EQ(c["index"], i * 2 + j);
      EXPECT_EQ(c["text"], alone["choices"][j]["text"]) << i << " " << j;
    }
    prompt_tokens += alone["usage"]["prompt_tokens"].get<int64_t>();
  }
  EXPECT_EQ(batch["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(batch["usage"]["completion_tokens"], 6 * 5);

  // Token-id prompts too, each scored with echo.
  const json ids = complete({{"prompt", {tokenize(*server_, "In the beginning"), tokenize(*server_, "Blessed are")}},
                             {"max_tokens", 0},
                             {"logprobs", 0},
                             {"echo", true}});
  ASSERT_EQ(ids["choices"].size(), 2u);
  EXPECT_EQ(ids["choices"][1]["logprobs"]["tokens"].size(), tokenize(*server_, "Blessed are").size());
}

TEST_F(CompletionPrompts, StreamedBatchEchoesEachPromptWithItsScores) {
  const json body = {{"prompt", {"In the beginning", "Blessed are the poor"}},
                     {"n", 2},
                     {"max_tokens", 4},
                     {"logprobs", 1},
                     {"echo", true},
                     {"temperature", 0},
                     {"stream", true}};
  HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_TRUE(reply.stream);
  StringSink sink;
  reply.stream(sink);
  bool done = false;
  const std::vector<json> events = sse_events(sink.text, &done);
  ASSERT_TRUE(done);
  json whole_body = body;
  whole_body.erase("stream");
  const json whole = complete(whole_body);
  // Per choice: the chunks' texts and logprobs add up to the whole reply's; the first chunk is the
  // echoed prompt with its scores; one finish.
  for (size_t index = 0; index < 4; ++index) {
    std::string text;
    json token_logprobs = json::array();
    int finishes = 0;
    bool first = true;
    for (const json& e : events) {
      const json& c = e["choices"][0];
      if (c["index"] != index) continue;
      if (first) {
        EXPECT_EQ(c["text"], index < 2 ? "In the beginning" : "Blessed are the poor");
        EXPECT_TRUE(c["logprobs"]["token_logprobs"][0].is_null());
        first = false;
      }
      text += c["text"].get<std::string>();
      if (c["logprobs"].is_object()) {
        for (const json& v : c["logprobs"]["token_logprobs"]) token_logprobs.push_back(v);
      }
      finishes += c["finish_reason"].is_null() ? 0 : 1;
    }
    EXPECT_EQ(text, whole["choices"][index]["text"]) << index;
    EXPECT_EQ(token_logprobs, whole["choices"][index]["logprobs"]["token_logprobs"]) << index;
    EXPECT_EQ(finishes, 1) << index;
  }
}

TEST_F(CompletionPrompts, BatchesTheQueueCannotHoldAreRefused) {
  // --parallel 3 + --max-queue 5: eight prompts fit, nine never can.
  const HttpReply nine = server_->handle(
      post("/v1/completions", json{{"prompt", std::vector<std::string>(9, "a")}, {"max_tokens", 1}}.dump(), ""));
  EXPECT_EQ(nine.status, 400);
  EXPECT_EQ(body_of(nine)["error"]["param"], "prompt");
  EXPECT_NE(body_of(nine)["error"]["message"].get<std::string>().find("at most 8"), std::string::npos);
  const json eight = complete({{"prompt", std::vector<std::string>(8, "a")}, {"max_tokens", 1}});
  EXPECT_EQ(eight["choices"].size(), 8u);
  // max_tokens 0 is for completions only.
  EXPECT_EQ(server_
                ->handle(post("/v1/chat/completions",
                              R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", ""))
                .status,
            400);
}

// lm-evaluation-harness's remote tokenizer (vLLM's routes): detected by GET /tokenizer_info with an
// eos_token and POST /tokenize {prompt, add_special_tokens}; decodes with /detokenize's "prompt".
TEST_F(CompletionPrompts, VllmTokenizerRoutes) {
  const HttpReply info = server_->handle(get("/tokenizer_info", ""));
  ASSERT_EQ(info.status, 200) << info.body;
  const json i = body_of(info);
  ASSERT_TRUE(i["eos_token"].is_string());
  EXPECT_EQ(i["model_max_length"], 256);
  EXPECT_FALSE(i["chat_template"].get<std::string>().empty());

  const auto tokenize_body = [&](const json& body) {
    const HttpReply reply = server_->handle(post("/tokenize", body.dump(), ""));
    EXPECT_EQ(reply.status, 200) << reply.body;
    return body_of(reply);
  };
  const json plain = tokenize_body({{"prompt", "And it came to pass"}, {"add_special_tokens", false}});
  EXPECT_EQ(plain["tokens"], tokenize_body({{"content", "And it came to pass"}})["tokens"]);  // llama.cpp's
  EXPECT_EQ(plain["count"], plain["tokens"].size());
  EXPECT_EQ(plain["max_model_len"], 256);
  // vLLM adds the special tokens unless told not to; llama.cpp does not unless told to.
  const std::vector<int32_t> with_bos = tokenize_body({{"prompt", "And it came to pass"}})["tokens"];
  EXPECT_EQ(with_bos, tokenize(*server_, "And it came to pass"));
  EXPECT_EQ(with_bos.size(), plain["tokens"].size() + 1);
  // The eos_token's text is the one EOS token (the harness takes encode(eos_token)[0]).
  EXPECT_EQ(tokenize_body({{"prompt", i["eos_token"]}, {"add_special_tokens", false}})["tokens"].size(), 1u);

  const HttpReply text = server_->handle(post("/detokenize", json{{"tokens", plain["tokens"]}}.dump(), ""));
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(body_of(text)["prompt"], body_of(text)["content"]);
  EXPECT_NE(body_of(text)["prompt"].get<std::string>().find("And it came to pass"), std::string::npos);

  const HttpReply both = server_->handle(post("/tokenize", R"({"prompt": "a", "content": "a"})", ""));
  EXPECT_EQ(both.status, 400);
  EXPECT_EQ(server_->handle(post("/tokenizer_info", "{}", "")).status, 405);
}

// `suffix` asks a code model to fill a gap: [BOS] PRE prompt SUF suffix MID, the prompt and suffix
// as plain text. The answer is the middle alone; its text offsets count from the prompt's start.
TEST(CompletionFillInMiddle, SuffixBuildsThePrefixSuffixMiddlePrompt) {
  ServerOptions o;
  o.model_path = tiny_with_fill_in_middle().string();
  o.threads = 2;
  o.batch_invariant = true;
  ApiServer server(o);
  server.load();
  const auto complete = [&](const json& body) {
    const HttpReply reply = server.handle(post("/v1/completions", body.dump(), ""));
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.status == 200 ? body_of(reply) : json::object();
  };
  const auto plain_tokens = [&](const std::string& text) {
    const HttpReply r = server.handle(
        post("/tokenize", json{{"content", text}, {"add_special", false}, {"parse_special", false}}.dump(), ""));
    EXPECT_EQ(r.status, 200) << r.body;
    return body_of(r)["tokens"].get<std::vector<int32_t>>();
  };
  const std::string prefix = "In the beginning <s>", suffix = " and the earth.";
  std::vector<int32_t> ids = {1, kFimPrefix};  // BOS: ember-tiny's vocabulary adds one
  for (const int32_t id : plain_tokens(prefix)) ids.push_back(id);
  ids.push_back(kFimSuffix);
  for (const int32_t id : plain_tokens(suffix)) ids.push_back(id);
  ids.push_back(kFimMiddle);

  const json filled =
      complete({{"prompt", prefix}, {"suffix", suffix}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 0}});
  const json by_ids = complete({{"prompt", ids}, {"max_tokens", 6}, {"temperature", 0}});
  EXPECT_EQ(filled["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(filled["choices"][0]["text"], by_ids["choices"][0]["text"]);
  EXPECT_EQ(filled["choices"][0]["logprobs"]["text_offset"][0], prefix.size());  // ASCII: bytes are characters
  // Streamed, the same middle.
  HttpReply stream = server.handle(
      post("/v1/completions",
           json{{"prompt", prefix}, {"suffix", suffix}, {"max_tokens", 6}, {"temperature", 0}, {"stream", true}}.dump(),
           ""));
  ASSERT_EQ(stream.status, 200) << stream.body;
  StringSink sink;
  stream.stream(sink);
  std::string streamed;
  for (const json& event : sse_events(sink.text)) streamed += event["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, by_ids["choices"][0]["text"]);
  // A gap at the very start: an empty prompt is fine with a suffix.
  const json at_start = complete({{"prompt", ""}, {"suffix", suffix}, {"max_tokens", 2}, {"temperature", 0}});
  EXPECT_EQ(at_start["usage"]["prompt_tokens"], ids.size() - plain_tokens(prefix).size());
  // "" counts as absent: a plain completion, on this model too.
  const json empty_suffix = complete({{"prompt", prefix}, {"suffix", ""}, {"max_tokens", 2}, {"temperature", 0}});
  const json no_suffix = complete({{"prompt", prefix}, {"max_tokens", 2}, {"temperature", 0}});
  EXPECT_EQ(empty_suffix["usage"]["prompt_tokens"], no_suffix["usage"]["prompt_tokens"]);
  EXPECT_EQ(empty_suffix["choices"][0]["text"], no_suffix["choices"][0]["text"]);
  // Several prompts: each fills the same gap.
  const json two = complete({{"prompt", {prefix, prefix}}, {"suffix", suffix}, {"max_tokens", 6}, {"temperature", 0}});
  EXPECT_EQ(two["choices"][1]["text"], by_ids["choices"][0]["text"]);
}

// Without the tokens a suffix is a 400 ("" counts as absent, as clients send it for none); echo and
// token-id prompts do not combine with it.
TEST_F(CompletionPrompts, SuffixNeedsFillInMiddleTokensAndAText) {
  const auto error_param = [&](const json& body) {
    const HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
    EXPECT_EQ(reply.status, 400) << reply.body;
    return reply.status == 400 ? body_of(reply)["error"] : json::object();
  };
  const json no_tokens = error_param({{"prompt", "In the beginning"}, {"suffix", " and the earth."}});
  EXPECT_EQ(no_tokens["param"], "suffix");
  EXPECT_NE(no_tokens["message"].get<std::string>().find("fill-in-the-middle"), std::string::npos);
  EXPECT_EQ(error_param({{"prompt", "In the beginning"}, {"suffix", "x"}, {"echo", true}})["param"], "echo");
  EXPECT_EQ(error_param({{"prompt", {1, 2, 3}}, {"suffix", "x"}})["param"], "suffix");
  EXPECT_EQ(error_param({{"prompt", "In the beginning"}, {"suffix", 3}})["param"], "suffix");
  const json empty = complete({{"prompt", "In the beginning"}, {"suffix", ""}, {"max_tokens", 3}, {"temperature", 0}});
  const json none = complete({{"prompt", "In the beginning"}, {"max_tokens", 3}, {"temperature", 0}});
  EXPECT_EQ(empty["choices"][0]["text"], none["choices"][0]["text"]);
}

}  // namespace
}  // namespace ember::server
