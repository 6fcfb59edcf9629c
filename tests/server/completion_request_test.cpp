// parse_completion_request: OpenAI's chat and completion parameters, llama.cpp's sampler
// extensions and the structured-output fields reach CompletionRequest; every wrong type, out-of-range
// value or constraint that does not compile is a 400 naming the field.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/sampler_chain.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/tool_call_request.h"

namespace ember::server {
namespace {

using nlohmann::json;

constexpr int32_t kVocab = 1000;

CompletionRequest chat(const json& body) { return parse_completion_request(body, Endpoint::kChatCompletions, kVocab); }
CompletionRequest completion(const json& body) {
  return parse_completion_request(body, Endpoint::kCompletions, kVocab);
}

json user_says(const std::string& text) { return {{"messages", {{{"role", "user"}, {"content", text}}}}}; }

// The ApiError a parse throws; fails the test when none comes.
ApiError error_of(const json& body, Endpoint endpoint = Endpoint::kChatCompletions) {
  try {
    parse_completion_request(body, endpoint, kVocab);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body.dump();
  return ApiError(0, "", "", "");
}

TEST(CompletionRequest, MinimalChatTakesTheEngineDefaults) {
  const CompletionRequest r = chat(user_says("Hello"));
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "Hello");
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_FALSE(r.seed.has_value());
  const SamplingParams defaults;
  EXPECT_EQ(r.sampling.temperature, defaults.temperature);
  EXPECT_EQ(r.sampling.top_k, defaults.top_k);
  EXPECT_EQ(r.sampling.top_p, defaults.top_p);
  EXPECT_TRUE(r.sampling.logit_bias.empty());
}

TEST(CompletionRequest, EveryOpenAiParameterArrives) {
  json body = user_says("Hi");
  body["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array()}});
  body["messages"].push_back(
      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}});
  body.update({{"model", "ember-tiny"},
               {"max_tokens", 7},
               {"n", 3},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"logprobs", true},
               {"top_logprobs", 5},
               {"stop", {"\n\n", "END"}},
               {"seed", 42},
               {"temperature", 0.5},
               {"top_p", 0.9},
               {"presence_penalty", -1.5},
               {"frequency_penalty", 2},
               {"logit_bias", {{"12", 3.5}, {"999", -100}}},
               {"user", "u1"},
               {"some_future_field", {{"ignored", true}}}});
  const CompletionRequest r = chat(body);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].role, "assistant");
  EXPECT_EQ(r.messages[1].content, "");
  EXPECT_EQ(r.messages[2].content, "ab");
  EXPECT_EQ(r.model, "ember-tiny");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, 5);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.seed, 42u);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, -1.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, 2.0f);
  ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r.sampling.logit_bias[0], (std::pair<int32_t, float>{12, 3.5f}));
  EXPECT_EQ(r.sampling.logit_bias[1].first, 999);
  EXPECT_TRUE(std::isinf(r.sampling.logit_bias[1].second) && r.sampling.logit_bias[1].second < 0);  // -100 bans
  EXPECT_EQ(r.user, "u1");
}

TEST(CompletionRequest, ExtensionsReachTheSamplerChain) {
  json body = user_says("x");
  body.update({{"top_k", 5},
               {"min_p", 0.1},
               {"typical_p", 0.7},
               {"repeat_penalty", 1.3},
               {"repeat_last_n", -1},
               {"top_n_sigma", 2},
               {"xtc_probability", 0.5},
               {"xtc_threshold", 0.2},
               {"dry_multiplier", 0.8},
               {"dry_base", 1.5},
               {"dry_allowed_length", 3},
               {"dry_penalty_last_n", 128},
               {"dynatemp_range", 0.3},
               {"dynatemp_exponent", 1.5},
               {"mirostat", 2},
               {"mirostat_tau", 4},
               {"mirostat_eta", 0.2},
               {"ignore_eos", true}});
  const CompletionRequest r = chat(body);
  const SamplingParams& s = r.sampling;
  EXPECT_EQ(s.top_k, 5);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_FLOAT_EQ(s.typical_p, 0.7f);
  EXPECT_FLOAT_EQ(s.repeat_penalty, 1.3f);
  EXPECT_EQ(s.penalty_last_n, -1);
  EXPECT_FLOAT_EQ(s.top_n_sigma, 2.0f);
  EXPECT_FLOAT_EQ(s.xtc_probability, 0.5f);
  EXPECT_FLOAT_EQ(s.xtc_threshold, 0.2f);
  EXPECT_FLOAT_EQ(s.dry_multiplier, 0.8f);
  EXPECT_FLOAT_EQ(s.dry_base, 1.5f);
  EXPECT_EQ(s.dry_allowed_length, 3);
  EXPECT_EQ(s.dry_penalty_last_n, 128);
  EXPECT_FLOAT_EQ(s.dynatemp_range, 0.3f);
  EXPECT_FLOAT_EQ(s.dynatemp_exponent, 1.5f);
  EXPECT_EQ(s.mirostat, 2);
  EXPECT_FLOAT_EQ(s.mirostat_tau, 4.0f);
  EXPECT_FLOAT_EQ(s.mirostat_eta, 0.2f);
  EXPECT_TRUE(r.ignore_eos);
}

