// Field-by-field parsing of completion requests (see completion_request.h): OpenAI's parameters,
// then llama.cpp's sampler extensions, each with its type and range, then structured output.
#include "server/completion_request.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>

#include <fmt/format.h>

#include "ember/error.h"
#include "engine/sampler_chain.h"
#include "grammar/constraint.h"
#include "server/api_error.h"
#include "server/ordered_body.h"

namespace ember::server {
namespace {

using nlohmann::json;

// The field, or nullptr when it is absent or null.
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) invalid_request(name, fmt::format("'{}' must be a number, not {}", name, json_type_name(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    invalid_request(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v.dump()));
  }
  return x;
}

[[noreturn]] void out_of_range(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  invalid_request(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v.dump()));
}

// An integer in [lo, hi], compared exactly (no trip through double for 64-bit values).
int64_t integer(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (hi < 0 || u > static_cast<uint64_t>(hi) || static_cast<int64_t>(u) < lo) out_of_range(v, name, lo, hi);
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) out_of_range(v, name, lo, hi);
    return x;
  }
  // 10.0 counts as 10 (JSON has one number type); 10.5 does not.
  const double x = v.is_number_float() ? v.get<double>() : 0.5;
  if (!v.is_number() || !std::isfinite(x) || std::trunc(x) != x) {
    invalid_request(name,
                    fmt::format("'{}' must be an integer, not {}", name, v.is_number() ? v.dump() : json_type_name(v)));
  }
  constexpr double kTwo63 = 9223372036854775808.0;
  if (x < -kTwo63 || x >= kTwo63) out_of_range(v, name, lo, hi);
  const auto i = static_cast<int64_t>(x);
  if (i < lo || i > hi) out_of_range(v, name, lo, hi);
  return i;
}

// "speculative": false, or an object of draft_max (0-64), draft_min (1-64), ngram_max (1-16) and
// p_min (0-1); llama.cpp's flat "speculative.n_max", "speculative.n_min" and "speculative.p_min" too.
void parse_speculative(const json& body, CompletionRequest& r) {
  constexpr int64_t kMaxDraft = 64;
  const json* const speculative = field(body, "speculative");
  if (speculative != nullptr) {
    if (speculative->is_boolean()) {
      if (!speculative->get<bool>()) r.draft_max = 0;
    } else if (!speculative->is_object()) {
      invalid_request("speculative",
                      fmt::format("'speculative' must be an object or false, not {}", json_type_name(*speculative)));
    } else {
      for (const auto& [key, value] : speculative->items()) {
        const std::string name = "speculative." + key;
        if (value.is_null()) continue;
        if (key == "draft_max") {
          r.draft_max = static_cast<int32_t>(integer(value, name, 0, kMaxDraft));
        } else if (key == "draft_min") {
          r.draft_min = static_cast<int32_t>(integer(value, name, 1, kMaxDraft));
        } else if (key == "ngram_max") {
          r.ngram_max = static_cast<int32_t>(integer(value, name, 1, 16));
        } else if (key == "p_min") {
          r.p_min = static_cast<float>(number(value, name, 0, 1));
        } else {
          invalid_request(
              name, fmt::format("unknown field '{}' (speculative takes draft_max, draft_min, ngram_max, p_min)", name));
        }
      }
    }
  }
  // llama.cpp's flat keys; "speculative": false wins over them.
  const bool off = r.draft_max == 0 && speculative != nullptr && speculative->is_boolean();
  if (const json* v = field(body, "speculative.n_max")) {
    const auto n = static_cast<int32_t>(integer(*v, "speculative.n_max", 0, kMaxDraft));
    if (!off) {
      r.draft_max = n;
      r.draft_max_param = "speculative.n_max";
    }
  }
  if (const json* v = field(body, "speculative.n_min")) {
    r.draft_min = static_cast<int32_t>(integer(*v, "speculative.n_min", 1, kMaxDraft));
    r.draft_min_param = "speculative.n_min";
  }
  if (const json* v = field(body, "speculative.p_min"))
    r.p_min = static_cast<float>(number(*v, "speculative.p_min", 0, 1));
}

