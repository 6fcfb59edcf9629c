// Completions' logprobs follow the text: the tokens that made only a stop string are left out as
// its text is, whole and streamed alike, and each generated token's text_offset is the character
// its bytes begin at (a token inside a multi-byte character gets that character's); best_of ranks
// candidates by them. On the bundled ember-tiny through ApiServer::handle.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api_server_support.h"
#include "server/api_server.h"

namespace ember::server {
namespace {

using nlohmann::json;

const char* const kPrompt = "And it came to pass, when the king";

// A completion's text and logprobs arrays, from one reply or joined over a stream's chunks.
struct Completion {
  std::string text;
  std::vector<std::string> tokens;
  std::vector<double> logprobs;
  std::vector<size_t> offsets;
  std::string finish;

  void add(const json& choice) {
    text += choice["text"].get<std::string>();
    if (const json& lp = choice["logprobs"]; !lp.is_null()) {
      for (const json& t : lp["tokens"]) tokens.push_back(t);
      for (const json& l : lp["token_logprobs"]) logprobs.push_back(l);
      for (const json& o : lp["text_offset"]) offsets.push_back(o);
    }
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
};

class CompletionLogprobs : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.model_path = kTiny;
    o.parallel = 2;
    o.threads = 2;
    o.batch_invariant = true;  // the same tokens whatever else runs
    server_ = new ApiServer(o);
    server_->load();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static Completion whole(json body) {
    const HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
    Completion c;
    EXPECT_EQ(reply.status, 200) << reply.body;
    if (reply.status == 200) c.add(body_of(reply)["choices"][0]);
    return c;
  }
  static Completion streamed(json body) {
    body["stream"] = true;
    HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
    Completion c;
    EXPECT_EQ(reply.status, 200) << reply.body;
    if (reply.status != 200 || !reply.stream) return c;
    StringSink sink;
    reply.stream(sink);
    for (const json& event : sse_events(sink.text)) c.add(event["choices"][0]);
    return c;
  }
  // Whole and streamed give the same completion; returns it.
  static Completion both(const json& body) {
    const Completion w = whole(body), s = streamed(body);
    EXPECT_EQ(s.text, w.text);
    EXPECT_EQ(s.tokens, w.tokens);
    EXPECT_EQ(s.logprobs, w.logprobs);
    EXPECT_EQ(s.offsets, w.offsets);
    EXPECT_EQ(s.finish, w.finish);
    return w;
  }
  static ApiServer* server_;
};
ApiServer* CompletionLogprobs::server_ = nullptr;

size_t characters(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// A stop string that begins at a token's first byte leaves that token out; one that begins inside
// a token keeps it (part of its text is shown) and leaves out the next, which the stop string covers.
TEST_F(CompletionLogprobs, TheTokensOfAStopStringAreLeftOut) {
  const json body = {{"prompt", kPrompt}, {"max_tokens", 24}, {"temperature", 0}, {"logprobs", 1}};
  const Completion full = both(body);
  ASSERT_EQ(full.tokens.size(), 24u);
  ASSERT_EQ(full.offsets.size(), 24u);
  const size_t prompt_chars = characters(kPrompt);
  ASSERT_TRUE(std::all_of(full.text.begin(), full.text.end(), [](char c) { return (c & 0x80) == 0; }));
  // ASCII: each token's byte range in the text, from the offsets.
  const auto start = [&](size_t i) {
    return i < full.offsets.size() ? full.offsets[i] - prompt_chars : full.text.size();
  };
  for (size_t i = 1; i < full.offsets.size(); ++i) ASSERT_LE(full.offsets[i - 1], full.offsets[i]);

  int cases = 0;
  for (size_t k = 8; k + 2 < full.tokens.size() && cases < 2; ++k) {
    if (start(k + 1) - start(k) < 2) continue;  // a token of at least two bytes
    for (const size_t into : {size_t{0}, size_t{1}}) {
      const size_t at = start(k) + into;
      const std::string stop = full.text.substr(at, start(k + 2) - at);  // to the end of token k + 1
      if (full.text.find(stop) != at) continue;                          // it must first match there
      json with_stop = body;
      with_stop["stop"] = stop;
      const Completion c = both(with_stop);
      SCOPED_TRACE("stop '" + stop + "' from token " + std::to_string(k));
      EXPECT_EQ(c.text, full.text.substr(0, at));
      EXPECT_EQ(c.finish, "stop");
      const size_t kept = k + into;  // tokens 0..k-1, and k when the stop string begins inside it
      ASSERT_EQ(c.tokens.size(), kept);
      EXPECT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), full.tokens.begin()));
      EXPECT_TRUE(std::equal(c.logprobs.begin(), c.logprobs.end(), full.logprobs.begin()));
      EXPECT_TRUE(std::equal(c.offsets.begin(), c.offsets.end(), full.offsets.begin()));
      ++cases;
    }
  }
  EXPECT_EQ(cases, 2) << "no stop string found in: " << full.text;
}