TEST(CompletionRequest, NullIsAbsentAndIntegralFloatsAreIntegers) {
  json body = user_says("x");
  body.update({{"temperature", nullptr}, {"stop", nullptr}, {"n", 2.0}, {"max_tokens", nullptr}});
  const CompletionRequest r = chat(body);
  EXPECT_EQ(r.sampling.temperature, SamplingParams{}.temperature);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.max_tokens, -1);
}

// The edges of every range are accepted, and what they become passes the engine's own check.
TEST(CompletionRequest, RangeEdgesAreAcceptedAndTheEngineTakesThem) {
  for (const double edge : {0.0, 1.0}) {
    json body = user_says("x");
    body.update({{"temperature", edge * 2},
                 {"top_p", edge},
                 {"typical_p", edge},
                 {"min_p", edge},
                 {"presence_penalty", edge * 4 - 2},
                 {"frequency_penalty", 2 - edge * 4},
                 {"n", edge == 0 ? 1 : kMaxChoices},
                 {"logprobs", true},
                 {"top_logprobs", edge == 0 ? 0 : kMaxTopLogprobs},
                 {"logit_bias", {{"0", -100}, {"999", 100}}},
                 {"top_k", edge == 0 ? -1 : 1},
                 {"xtc_probability", edge},
                 {"xtc_threshold", edge},
                 {"repeat_last_n", edge == 0 ? -1 : 0},
                 {"mirostat_eta", edge},
                 {"dry_base", 1}});
    const CompletionRequest r = chat(body);
    EXPECT_NO_THROW(validate(r.sampling)) << body.dump();
    EXPECT_GT(r.sampling.top_p, 0.0f);
    EXPECT_GE(r.sampling.top_k, 0);
  }
  // top_p 0 keeps the best token only; top_k -1 is off.
  json body = user_says("x");
  body.update({{"top_p", 0}, {"top_k", -1}});
  const CompletionRequest r = chat(body);
  EXPECT_EQ(r.sampling.top_p, std::numeric_limits<float>::min());
  EXPECT_EQ(r.sampling.top_k, 0);
}