// seed: 0 to 2^64 - 1, or -1 for a random one (llama.cpp's and `ember run`'s convention).
std::optional<uint64_t> parse_seed(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  const int64_t seed = integer(v, "seed", -1, std::numeric_limits<int64_t>::max());
  return seed == -1 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(seed));
}

bool boolean(const json& v, const std::string& name) {
  if (!v.is_boolean()) invalid_request(name, fmt::format("'{}' must be a boolean, not {}", name, json_type_name(v)));
  return v.get<bool>();
}

const std::string& string(const json& v, const std::string& name) {
  if (!v.is_string()) invalid_request(name, fmt::format("'{}' must be a string, not {}", name, json_type_name(v)));
  return v.get_ref<const std::string&>();
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts joined.
std::string message_content(const json& v, const std::string& name) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) invalid_request(name, fmt::format("'{}' must be a string or an array of content parts", name));
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string part = fmt::format("{}[{}]", name, i);
    if (!v[i].is_object()) invalid_request(part, fmt::format("'{}' must be an object", part));
    const json* type = field(v[i], "type");
    if (type == nullptr) invalid_request(part + ".type", fmt::format("'{}.type' is missing", part));
    if (string(*type, part + ".type") != "text") {
      invalid_request(part + ".type", fmt::format("'{}.type' is \"{}\"; this server takes only \"text\" parts", part,
                                                  type->get<std::string>()));
    }
    const json* part_text = field(v[i], "text");
    if (part_text == nullptr) invalid_request(part + ".text", fmt::format("'{}.text' is missing", part));
    text += string(*part_text, part + ".text");
  }
  return text;
}

std::vector<RequestMessage> parse_messages(const json& body) {
  const json* v = field(body, "messages");
  if (v == nullptr) invalid_request("messages", "'messages' is required");
  if (!v->is_array() || v->empty()) invalid_request("messages", "'messages' must be a non-empty array");
  std::vector<RequestMessage> messages;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string name = fmt::format("messages[{}]", i);
    const json& m = (*v)[i];
    if (!m.is_object()) invalid_request(name, fmt::format("'{}' must be an object", name));
    const json* role = field(m, "role");
    if (role == nullptr) invalid_request(name + ".role", fmt::format("'{}.role' is missing", name));
    RequestMessage message;
    message.role = string(*role, name + ".role");
    if (message.role != "system" && message.role != "developer" && message.role != "user" &&
        message.role != "assistant" && message.role != "tool") {
      invalid_request(
          name + ".role",
          fmt::format("'{}.role' must be system, developer, user, assistant or tool, not \"{}\"", name, message.role));
    }
    const json* content = field(m, "content");
    // An assistant turn may carry tool calls and no content.
    if (content == nullptr && message.role != "assistant") {
      invalid_request(name + ".content", fmt::format("'{}.content' is missing", name));
    }
    if (content != nullptr) message.content = message_content(*content, name + ".content");
    message.has_content = content != nullptr;
    if (const json* calls = field(m, "tool_calls"); calls != nullptr && message.role == "assistant") {
      message.tool_calls = parse_history_tool_calls(*calls, name + ".tool_calls");
      // [] (some clients send it on every assistant message): no calls, as absent.
      if (message.tool_calls.empty()) message.tool_calls = nullptr;
    }
    if (const json* id = field(m, "tool_call_id"); id != nullptr && message.role == "tool") {
      message.tool_call_id = string(*id, name + ".tool_call_id");
    }
    // The participant's name (unused by the templates): still a string, as OpenAI requires.
    if (const json* participant = field(m, "name"); participant != nullptr) (void)string(*participant, name + ".name");
    messages.push_back(std::move(message));
  }
  return messages;
}

// A prompt's token ids: an array of integers in the vocabulary, non-empty.
std::vector<int32_t> prompt_token_ids(const json& v, int32_t n_vocab, const std::string& name) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.size(); ++i) {
    ids.push_back(static_cast<int32_t>(integer(v[i], fmt::format("{}[{}]", name, i), 0, n_vocab - 1)));
  }
  if (ids.empty()) invalid_request("prompt", fmt::format("'{}' is empty", name));
  return ids;
}