// "é" has no token of its own in ember-tiny's vocabulary: a grammar makes the model write it as two
// byte tokens, which share the character's offset; the text after it counts it as one character.
TEST_F(CompletionLogprobs, TokensInsideACharacterGetItsOffset) {
  const std::string text = "And é, é.";
  const json body = {{"prompt", kPrompt},
                     {"max_tokens", 20},
                     {"temperature", 0},
                     {"logprobs", 0},
                     {"grammar", "root ::= \"" + text + "\""}};
  const Completion c = both(body);
  ASSERT_EQ(c.text, text);
  ASSERT_EQ(c.offsets.size(), c.tokens.size());
  ASSERT_FALSE(c.offsets.empty());
  const size_t prompt_chars = characters(kPrompt);
  EXPECT_EQ(c.offsets.front(), prompt_chars);
  // Every offset is the character count of a prefix of the text; the split characters repeat one.
  std::vector<size_t> boundaries;  // prompt_chars + characters before each character of the text
  for (size_t i = 0, n = 0; i < text.size(); ++i) {
    if ((text[i] & 0xC0) != 0x80) boundaries.push_back(prompt_chars + n++);
  }
  size_t repeats = 0;
  for (size_t i = 0; i < c.offsets.size(); ++i) {
    EXPECT_NE(std::find(boundaries.begin(), boundaries.end(), c.offsets[i]), boundaries.end()) << i;
    if (i > 0) {
      EXPECT_LE(c.offsets[i - 1], c.offsets[i]);
      repeats += c.offsets[i - 1] == c.offsets[i] ? 1 : 0;
    }
  }
  EXPECT_EQ(repeats, 2u) << "each é as two tokens";
  EXPECT_EQ(c.offsets.back(), prompt_chars + characters(text) - 1);  // the last token is "."
}

// The mean logprob of a choice's tokens.
double mean_logprob(const json& choice) {
  const json& lps = choice["logprobs"]["token_logprobs"];
  double sum = 0;
  for (const json& l : lps) sum += l.get<double>();
  return lps.empty() ? -1e300 : sum / static_cast<double>(lps.size());
}

// best_of generates that many candidates per prompt (candidate j draws with seed + j, as choice j
// of n does) and returns the n with the highest mean token logprob, best first; usage counts every
// candidate. Logprobs are returned only when asked for.
TEST_F(CompletionLogprobs, BestOfReturnsTheCandidatesWithTheHighestMeanLogprob) {
  const json base = {{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 1.5}, {"seed", 5}};
  json all_body = base;
  all_body["n"] = 4;
  all_body["logprobs"] = 0;
  const HttpReply all_reply = server_->handle(post("/v1/completions", all_body.dump(), ""));
  ASSERT_EQ(all_reply.status, 200) << all_reply.body;
  const json all = body_of(all_reply);
  std::vector<std::pair<double, std::string>> ranked;
  for (const json& c : all["choices"]) ranked.emplace_back(mean_logprob(c), c["text"]);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  ASSERT_NE(ranked[0].second, ranked[1].second) << "the candidates should differ at this temperature";

  json best_body = base;
  best_body["best_of"] = 4;
  best_body["n"] = 2;
  const HttpReply best_reply = server_->handle(post("/v1/completions", best_body.dump(), ""));
  ASSERT_EQ(best_reply.status, 200) << best_reply.body;
  const json best = body_of(best_reply);
  ASSERT_EQ(best["choices"].size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(best["choices"][k]["index"], k);
    EXPECT_EQ(best["choices"][k]["text"], ranked[k].second) << k;
    EXPECT_TRUE(best["choices"][k]["logprobs"].is_null());  // not asked for
  }
  EXPECT_EQ(best["usage"]["completion_tokens"], all["usage"]["completion_tokens"]);  // all four generated

  // With logprobs asked for, the returned choices carry theirs; several prompts each get their best.
  best_body["n"] = 1;
  best_body["logprobs"] = 0;
  best_body["prompt"] = {kPrompt, kPrompt};
  const HttpReply two_reply = server_->handle(post("/v1/completions", best_body.dump(), ""));
  ASSERT_EQ(two_reply.status, 200) << two_reply.body;
  const json two = body_of(two_reply);
  ASSERT_EQ(two["choices"].size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_EQ(two["choices"][p]["index"], p);
    EXPECT_EQ(two["choices"][p]["text"], ranked[0].second);
    EXPECT_DOUBLE_EQ(mean_logprob(two["choices"][p]), ranked[0].first);
  }
}

TEST_F(CompletionLogprobs, BestOfBelowNOrStreamedIsRefused) {
  const auto status_and_param = [&](const json& body) {
    const HttpReply reply = server_->handle(post("/v1/completions", body.dump(), ""));
    return std::pair{reply.status, reply.status == 400 ? body_of(reply)["error"]["param"] : json()};
  };
  EXPECT_EQ(status_and_param({{"prompt", kPrompt}, {"n", 3}, {"best_of", 2}}), std::pair(400, json("best_of")));
  EXPECT_EQ(status_and_param({{"prompt", kPrompt}, {"best_of", 2}, {"stream", true}}), std::pair(400, json("best_of")));
  EXPECT_EQ(status_and_param({{"prompt", kPrompt}, {"best_of", 0}}), std::pair(400, json("best_of")));
  EXPECT_EQ(status_and_param({{"prompt", kPrompt}, {"best_of", 129}}), std::pair(400, json("best_of")));
  // Equal to n it changes nothing, streamed or not.
  const json same = {{"prompt", kPrompt}, {"n", 2}, {"best_of", 2}, {"max_tokens", 2}, {"stream", true}};
  EXPECT_EQ(status_and_param(same).first, 200);
}

}  // namespace
}  // namespace ember::server