TEST(CompletionRequest, SeedsCoverUint64AndMinusOneIsRandom) {
  const auto seed_of = [](const json& seed) {
    json body = user_says("x");
    body["seed"] = seed;
    return chat(body).seed;
  };
  EXPECT_EQ(seed_of(0), 0u);
  EXPECT_EQ(seed_of(-1), std::nullopt);
  EXPECT_EQ(seed_of(uint64_t{1} << 63), uint64_t{1} << 63);
  EXPECT_EQ(seed_of(std::numeric_limits<uint64_t>::max()), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(seed_of(12.0), 12u);
}

TEST(CompletionRequest, LogprobsWithoutTopLogprobsIsZeroAlternatives) {
  json body = user_says("x");
  body["logprobs"] = true;
  EXPECT_EQ(chat(body).logprobs, 0);
  body["logprobs"] = false;
  EXPECT_EQ(chat(body).logprobs, -1);
}

TEST(CompletionRequest, DrySequenceBreakersReplaceTheDefaults) {
  json body = user_says("x");
  body["dry_sequence_breakers"] = {"\n", "###"};
  EXPECT_EQ(chat(body).sampling.dry_sequence_breakers, (std::vector<std::string>{"\n", "###"}));
}

TEST(CompletionRequest, MaxCompletionTokensWins) {
  json body = user_says("x");
  body.update({{"max_tokens", 5}, {"max_completion_tokens", 9}});
  EXPECT_EQ(chat(body).max_tokens, 9);
}

// llama.cpp's n_predict counts where max_tokens does not come; -1 is no limit.
TEST(CompletionRequest, NPredictIsMaxTokensWhereItIsAbsent) {
  json body = user_says("x");
  body["n_predict"] = 7;
  EXPECT_EQ(chat(body).max_tokens, 7);
  body["n_predict"] = -1;
  EXPECT_EQ(chat(body).max_tokens, -1);
  body["max_tokens"] = 5;
  EXPECT_EQ(chat(body).max_tokens, 5);
  EXPECT_EQ(completion({{"prompt", "x"}, {"n_predict", 0}}).max_tokens, 0);
  EXPECT_EQ(error_of({{"messages", body["messages"]}, {"n_predict", 0}}).param(), "n_predict");
  EXPECT_EQ(error_of({{"messages", body["messages"]}, {"n_predict", -2}}).param(), "n_predict");
  EXPECT_EQ(error_of({{"messages", body["messages"]}, {"n_predict", "5"}}).param(), "n_predict");
}

// llama.cpp's samplers: the truncation steps' order, by name ("penalties" alone, or none: none of
// them).
TEST(CompletionRequest, SamplersOrderTheChain) {
  json body = user_says("x");
  body["samplers"] = {"min_p", "top_k", "temperature"};
  EXPECT_EQ(chat(body).sampling.order,
            (std::vector<SamplerStep>{SamplerStep::kMinP, SamplerStep::kTopK, SamplerStep::kTemperature}));
  body["samplers"] = {"penalties"};
  EXPECT_EQ(chat(body).sampling.order, std::vector<SamplerStep>{SamplerStep::kTemperature});
  body["samplers"] = json::array();  // as "penalties" alone (llama.vim's cache warming sends it)
  EXPECT_EQ(chat(body).sampling.order, std::vector<SamplerStep>{SamplerStep::kTemperature});
  body["samplers"] = {"top_k", "top_p", "infill"};
  EXPECT_EQ(chat(body).sampling.order,
            (std::vector<SamplerStep>{SamplerStep::kTopK, SamplerStep::kTopP, SamplerStep::kInfill}));
  for (const json& bad : {json("top_k;min_p"), json::array({"top_k", "bogus"}), json::array({1})}) {
    body["samplers"] = bad;
    const ApiError e = error_of(body);
    EXPECT_TRUE(e.param() == "samplers" || e.param() == "samplers[0]") << bad.dump() << " " << e.param();
  }
}

// The texts and token ids of a request's prompts, in order.
std::vector<std::string> prompt_texts(const CompletionRequest& r) {
  std::vector<std::string> texts;
  for (const PromptInput& p : r.prompts) texts.push_back(p.text);
  return texts;
}
std::vector<std::vector<int32_t>> prompt_ids(const CompletionRequest& r) {
  std::vector<std::vector<int32_t>> ids;
  for (const PromptInput& p : r.prompts) ids.push_back(p.tokens);
  return ids;
}

TEST(CompletionRequest, CompletionPrompts) {
  EXPECT_EQ(prompt_texts(completion({{"prompt", "Once"}})), std::vector<std::string>{"Once"});
  EXPECT_EQ(prompt_texts(completion({{"prompt", {"Once"}}})), std::vector<std::string>{"Once"});
  const CompletionRequest ids = completion({{"prompt", {1, 2, 999}}, {"logprobs", 3}, {"echo", true}});
  EXPECT_EQ(prompt_ids(ids), (std::vector<std::vector<int32_t>>{{1, 2, 999}}));
  EXPECT_EQ(prompt_texts(ids), std::vector<std::string>{""});
  EXPECT_EQ(ids.logprobs, 3);
  EXPECT_TRUE(ids.echo);
}

// Several prompts (OpenAI's batch): strings, or arrays of token ids (what lm-evaluation-harness
// sends), in order; max_tokens 0 with echo scores them.
TEST(CompletionRequest, SeveralPrompts) {
  EXPECT_EQ(prompt_texts(completion({{"prompt", {"a", "b c", "d"}}})), (std::vector<std::string>{"a", "b c", "d"}));
  const CompletionRequest r = completion({{"prompt", {{5, 6}, {7}}}, {"max_tokens", 0}, {"echo", true}});
  EXPECT_EQ(prompt_ids(r), (std::vector<std::vector<int32_t>>{{5, 6}, {7}}));
  EXPECT_EQ(r.max_tokens, 0);
  json prompts = json::array();
  for (size_t i = 0; i < kMaxPrompts; ++i) prompts.push_back("x");
  EXPECT_EQ(completion({{"prompt", prompts}}).prompts.size(), kMaxPrompts);
}

// Each bad body, the param the error must name, and a piece of its message.
struct BadCase {
  json body;
  std::string param;
  std::string says;
};

TEST(CompletionRequest, BadChatRequestsNameTheField) {
  const auto with = [](json extra) {
    json body = user_says("x");
    body.update(extra);
    return body;
  };
  const std::vector<BadCase> cases = {
      {json::array(), "", "JSON object"},
      {json::object(), "messages", "required"},
      {{{"messages", json::array()}}, "messages", "non-empty array"},
      {{{"messages", "hi"}}, "messages", "non-empty array"},
      {{{"messages", {42}}}, "messages[0]", "object"},
      {{{"messages", {{{"content", "x"}}}}}, "messages[0].role", "missing"},
      {{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "messages[0].role", "wizard"},
      {{{"messages", {{{"role", "user"}}}}}, "messages[0].content", "missing"},
      {{{"messages", {{{"role", "user"}, {"content", "x"}, {"name", 5}}}}}, "messages[0].name", "string"},
      {{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content", "content parts"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}},
       "messages[0].content[0].type",
       "only \"text\""},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}}}}}}}},
       "messages[0].content[0].text",
       "missing"},
      {with({{"model", 3}}), "model", "string"},
      {with({{"temperature", "hot"}}), "temperature", "number"},
      {with({{"temperature", 2.5}}), "temperature", "between"},
      {with({{"top_p", -0.1}}), "top_p", "between"},
      {with({{"presence_penalty", 3}}), "presence_penalty", "between"},
      {with({{"frequency_penalty", true}}), "frequency_penalty", "number"},
      {with({{"n", 0}}), "n", "between"},
      {with({{"n", 129}}), "n", "between"},
      {with({{"n", 1.5}}), "n", "integer"},
      {with({{"max_tokens", 0}}), "max_tokens", "between"},
      {with({{"max_completion_tokens", "9"}}), "max_completion_tokens", "integer"},
      {with({{"stream", 1}}), "stream", "boolean"},
      {with({{"stream_options", true}}), "stream_options", "object"},
      {with({{"stream_options", {{"include_usage", true}}}}), "stream_options", "'stream': true"},
      {with({{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}}), "stream_options.include_usage",
       "boolean"},
      {with({{"logprobs", 1}}), "logprobs", "boolean"},
      {with({{"top_logprobs", 2}}), "top_logprobs", "needs"},
      {with({{"logprobs", true}, {"top_logprobs", 21}}), "top_logprobs", "between"},
      {with({{"stop", 5}}), "stop", "string or an array"},
      {with({{"stop", {"a", 1}}}), "stop[1]", "string"},
      {with({{"stop", ""}}), "stop", "empty"},
      {with({{"stop", std::vector<std::string>(17, "s")}}), "stop", "at most 16"},
      {with({{"seed", "42"}}), "seed", "integer"},
      {with({{"seed", 1e30}}), "seed", "between"},
      {with({{"seed", -2}}), "seed", "between"},
      {with({{"seed", 9223372036854775807.0}}), "seed", "between"},  // 2^63 as a double: no UB cast
      {with({{"logit_bias", {1, 2}}}), "logit_bias", "object"},
      {with({{"logit_bias", {{"abc", 1}}}}), "logit_bias.abc", "not a token id"},
      {with({{"logit_bias", {{"1000", 1}}}}), "logit_bias.1000", "not a token id"},
      {with({{"logit_bias", {{"-1", 1}}}}), "logit_bias.-1", "not a token id"},
      {with({{"logit_bias", {{"99999999999999999999", 1}}}}), "logit_bias.99999999999999999999", "not a token id"},
      {with({{"logit_bias", {{"012", 1}}}}), "logit_bias.012", "not a token id"},
      {with({{"logit_bias", {{"5", 101}}}}), "logit_bias.5", "between"},
      {with({{"logit_bias", {{"5", "x"}}}}), "logit_bias.5", "number"},
      {with({{"user", 7}}), "user", "string"},
      {with({{"top_k", 1.5}}), "top_k", "integer"},
      {with({{"min_p", 1.5}}), "min_p", "between"},
      {with({{"repeat_penalty", -1}}), "repeat_penalty", "between"},
      {with({{"repeat_penalty", 0}}), "repeat_penalty", "greater than 0"},
      {with({{"dry_sequence_breakers", "\n"}}), "dry_sequence_breakers", "array"},
      {with({{"dry_sequence_breakers", {"a", ""}}}), "dry_sequence_breakers[1]", "empty"},
      {with({{"repeat_last_n", -2}}), "repeat_last_n", "between"},
      {with({{"dry_base", 0.5}}), "dry_base", "between"},
      {with({{"mirostat", 1}}), "mirostat", "not supported"},
      {with({{"mirostat", 3}}), "mirostat", "between"},
      {with({{"ignore_eos", "no"}}), "ignore_eos", "boolean"},
  };
  for (const BadCase& c : cases) {
    const ApiError e = error_of(c.body);
    EXPECT_EQ(e.status(), 400) << c.body.dump();
    EXPECT_EQ(e.type(), "invalid_request_error") << c.body.dump();
    EXPECT_EQ(e.param(), c.param) << c.body.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body.dump() << ": " << e.what();
  }
}