// "prompt": a string, an array of strings, an array of token ids, or an array of such arrays.
// `fills_gap` (a suffix comes): an empty text is the gap at the very start.
void parse_prompt(const json& body, int32_t n_vocab, bool fills_gap, CompletionRequest& r) {
  const json* v = field(body, "prompt");
  if (v == nullptr) invalid_request("prompt", "'prompt' is required");
  constexpr const char* kShapes =
      "'prompt' must be a string, an array of strings, an array of token ids, or an array of arrays of token ids";
  if (v->is_string()) {
    r.prompts.push_back({.text = v->get<std::string>(), .tokens = {}});
  } else if (v->is_array() && !v->empty() && (*v)[0].is_number()) {
    r.prompts.push_back({.text = {}, .tokens = prompt_token_ids(*v, n_vocab, "prompt")});
  } else if (v->is_array() && !v->empty()) {
    if (v->size() > kMaxPrompts) {
      invalid_request("prompt", fmt::format("'prompt' holds {} prompts; the limit is {}", v->size(), kMaxPrompts));
    }
    const bool strings = (*v)[0].is_string();
    if (!strings && !(*v)[0].is_array()) invalid_request("prompt", kShapes);
    for (size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      const std::string name = fmt::format("prompt[{}]", i);
      if (strings && item.is_string()) {
        r.prompts.push_back({.text = item.get<std::string>(), .tokens = {}});
      } else if (!strings && item.is_array()) {
        r.prompts.push_back({.text = {}, .tokens = prompt_token_ids(item, n_vocab, name)});
      } else {
        invalid_request("prompt", fmt::format("{}, one kind throughout; {} is not of the first's kind", kShapes, name));
      }
    }
  } else {
    invalid_request("prompt", kShapes);
  }
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    if (r.prompts[i].text.empty() && r.prompts[i].tokens.empty() && !fills_gap) {
      invalid_request(
          "prompt", r.prompts.size() == 1 ? std::string("'prompt' is empty") : fmt::format("'prompt[{}]' is empty", i));
    }
  }
}

// /infill: input_prefix and input_suffix (required strings), input_extra ([{filename?, text}]),
// and prompt, the start of the middle (optional).
void parse_infill(const json& body, CompletionRequest& r) {
  for (auto [name, out] : {std::pair{"input_prefix", &r.infill_prefix}, std::pair{"input_suffix", &r.infill_suffix}}) {
    const json* v = field(body, name);
    if (v == nullptr) invalid_request(name, fmt::format("'{}' is required", name));
    *out = string(*v, name);
  }
  if (const json* v = field(body, "input_extra")) {
    if (!v->is_array()) {
      invalid_request("input_extra", fmt::format("'input_extra' must be an array of {{\"filename\": string, "
                                                 "\"text\": string}} objects, not {}",
                                                 json_type_name(*v)));
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const json& chunk = (*v)[i];
      const std::string name = fmt::format("input_extra[{}]", i);
      if (!chunk.is_object()) {
        invalid_request(name, fmt::format("'{}' must be an object {{\"filename\", \"text\"}}, not {}", name,
                                          json_type_name(chunk)));
      }
      const json* text = field(chunk, "text");
      if (text == nullptr) invalid_request(name + ".text", fmt::format("'{}.text' is required", name));
      InfillFile file{.filename = "tmp", .text = string(*text, name + ".text")};
      if (const json* f = field(chunk, "filename")) file.filename = string(*f, name + ".filename");
      r.infill_extra.push_back(std::move(file));
    }
  }
  const json* prompt = field(body, "prompt");
  r.prompts.push_back({.text = prompt == nullptr ? std::string() : string(*prompt, "prompt"), .tokens = {}});
}

// llama.cpp's fields of /completion and /infill: n_probs (else OpenAI's logprobs integer),
// post_sampling_probs, return_tokens, response_fields, t_max_predict_ms, n_indent.
void parse_native(const json& body, CompletionRequest& r) {
  if (const json* v = field(body, "n_probs")) {
    const auto n = static_cast<int32_t>(integer(*v, "n_probs", 0, kMaxTopLogprobs));
    r.logprobs = n > 0 ? n : -1;
  } else if (const json* l = field(body, "logprobs")) {
    r.logprobs = static_cast<int32_t>(integer(*l, "logprobs", 0, kMaxTopLogprobs));
  }
  if (const json* v = field(body, "post_sampling_probs"); v != nullptr && boolean(*v, "post_sampling_probs")) {
    invalid_request("post_sampling_probs",
                    "'post_sampling_probs' is not supported: n_probs reports the model's log-probabilities before "
                    "sampling");
  }
  NativeOptions& o = r.native;
  if (const json* v = field(body, "return_tokens")) o.return_tokens = boolean(*v, "return_tokens");
  if (const json* v = field(body, "response_fields")) {
    if (!v->is_array()) {
      invalid_request("response_fields",
                      fmt::format("'response_fields' must be an array of field names, not {}", json_type_name(*v)));
    }
    for (size_t i = 0; i < v->size(); ++i)
      o.response_fields.push_back(string((*v)[i], fmt::format("response_fields[{}]", i)));
  }
  if (const json* v = field(body, "t_max_predict_ms")) {
    o.t_max_predict_ms = number(*v, "t_max_predict_ms", 0, 1e9);
  }
  if (const json* v = field(body, "n_indent")) o.n_indent = static_cast<int32_t>(integer(*v, "n_indent", 0, 1 << 20));
}

std::vector<std::string> parse_stop(const json& v) {
  std::vector<std::string> stop;
  if (v.is_string()) {
    stop.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > static_cast<size_t>(kMaxStopStrings)) {
      invalid_request("stop", fmt::format("'stop' holds {} strings; at most {}", v.size(), kMaxStopStrings));
    }
    for (size_t i = 0; i < v.size(); ++i) stop.push_back(string(v[i], fmt::format("stop[{}]", i)));
  } else {
    invalid_request("stop", fmt::format("'stop' must be a string or an array of strings, not {}", json_type_name(v)));
  }
  for (const std::string& s : stop) {
    if (s.empty()) invalid_request("stop", "'stop' strings must not be empty");
  }
  return stop;
}

// {"<token id>": bias in [-100, 100]}; -100 bans the token (as OpenAI documents).
std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& v, int32_t n_vocab) {
  if (!v.is_object()) invalid_request("logit_bias", "'logit_bias' must be an object of token id -> bias");
  std::vector<std::pair<int32_t, float>> bias;
  for (const auto& [key, value] : v.items()) {
    const std::string name = "logit_bias." + key;
    int64_t id = -1;
    // Canonical decimal only ("012" would be a second spelling of 12, and its bias would add up).
    const bool digits = !key.empty() && key.size() <= 10 && key.find_first_not_of("0123456789") == std::string::npos &&
                        (key == "0" || key[0] != '0');
    if (digits) id = std::stoll(key);
    if (!digits || id >= n_vocab) {
      invalid_request(name, fmt::format("'logit_bias' key \"{}\" is not a token id (0 to {})", key, n_vocab - 1));
    }
    const double b = number(value, name, -100.0, 100.0);
    bias.emplace_back(static_cast<int32_t>(id),
                      b <= -100.0 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b));
  }
  return bias;
}

// llama.cpp's sampler parameters, beyond OpenAI's.
struct FloatExtension {
  const char* name;
  float SamplingParams::*member;
  double lo, hi;
};
struct IntExtension {
  const char* name;
  int32_t SamplingParams::*member;
  int64_t lo, hi;
};
constexpr double kBig = 1e6;
const FloatExtension kFloatExtensions[] = {
    {"min_p", &SamplingParams::min_p, 0, 1},
    {"typical_p", &SamplingParams::typical_p, 0, 1},  // 0: the best token only (as top_p)
    {"top_n_sigma", &SamplingParams::top_n_sigma, -1, kBig},
    {"repeat_penalty", &SamplingParams::repeat_penalty, 0, kBig},
    {"dynatemp_range", &SamplingParams::dynatemp_range, 0, kBig},
    {"dynatemp_exponent", &SamplingParams::dynatemp_exponent, 0, kBig},
    {"xtc_probability", &SamplingParams::xtc_probability, 0, 1},
    {"xtc_threshold", &SamplingParams::xtc_threshold, 0, 1},
    {"dry_multiplier", &SamplingParams::dry_multiplier, 0, kBig},
    {"dry_base", &SamplingParams::dry_base, 1, kBig},
    {"mirostat_tau", &SamplingParams::mirostat_tau, 0, kBig},
    {"mirostat_eta", &SamplingParams::mirostat_eta, 0, 1},
};
const IntExtension kIntExtensions[] = {
    {"top_k", &SamplingParams::top_k, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()},
    {"repeat_last_n", &SamplingParams::penalty_last_n, -1, std::numeric_limits<int32_t>::max()},
    {"dry_allowed_length", &SamplingParams::dry_allowed_length, 0, std::numeric_limits<int32_t>::max()},
    {"dry_penalty_last_n", &SamplingParams::dry_penalty_last_n, -1, std::numeric_limits<int32_t>::max()},
};