TEST(CompletionRequest, BadCompletionRequestsNameTheField) {
  const std::vector<BadCase> cases = {
      {json::object(), "prompt", "required"},
      {{{"prompt", ""}}, "prompt", "empty"},
      {{{"prompt", {"a", {1}}}}, "prompt", "prompt[1] is not of the first's kind"},
      {{{"prompt", {{1}, "a"}}}, "prompt", "one kind throughout"},
      {{{"prompt", {true, "a"}}}, "prompt", "an array of arrays of token ids"},
      {{{"prompt", {"a", ""}}}, "prompt", "'prompt[1]' is empty"},
      {{{"prompt", {{1}, json::array()}}}, "prompt", "'prompt[1]' is empty"},
      {{{"prompt", {{1}, {2, 1000}}}}, "prompt[1][1]", "between"},
      {{{"prompt", json::array()}}, "prompt", "an array of arrays of token ids"},
      {{{"prompt", 7}}, "prompt", "an array of arrays of token ids"},
      {{{"prompt", {1, 1000}}}, "prompt[1]", "between"},
      {{{"prompt", {1, "a"}}}, "prompt[1]", "integer"},
      {{{"prompt", "x"}, {"max_tokens", -1}}, "max_tokens", "between 0"},
      {{{"prompt", "x"}, {"logprobs", true}}, "logprobs", "integer"},
      {{{"prompt", "x"}, {"logprobs", 21}}, "logprobs", "between"},
      {{{"prompt", "x"}, {"echo", "yes"}}, "echo", "boolean"},
  };
  for (const BadCase& c : cases) {
    const ApiError e = error_of(c.body, Endpoint::kCompletions);
    EXPECT_EQ(e.status(), 400) << c.body.dump();
    EXPECT_EQ(e.param(), c.param) << c.body.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body.dump() << ": " << e.what();
  }
}

// Structured output: response_format, json_schema, grammar, regex.

using Kind = OutputConstraint::Kind;

json person_schema() {
  return json::parse(R"({"type": "object",
                         "properties": {"name": {"type": "string", "maxLength": 20},
                                        "age": {"type": "integer", "minimum": 0, "maximum": 150}},
                         "required": ["name", "age"], "additionalProperties": false})");
}

json with_format(json response_format) {
  json body = user_says("x");
  body["response_format"] = std::move(response_format);
  return body;
}

TEST(CompletionRequest, ResponseFormatTextIsNoConstraint) {
  EXPECT_EQ(chat(user_says("x")).constraint.kind, Kind::kNone);
  EXPECT_EQ(chat(with_format({{"type", "text"}})).constraint.kind, Kind::kNone);
  json body = with_format({{"type", "text"}});
  body["grammar"] = "";  // llama.cpp's clients send "" for no grammar
  body["regex"] = nullptr;
  EXPECT_EQ(chat(body).constraint.kind, Kind::kNone);
}

TEST(CompletionRequest, ResponseFormatJsonObject) {
  const OutputConstraint c = chat(with_format({{"type", "json_object"}})).constraint;
  EXPECT_EQ(c.kind, Kind::kJsonObject);
  EXPECT_TRUE(c.text.empty());
  // llama.cpp's form: a schema beside json_object.
  const OutputConstraint with_schema =
      chat(with_format({{"type", "json_object"}, {"schema", {{"type", "array"}}}})).constraint;
  EXPECT_EQ(with_schema.kind, Kind::kJsonSchema);
  EXPECT_EQ(json::parse(with_schema.text), json({{"type", "array"}}));
}

TEST(CompletionRequest, ResponseFormatJsonSchema) {
  const json format = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", "person"}, {"description", "a person"}, {"strict", true}, {"schema", person_schema()}}}};
  const OutputConstraint c = chat(with_format(format)).constraint;
  EXPECT_EQ(c.kind, Kind::kJsonSchema);
  EXPECT_TRUE(c.strict);
  EXPECT_EQ(json::parse(c.text), person_schema());

  // strict defaults to false; without a schema, any JSON value ({}).
  const OutputConstraint loose =
      chat(with_format({{"type", "json_schema"}, {"json_schema", {{"name", "Any_thing-2"}}}})).constraint;
  EXPECT_EQ(loose.kind, Kind::kJsonSchema);
  EXPECT_FALSE(loose.strict);
  EXPECT_EQ(loose.text, "{}");
  // The longest name OpenAI allows.
  const json long_name = {{"type", "json_schema"}, {"json_schema", {{"name", std::string(64, 'n')}}}};
  EXPECT_EQ(chat(with_format(long_name)).constraint.kind, Kind::kJsonSchema);
}

TEST(CompletionRequest, SchemaKeysKeepTheClientsOrderGivenTheBodyText) {
  // Properties are generated in schema order: "name" must stay before "age", which the sorted
  // (std::map) body would reverse.
  const std::string text = R"({"messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema":
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}}})";
  const json body = json::parse(text);
  const std::string ordered = parse_completion_request(body, Endpoint::kChatCompletions, kVocab, text).constraint.text;
  EXPECT_LT(ordered.find("\"name\""), ordered.find("\"age\"")) << ordered;
  EXPECT_EQ(json::parse(ordered), body["response_format"]["json_schema"]["schema"]);
  const std::string sorted = chat(body).constraint.text;
  EXPECT_GT(sorted.find("\"name\""), sorted.find("\"age\"")) << sorted;

  const std::string llama_text =
      R"({"prompt": "x", "json_schema": {"properties": {"zeta": {"type": "null"}, "alpha": {"type": "null"}}}})";
  const std::string llama =
      parse_completion_request(json::parse(llama_text), Endpoint::kCompletions, kVocab, llama_text).constraint.text;
  EXPECT_LT(llama.find("zeta"), llama.find("alpha")) << llama;
}

TEST(CompletionRequest, ConstraintExtensionsOnBothEndpoints) {
  for (const Endpoint endpoint : {Endpoint::kChatCompletions, Endpoint::kCompletions}) {
    json base = endpoint == Endpoint::kChatCompletions ? user_says("x") : json{{"prompt", "x"}};
    const auto constraint = [&](const json& extra) {
      json body = base;
      body.update(extra);
      return parse_completion_request(body, endpoint, kVocab).constraint;
    };
    const OutputConstraint gbnf = constraint({{"grammar", "root ::= \"yes\" | \"no\""}});
    EXPECT_EQ(gbnf.kind, Kind::kGbnf);
    EXPECT_EQ(gbnf.text, "root ::= \"yes\" | \"no\"");
    const OutputConstraint regex = constraint({{"regex", "[0-9]{3}-[0-9]{4}"}});
    EXPECT_EQ(regex.kind, Kind::kRegex);
    EXPECT_EQ(regex.text, "[0-9]{3}-[0-9]{4}");
    const OutputConstraint schema = constraint({{"json_schema", person_schema()}});
    EXPECT_EQ(schema.kind, Kind::kJsonSchema);
    EXPECT_FALSE(schema.strict);
    EXPECT_EQ(json::parse(schema.text), person_schema());
    // response_format is taken on /v1/completions too.
    EXPECT_EQ(constraint({{"response_format", {{"type", "json_object"}}}}).kind, Kind::kJsonObject);
  }
}