void parse_sampling(const json& body, int32_t n_vocab, CompletionRequest& r) {
  SamplingParams& s = r.sampling;
  if (const json* v = field(body, "temperature")) s.temperature = static_cast<float>(number(*v, "temperature", 0, 2));
  if (const json* v = field(body, "top_p")) s.top_p = static_cast<float>(number(*v, "top_p", 0, 1));
  if (const json* v = field(body, "presence_penalty")) {
    s.presence_penalty = static_cast<float>(number(*v, "presence_penalty", -2, 2));
  }
  if (const json* v = field(body, "frequency_penalty")) {
    s.frequency_penalty = static_cast<float>(number(*v, "frequency_penalty", -2, 2));
  }
  if (const json* v = field(body, "logit_bias")) s.logit_bias = parse_logit_bias(*v, n_vocab);
  for (const FloatExtension& e : kFloatExtensions) {
    if (const json* v = field(body, e.name)) s.*e.member = static_cast<float>(number(*v, e.name, e.lo, e.hi));
  }
  for (const IntExtension& e : kIntExtensions) {
    if (const json* v = field(body, e.name)) s.*e.member = static_cast<int32_t>(integer(*v, e.name, e.lo, e.hi));
  }
  s.top_k = std::max(s.top_k, 0);  // <= 0: off (llama.cpp; vLLM's clients send -1)
  // OpenAI allows top_p 0 (the engine's range is (0, 1]): the smallest positive p keeps only the
  // most probable token. Likewise typical_p.
  for (float* p : {&s.top_p, &s.typical_p}) *p = *p == 0.0f ? std::numeric_limits<float>::min() : *p;
  if (s.repeat_penalty == 0.0f) invalid_request("repeat_penalty", "'repeat_penalty' must be greater than 0 (1: off)");
  if (const json* v = field(body, "dry_sequence_breakers")) {
    if (!v->is_array()) invalid_request("dry_sequence_breakers", "'dry_sequence_breakers' must be an array of strings");
    s.dry_sequence_breakers.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string name = fmt::format("dry_sequence_breakers[{}]", i);
      if (string((*v)[i], name).empty()) invalid_request(name, fmt::format("'{}' must not be empty", name));
      s.dry_sequence_breakers.push_back((*v)[i].get<std::string>());
    }
  }
  if (const json* v = field(body, "mirostat")) {
    s.mirostat = static_cast<int32_t>(integer(*v, "mirostat", 0, 2));
    if (s.mirostat == 1) invalid_request("mirostat", "'mirostat' 1 (v1) is not supported; use 0 (off) or 2");
  }
  // llama.cpp's order of the truncation steps: an array of names ("top_k", "min_p", ...).
  if (const json* v = field(body, "samplers")) {
    if (!v->is_array()) {
      invalid_request("samplers",
                      fmt::format("'samplers' must be an array of sampler names, not {}", json_type_name(*v)));
    }
    // [] runs no truncation step, as "penalties" alone (llama.cpp's clients send it to warm the
    // prompt cache).
    std::string names = v->empty() ? "penalties" : "";
    for (size_t i = 0; i < v->size(); ++i) names += string((*v)[i], fmt::format("samplers[{}]", i)) + ";";
    try {
      s.order = parse_sampler_order(names);
    } catch (const Error& e) {
      invalid_request("samplers", e.what());
    }
  }
}