TEST(CompletionRequest, BadStructuredOutputRequestsNameTheField) {
  const auto with = [](json extra) {
    json body = user_says("x");
    body.update(extra);
    return body;
  };
  const auto schema_format = [](json json_schema) {
    return json{{"response_format", {{"type", "json_schema"}, {"json_schema", std::move(json_schema)}}}};
  };
  json unique_items = person_schema();
  unique_items["properties"]["tags"] = {{"type", "array"}, {"uniqueItems", true}};
  json optional_age = person_schema();
  optional_age["required"] = {"name"};
  const std::vector<BadCase> cases = {
      // Shapes.
      {with({{"response_format", "json"}}), "response_format", "object"},
      {with({{"response_format", json::object()}}), "response_format.type", "missing"},
      {with({{"response_format", {{"type", 1}}}}), "response_format.type", "string"},
      {with({{"response_format", {{"type", "xml"}}}}), "response_format.type", "text, json_object or json_schema"},
      {with({{"response_format", {{"type", "json_object"}, {"schema", "{}"}}}}), "response_format.schema", "object"},
      {with({{"response_format", {{"type", "json_schema"}}}}), "response_format.json_schema", "required"},
      {with(schema_format(5)), "response_format.json_schema", "object"},
      {with(schema_format({{"schema", person_schema()}})), "response_format.json_schema.name", "missing"},
      {with(schema_format({{"name", 7}})), "response_format.json_schema.name", "string"},
      {with(schema_format({{"name", ""}})), "response_format.json_schema.name", "a-z, A-Z, 0-9"},
      {with(schema_format({{"name", "my schema"}})), "response_format.json_schema.name", "\"my schema\""},
      {with(schema_format({{"name", std::string(65, 'n')}})), "response_format.json_schema.name", "1 to 64"},
      {with(schema_format({{"name", "p"}, {"description", 3}})), "response_format.json_schema.description", "string"},
      {with(schema_format({{"name", "p"}, {"strict", "yes"}})), "response_format.json_schema.strict", "boolean"},
      {with(schema_format({{"name", "p"}, {"schema", json::array()}})), "response_format.json_schema.schema", "object"},
      {with({{"json_schema", "{\"type\": \"object\"}"}}), "json_schema", "object"},
      {with({{"grammar", 5}}), "grammar", "string"},
      {with({{"regex", true}}), "regex", "string"},
      // Constraints the compiler refuses: its message, after the field's.
      {with(schema_format({{"name", "person"}, {"schema", unique_items}})), "response_format",
       "Invalid schema for response_format 'person': "},
      {with(schema_format({{"name", "person"}, {"schema", unique_items}})), "response_format",
       "/properties/tags/uniqueItems: 'uniqueItems' is not supported"},
      {with(schema_format({{"name", "person"}, {"strict", true}, {"schema", optional_age}})), "response_format",
       "required"},
      {with(schema_format({{"name", "any"}, {"strict", true}})), "response_format", "object"},
      {with({{"json_schema", {{"type", "string"}, {"pattern", "(?<=a)b"}}}}), "json_schema", "/pattern"},
      {with({{"grammar", "root ::= (\"yes\" | \"no\""}}), "grammar", "grammar:1:"},
      {with({{"grammar", "root ::= answer\nanswer ::= \"yes\" |\n  [a-"}}), "grammar", "grammar:3:"},
      {with({{"regex", "a(b"}}), "regex", "regex:"},
      // Two constraints: the second named, both in the message.
      {with({{"response_format", {{"type", "json_object"}}}, {"grammar", "root ::= \"a\""}}), "grammar",
       "'response_format' and 'grammar'"},
      {with({{"json_schema", person_schema()}, {"regex", "a"}}), "regex", "'json_schema' and 'regex'"},
      {with({{"grammar", "root ::= \"a\""}, {"regex", "a"}}), "regex", "'grammar' and 'regex'"},
      {with({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "p"}}}}},
             {"json_schema", person_schema()}}),
       "json_schema", "'response_format' and 'json_schema'"},
  };
  for (const BadCase& c : cases) {
    const ApiError e = error_of(c.body);
    EXPECT_EQ(e.status(), 400) << c.body.dump();
    EXPECT_EQ(e.type(), "invalid_request_error") << c.body.dump();
    EXPECT_EQ(e.param(), c.param) << c.body.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body.dump() << ": " << e.what();
  }
  // On /v1/completions too.
  const ApiError e = error_of({{"prompt", "x"}, {"grammar", "root ::= ["}}, Endpoint::kCompletions);
  EXPECT_EQ(e.param(), "grammar");
  EXPECT_NE(std::string(e.what()).find("grammar:1:"), std::string::npos) << e.what();
}

// Tool calling: tools, tool_choice, parallel_tool_calls and the history's tool_calls / tool results.
json weather_tools() {
  return json::parse(R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
      {"type": "function", "function": {"name": "get_time"}}])");
}

TEST(CompletionRequest, ParsesTools) {
  json body = user_says("hi");
  body["tools"] = weather_tools();
  CompletionRequest r = chat(body);
  ASSERT_EQ(r.tools.specs.size(), 2u);
  EXPECT_EQ(r.tools.specs[0].name, "get_weather");
  EXPECT_EQ(r.tools.specs[0].parameters["required"][0], "city");
  EXPECT_EQ(r.tools.specs[1].name, "get_time");
  EXPECT_EQ(r.tools.choice.mode, tool_calls::ToolChoice::Mode::kAuto);  // OpenAI's default with tools
  EXPECT_TRUE(r.tools.parallel);
  EXPECT_TRUE(r.tools.calls_allowed());
  EXPECT_EQ(r.tools.tools.size(), 2u);  // the template's `tools`, as sent

  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  body["parallel_tool_calls"] = false;
  r = chat(body);
  EXPECT_EQ(r.tools.choice.mode, tool_calls::ToolChoice::Mode::kNamed);
  EXPECT_EQ(r.tools.choice.name, "get_time");
  EXPECT_FALSE(r.tools.parallel);
  body["tool_choice"] = "required";
  EXPECT_EQ(chat(body).tools.choice.mode, tool_calls::ToolChoice::Mode::kRequired);
  body["tool_choice"] = "none";
  EXPECT_FALSE(chat(body).tools.calls_allowed());
  // No tools: nothing to call; the completions endpoint ignores the fields.
  EXPECT_FALSE(chat(user_says("hi")).tools.active());
  EXPECT_FALSE(completion({{"prompt", "x"}, {"tools", 3}}).tools.active());
}