// A schema object's text with its keys in the order the client sent them. `schema` (from the
// std::map-backed body) has them sorted, which would reorder the generated properties; so the body
// text is parsed again (ordered_body.h) for requests that carry a schema (and only for those).
std::string ordered_schema_text(const json& schema, std::string_view body_text,
                                std::initializer_list<const char*> path) {
  std::string param;
  for (const char* key : path) {
    if (!param.empty()) param += '.';
    param.append(key);
  }
  refuse_huge_objects(schema, param);
  if (!body_text.empty()) {
    const nlohmann::ordered_json v = ordered_subtree(body_text, path);
    if (v.is_object()) return v.dump();
  }
  return schema.dump();
}

// A constraint a request asked for, with the field that asked (the `param` of its errors) and the
// wording its compile errors take.
struct RequestedConstraint {
  // A constructor rather than designated initializers: GCC 12 sees the strings of a braced
  // temporary as maybe-uninitialized.
  RequestedConstraint(std::string param_name, OutputConstraint::Kind kind, std::string text, bool strict,
                      std::string prefix)
      : param(std::move(param_name)), error_prefix(std::move(prefix)) {
    constraint.kind = kind;
    constraint.text = std::move(text);
    constraint.strict = strict;
  }
  std::string param;
  OutputConstraint constraint;
  std::string error_prefix;
};

// OpenAI's: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'.
bool is_schema_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxSchemaNameLength && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// response_format: {"type": "text"} (no constraint), {"type": "json_object"} (any JSON object;
// with llama.cpp's "schema" beside it, that schema), or {"type": "json_schema", "json_schema":
// {"name", "schema", "strict", "description"}}. A json_schema without "schema" takes {} (any JSON
// value), as OpenAI's API reference has it optional; strict mode then rejects it (its root must be
// an object).
std::optional<RequestedConstraint> parse_response_format(const json& v, std::string_view body_text) {
  if (!v.is_object()) {
    invalid_request("response_format", fmt::format("'response_format' must be an object, not {}", json_type_name(v)));
  }
  const json* type = field(v, "type");
  if (type == nullptr) invalid_request("response_format.type", "'response_format.type' is missing");
  const std::string& kind = string(*type, "response_format.type");
  if (kind == "text") return std::nullopt;
  if (kind == "json_object") {
    const json* schema = field(v, "schema");
    if (schema == nullptr) {
      return RequestedConstraint("response_format", OutputConstraint::Kind::kJsonObject, {}, false,
                                 "Invalid response_format");
    }
    if (!schema->is_object()) {
      invalid_request("response_format.schema",
                      fmt::format("'response_format.schema' must be an object, not {}", json_type_name(*schema)));
    }
    return RequestedConstraint("response_format", OutputConstraint::Kind::kJsonSchema,
                               ordered_schema_text(*schema, body_text, {"response_format", "schema"}), false,
                               "Invalid schema for response_format");
  }
  if (kind != "json_schema") {
    invalid_request("response_format.type",
                    fmt::format("'response_format.type' must be text, json_object or json_schema, not \"{}\"", kind));
  }
  const json* wrapper = field(v, "json_schema");
  if (wrapper == nullptr) {
    invalid_request("response_format.json_schema",
                    "'response_format.json_schema' is required when 'response_format.type' is json_schema");
  }
  if (!wrapper->is_object()) {
    invalid_request("response_format.json_schema",
                    fmt::format("'response_format.json_schema' must be an object, not {}", json_type_name(*wrapper)));
  }
  const json* name = field(*wrapper, "name");
  if (name == nullptr)
    invalid_request("response_format.json_schema.name", "'response_format.json_schema.name' is missing");
  const std::string& schema_name = string(*name, "response_format.json_schema.name");
  if (!is_schema_name(schema_name)) {
    invalid_request("response_format.json_schema.name",
                    fmt::format("'response_format.json_schema.name' must be 1 to {} characters of a-z, A-Z, 0-9, "
                                "'_' and '-', not \"{}\"",
                                kMaxSchemaNameLength, schema_name));
  }
  if (const json* d = field(*wrapper, "description")) string(*d, "response_format.json_schema.description");
  const json* strict = field(*wrapper, "strict");
  const json* schema = field(*wrapper, "schema");
  if (schema != nullptr && !schema->is_object()) {
    invalid_request(
        "response_format.json_schema.schema",
        fmt::format("'response_format.json_schema.schema' must be an object, not {}", json_type_name(*schema)));
  }
  const bool is_strict = strict != nullptr && boolean(*strict, "response_format.json_schema.strict");
  std::string text = schema == nullptr
                         ? std::string("{}")
                         : ordered_schema_text(*schema, body_text, {"response_format", "json_schema", "schema"});
  return RequestedConstraint("response_format", OutputConstraint::Kind::kJsonSchema, std::move(text), is_strict,
                             fmt::format("Invalid schema for response_format '{}'", schema_name));
}

// Structured output: response_format and the extensions json_schema (llama.cpp's: a schema
// object), grammar (GBNF, llama.cpp's) and regex. An empty grammar or regex string is absent
// (llama.cpp's clients send "" for none). The constraint is compiled now (the compiled grammar is
// cached, so the engine's own compile of it is a lookup): what cannot be compiled is a 400 with
// the compiler's message (a GBNF line:column, a JSON pointer, a regex offset), never a 500.
OutputConstraint parse_constraint(const json& body, std::string_view body_text) {
  std::vector<RequestedConstraint> requested;
  if (const json* v = field(body, "response_format")) {
    if (auto c = parse_response_format(*v, body_text)) requested.push_back(std::move(*c));
  }
  if (const json* v = field(body, "json_schema")) {
    if (!v->is_object()) {
      invalid_request("json_schema",
                      fmt::format("'json_schema' must be a JSON Schema object, not {}", json_type_name(*v)));
    }
    requested.emplace_back("json_schema", OutputConstraint::Kind::kJsonSchema,
                           ordered_schema_text(*v, body_text, {"json_schema"}), false, "Invalid 'json_schema'");
  }
  for (const auto& [name, kind] :
       {std::pair{"grammar", OutputConstraint::Kind::kGbnf}, std::pair{"regex", OutputConstraint::Kind::kRegex}}) {
    const json* v = field(body, name);
    if (v == nullptr || string(*v, name).empty()) continue;
    requested.emplace_back(name, kind, v->get<std::string>(), false, fmt::format("Invalid '{}'", name));
  }
  if (requested.empty()) return {};
  if (requested.size() > 1) {
    invalid_request(requested[1].param,
                    fmt::format("'{}' and '{}' both constrain the output; send at most one of response_format "
                                "(json_object or json_schema), json_schema, grammar and regex",
                                requested[0].param, requested[1].param));
  }
  RequestedConstraint& r = requested[0];
  try {
    grammar::compile_constraint(r.constraint);
  } catch (const Error& e) {
    // Other codes (out of memory) are the server's trouble: a 500.
    if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kUnsupported) throw;
    invalid_request(r.param, fmt::format("{}: {}", r.error_prefix, e.what()));
  }
  return std::move(r.constraint);
}

}  // namespace