TEST(CompletionRequest, ToolsKeepTheClientsKeyOrder) {
  const std::string text = R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function",
      "function": {"name": "f", "parameters": {"type": "object", "properties": {"zeta": {}, "alpha": {}}}}}]})";
  const CompletionRequest r = parse_completion_request(json::parse(text), Endpoint::kChatCompletions, kVocab, text);
  const auto& props = r.tools.specs[0].parameters["properties"];
  ASSERT_EQ(props.size(), 2u);
  EXPECT_EQ(props.begin().key(), "zeta");
  EXPECT_EQ(r.tools.tools[0].begin().key(), "type");
}

// A JSON object of `n` keys k0..k{n-1}.
std::string many_keys(size_t n) {
  std::string text = "{";
  for (size_t i = 0; i < n; ++i) text += fmt::format("{}\"k{}\": {}", i == 0 ? "" : ",", i, i);
  return text + "}";
}

TEST(CompletionRequest, HugeObjectsAreCheapToParse) {
  // The body is parsed again for the key order: once quadratic in an object's keys (100k keys
  // took ~10 s). Next to the tools, any size parses in linear time...
  const auto start = std::chrono::steady_clock::now();
  std::string text = R"({"messages": [{"role": "user", "content": "hi"}], "metadata": )" + many_keys(100000) +
                     R"(, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                     "properties": {"zeta": {}, "alpha": {}}}}}]})";
  const CompletionRequest r = parse_completion_request(json::parse(text), Endpoint::kChatCompletions, kVocab, text);
  EXPECT_EQ(r.tools.specs[0].parameters["properties"].begin().key(), "zeta");
  // ... and inside the tools or a schema, more than 5000 keys are refused.
  text = R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function":
      {"name": "f", "parameters": {"type": "object", "properties": )" +
         many_keys(20000) + "}}}]}";
  try {
    parse_completion_request(json::parse(text), Endpoint::kChatCompletions, kVocab, text);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), "tools");
    EXPECT_NE(std::string(e.what()).find("more than 5000 keys"), std::string::npos) << e.what();
  }
  text = R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema",
      "json_schema": {"name": "n", "schema": {"type": "object", "properties": )" +
         many_keys(20000) + "}}}}";
  try {
    parse_completion_request(json::parse(text), Endpoint::kChatCompletions, kVocab, text);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param(), "response_format.json_schema.schema");
  }
  // A bound on complexity, not a speed: quadratic parsing took ~10 s here (and several times that
  // under ASan), linear takes ~1 s under ASan; a loaded 2-core CI machine has read 3.3 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

TEST(CompletionRequest, ParsesToolCallHistory) {
  const json body = json::parse(R"({"messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"C\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"}]})");
  const CompletionRequest r = chat(body);
  ASSERT_EQ(r.messages.size(), 3u);
  const RequestMessage& a = r.messages[1];
  EXPECT_FALSE(a.has_content);
  ASSERT_TRUE(a.tool_calls.is_array());
  EXPECT_EQ(a.tool_calls[0]["id"], "call_1");
  EXPECT_EQ(a.tool_calls[0]["function"]["name"], "get_weather");
  // Parsed into an object for the template, keys in the order sent.
  EXPECT_TRUE(a.tool_calls[0]["function"]["arguments"].is_object());
  EXPECT_EQ(a.tool_calls[0]["function"]["arguments"].begin().key(), "city");
  EXPECT_EQ(r.messages[2].tool_call_id, "call_1");
  EXPECT_EQ(r.messages[2].content, "21 degrees");
}

TEST(CompletionRequest, EmptyHistoryToolCallsAreAbsent) {
  const json body = json::parse(R"({"messages": [{"role": "user", "content": "hi"},
      {"role": "assistant", "content": "hello", "tool_calls": []}]})");
  const CompletionRequest r = chat(body);
  EXPECT_TRUE(r.messages[1].tool_calls.is_null());
  EXPECT_EQ(r.messages[1].content, "hello");
}