CompletionRequest parse_completion_request(const json& body, Endpoint endpoint, int32_t n_vocab,
                                           std::string_view body_text) {
  if (!body.is_object()) invalid_request("", "the request body must be a JSON object");
  CompletionRequest r;
  r.endpoint = endpoint;
  if (const json* v = field(body, "model")) r.model = string(*v, "model");
  if (endpoint == Endpoint::kChatCompletions) {
    r.messages = parse_messages(body);
  } else if (endpoint == Endpoint::kInfill) {
    parse_infill(body, r);
  } else {
    const json* suffix = field(body, "suffix");
    parse_prompt(body, n_vocab,
                 endpoint == Endpoint::kCompletions && suffix != nullptr && suffix->is_string() &&
                     !suffix->get_ref<const std::string&>().empty(),
                 r);
  }
  // max_completion_tokens is the newer name; when both come, it wins (as OpenAI documents);
  // llama.cpp's n_predict counts where neither comes (-1: up to the context).
  // Completions take 0: the prompt alone, which with echo and logprobs scores it (and, llama.cpp's
  // way, fills the prefix cache).
  const int64_t min_tokens = endpoint == Endpoint::kChatCompletions ? 1 : 0;
  if (const json* v = field(body, "n_predict")) {
    r.max_tokens = static_cast<int32_t>(integer(*v, "n_predict", -1, std::numeric_limits<int32_t>::max()));
    if (r.max_tokens >= 0 && r.max_tokens < min_tokens)
      invalid_request("n_predict", "'n_predict' must be at least 1 (-1: no limit)");
  }
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (const json* v = field(body, name))
      r.max_tokens = static_cast<int32_t>(integer(*v, name, min_tokens, std::numeric_limits<int32_t>::max()));
  }
  const bool native = endpoint == Endpoint::kNativeCompletion || endpoint == Endpoint::kInfill;
  if (const json* v = field(body, "n")) r.n = static_cast<int32_t>(integer(*v, "n", 1, kMaxChoices));
  if (const json* v = field(body, "n_cmpl"); v != nullptr && native) {
    r.n = static_cast<int32_t>(integer(*v, "n_cmpl", 1, kMaxChoices));
  }
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  r.best_of = r.n;
  if (const json* v = field(body, "best_of"); v != nullptr && endpoint == Endpoint::kCompletions) {
    r.best_of = static_cast<int32_t>(integer(*v, "best_of", 1, kMaxChoices));
    if (r.best_of < r.n)
      invalid_request("best_of", fmt::format("'best_of' ({}) is less than 'n' ({})", r.best_of, r.n));
    if (r.best_of > r.n && r.stream) {
      invalid_request("best_of", "'best_of' above 'n' cannot be streamed: the best are known only at the end");
    }
  }
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) invalid_request("stream_options", "'stream_options' must be an object");
    if (!r.stream) invalid_request("stream_options", "'stream_options' is only allowed with 'stream': true");
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (endpoint == Endpoint::kChatCompletions) {
    const json* logprobs = field(body, "logprobs");
    const json* top = field(body, "top_logprobs");
    const bool on = logprobs != nullptr && boolean(*logprobs, "logprobs");
    const int32_t n_top = top == nullptr ? 0 : static_cast<int32_t>(integer(*top, "top_logprobs", 0, kMaxTopLogprobs));
    if (top != nullptr && !on) invalid_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r.logprobs = on ? n_top : -1;
  } else if (native) {
    parse_native(body, r);
  } else {
    if (const json* v = field(body, "logprobs"))
      r.logprobs = static_cast<int32_t>(integer(*v, "logprobs", 0, kMaxTopLogprobs));
    if (const json* v = field(body, "echo")) r.echo = boolean(*v, "echo");
    // "" counts as absent: clients send it for none.
    if (const json* v = field(body, "suffix"); v != nullptr && !string(*v, "suffix").empty()) {
      r.suffix = v->get<std::string>();
      if (r.echo) invalid_request("echo", "'echo' cannot be combined with 'suffix'");
      if (!r.prompts.front().tokens.empty()) {
        invalid_request("suffix", "'suffix' needs a text prompt (the text before the gap), not token ids");
      }
    }
  }
  if (const json* v = field(body, "stop")) r.stop = parse_stop(*v);
  if (const json* v = field(body, "seed")) r.seed = parse_seed(*v);
  if (const json* v = field(body, "ignore_eos")) r.ignore_eos = boolean(*v, "ignore_eos");
  if (const json* v = field(body, "user")) r.user = string(*v, "user");
  parse_sampling(body, n_vocab, r);
  parse_speculative(body, r);
  r.constraint = parse_constraint(body, body_text);
  if (endpoint == Endpoint::kChatCompletions) {
    r.tools = parse_tool_request(body, body_text);
    // Two grammars cannot constrain one output. With tool_choice none the tools only inform the
    // prompt, so a response_format is fine there.
    if (r.tools.calls_allowed() && r.constraint.kind != OutputConstraint::Kind::kNone) {
      const char* param = "response_format";
      for (const char* name : {"response_format", "json_schema", "grammar", "regex"}) {
        if (field(body, name) != nullptr) {
          param = name;
          break;
        }
      }
      invalid_request(param, fmt::format("'tools' and '{}' both constrain the output; send one of them (or "
                                         "'tool_choice': \"none\")",
                                         param));
    }
  }
  return r;
}

}  // namespace ember::server