TEST(CompletionRequest, GenericInstructionsListTheTools) {
  json body = user_says("hi");
  body["tools"] = weather_tools();
  std::string text = generic_tool_instructions(chat(body).tools);
  EXPECT_NE(text.find("- get_weather: Weather"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("required":["city"])"), std::string::npos) << text;
  EXPECT_NE(text.find("- get_time"), std::string::npos) << text;
  EXPECT_NE(text.find("with `response`"), std::string::npos) << text;
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  text = generic_tool_instructions(chat(body).tools);
  EXPECT_EQ(text.find("get_weather"), std::string::npos) << text;
  EXPECT_EQ(text.find("with `response`"), std::string::npos) << text;
}

TEST(CompletionRequest, RefusesBadTools) {
  struct Case {
    json patch;  // merged into a chat body
    std::string param, says;
  };
  const json tools = weather_tools();
  const json call = json::parse(R"({"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": "{\"city\": "}}]})");
  const Case cases[] = {
      {{{"tools", "x"}}, "tools", "must be an array"},
      {{{"tools", {1}}}, "tools[0]", "must be an object"},
      {{{"tools", {{{"type", "retrieval"}, {"function", {{"name", "f"}}}}}}}, "tools[0].type", "\"function\""},
      {{{"tools", {{{"type", "function"}}}}}, "tools[0].function", "missing"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", 3}}}}}}}, "tools[0].function.name", "string"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", "a b"}}}}}}}, "tools[0].function.name", "1 to 64"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", "x"}}}}}}},
       "tools[0].function.parameters",
       "object"},
      {{{"tools",
         {{{"type", "function"}, {"function", {{"name", "f"}}}},
          {{"type", "function"}, {"function", {{"name", "f"}}}}}}},
       "tools[1].function.name",
       "two tools"},
      {{{"tools", tools}, {"tool_choice", "always"}}, "tool_choice", "none, auto or required"},
      {{{"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}},
       "tool_choice.function.name",
       "\"nope\", which is not in 'tools'"},
      {{{"tool_choice", "required"}}, "tool_choice", "no 'tools'"},
      {{{"tools", tools}, {"parallel_tool_calls", 1}}, "parallel_tool_calls", "boolean"},
      {{{"tools", tools}, {"response_format", {{"type", "json_object"}}}}, "response_format", "'tools' and"},
      {{{"tools", tools}, {"grammar", "root ::= \"a\""}}, "grammar", "both constrain"},
      {{{"messages", {call}}}, "messages[0].tool_calls[0].function.arguments", "not valid JSON"},
      {{{"messages",
         {{{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", "[1]"}}}}}}}}}},
       "messages[0].tool_calls[0].function.arguments",
       "an object"},
      {{{"messages", {{{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}}}}}}}}}},
       "messages[0].tool_calls[0].function.arguments",
       "missing"},
      {{{"messages", {{{"role", "assistant"}, {"tool_calls", "x"}}}}}, "messages[0].tool_calls", "array"},
      {{{"messages", {{{"role", "tool"}, {"content", "x"}, {"tool_call_id", 5}}}}},
       "messages[0].tool_call_id",
       "string"},
  };
  for (const Case& c : cases) {
    json body = user_says("hi");
    body.update(c.patch);
    const ApiError e = error_of(body);
    EXPECT_EQ(e.status(), 400) << c.patch.dump();
    EXPECT_EQ(e.param(), c.param) << c.patch.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.patch.dump() << ": " << e.what();
  }
  // Arguments texts are checked like bodies: nesting deeper than the body may (the template's
  // copies recurse: 100k levels overflowed the stack) and a refused text quoted in part only.
  const auto with_arguments = [](const std::string& arguments) {
    json body = user_says("hi");
    body["messages"].push_back(
        {{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", arguments}}}}}}});
    return body;
  };
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ApiError e = error_of(with_arguments("{\"a\": " + deep + "}"));
  EXPECT_EQ(e.param(), "messages[1].tool_calls[0].function.arguments");
  EXPECT_NE(std::string(e.what()).find("deeper than 64 levels"), std::string::npos) << e.what();
  std::string huge = "[";
  for (int i = 0; i < 200000; ++i) huge += "1,";
  huge += "1]";
  e = error_of(with_arguments(huge));
  EXPECT_NE(std::string(e.what()).find("(400003 bytes)"), std::string::npos) << e.what();
  EXPECT_LT(std::string(e.what()).size(), 300u);
  // A tool whose parameters nest arrays 25 deep: a grammar whose expressions are shared, imported
  // and written out once per use would be 2^25 long (seconds and gigabytes): refused at once.
  json deep_items = {{"type", "integer"}};
  for (int i = 0; i < 25; ++i) deep_items = {{"type", "array"}, {"items", deep_items}};
  json deep_tool = user_says("hi");
  deep_tool["tools"] = {
      {{"type", "function"},
       {"function", {{"name", "f"}, {"parameters", {{"type", "object"}, {"properties", {{"a", deep_items}}}}}}}}};
  const CompletionRequest deep_request = chat(deep_tool);
  for (const tool_calls::ToolFormat format : tool_calls::kAllToolFormats) {
    try {
      (void)tool_call_constraint(deep_request.tools, format);
      ADD_FAILURE() << "no error";
    } catch (const ApiError& refused) {
      EXPECT_EQ(refused.param(), "tools");
      EXPECT_NE(std::string(refused.what()).find("too large"), std::string::npos) << refused.what();
    }
  }

  // Within the limit, deep arguments render.
  const std::string nested = std::string(60, '[') + std::string(60, ']');
  EXPECT_TRUE(
      chat(with_arguments("{\"a\": " + nested + "}")).messages[1].tool_calls[0]["function"]["arguments"].is_object());

  // tool_choice none: the tools only inform the prompt, so a response_format may come with them.
  json body = user_says("hi");
  body["tools"] = tools;
  body["tool_choice"] = "none";
  body["response_format"] = {{"type", "json_object"}};
  EXPECT_EQ(chat(body).constraint.kind, OutputConstraint::Kind::kJsonObject);
}

TEST(ApiError, IsOpenAisErrorObject) {
  const json j = ApiError(400, "invalid_request_error", "n", "'n' must be between 1 and 128, got 0").to_json();
  EXPECT_EQ(j, json::parse(R"({"error": {"message": "'n' must be between 1 and 128, got 0",
                                          "type": "invalid_request_error", "param": "n", "code": null}})"));
  EXPECT_TRUE(ApiError(500, "server_error", "", "boom").to_json()["error"]["param"].is_null());
}

}  // namespace
}  // namespace ember::server
