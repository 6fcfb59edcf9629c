// POST /v1/embeddings, /tokenize and /detokenize, GET /tokenizer_info (/apply-template is with the chat
// completions).
#include <algorithm>
#include <chrono>
#include <deque>

#include "api/llm_impl.h"
#include "core/check.h"
#include "server/server_state.h"
#include "tokenizer/tokenizer.h"

namespace ember::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string base64(const void* data, size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t b =
        (uint32_t{p[i]} << 16) | (i + 1 < size ? uint32_t{p[i + 1]} << 8 : 0) | (i + 2 < size ? uint32_t{p[i + 2]} : 0);
    out += kAlphabet[(b >> 18) & 63];
    out += kAlphabet[(b >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(b >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[b & 63] : '=';
  }
  return out;
}

// Token ids from a JSON array, each checked against the vocabulary.
std::vector<int32_t> token_ids(const json& value, const std::string& param, int32_t n_vocab) {
  if (!value.is_array()) invalid_request(param, "must be an array of token ids");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& v = value[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= n_vocab) {
      invalid_request(fmt::format("{}[{}]", param, i), fmt::format("must be a token id in [0, {})", n_vocab));
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

bool optional_bool(const json& body, const char* name, bool fallback) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) invalid_request(name, "must be a boolean");
  return it->get<bool>();
}

}  // namespace

HttpReply handle_embeddings(ServerState& state, const HttpRequest& http) {
  const json body = parse_body(http);
  const int32_t n_vocab = state.engine->n_vocab();
  const auto input = body.find("input");
  if (input == body.end() || input->is_null()) invalid_request("input", "is required");
  // A string, an array of strings, an array of token ids, or an array of arrays of token ids.
  std::vector<std::vector<int32_t>> inputs;
  const auto add_text = [&](const json& text, const std::string& param) {
    if (text.get_ref<const std::string&>().empty()) invalid_request(param, "must not be empty");
    inputs.push_back(state.llm->tokenize(text.get<std::string>(), true, false));
  };
  if (input->is_string()) {
    add_text(*input, "input");
  } else if (input->is_array() && !input->empty() && (*input)[0].is_number()) {
    inputs.push_back(token_ids(*input, "input", n_vocab));
  } else if (input->is_array() && !input->empty()) {
    for (size_t i = 0; i < input->size(); ++i) {
      const json& item = (*input)[i];
      const std::string param = fmt::format("input[{}]", i);
      if (item.is_string()) {
        add_text(item, param);
      } else if (item.is_array() && !item.empty()) {
        inputs.push_back(token_ids(item, param, n_vocab));
      } else {
        invalid_request(param, "must be a non-empty string or array of token ids");
      }
    }
  } else {
    invalid_request("input", "must be a non-empty string, array of strings or array of token ids");
  }
  if (inputs.size() > 2048) invalid_request("input", "at most 2048 inputs per request");
  std::string format = "float";
  if (const auto f = body.find("encoding_format"); f != body.end() && !f->is_null()) {
    if (!f->is_string() || (*f != "float" && *f != "base64")) {
      invalid_request("encoding_format", "must be \"float\" or \"base64\"");
    }
    format = f->get<std::string>();
  }
  if (const auto d = body.find("dimensions"); d != body.end() && !d->is_null()) {
    // The model's width is the only size there is (no Matryoshka truncation).
    if (!d->is_number_integer() || d->get<int64_t>() != state.engine->n_embd()) {
      invalid_request("dimensions", fmt::format("this model's embeddings have {} dimensions", state.engine->n_embd()));
    }
  }
  const int32_t context = state.engine->options().context;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) invalid_request("input", "an input has no tokens");
    if (static_cast<int32_t>(inputs[i].size()) > context) {
      throw ApiError(400, "invalid_request_error", "input",
                     fmt::format("input {} is {} tokens; this model's maximum context length is {} tokens", i,
                                 inputs[i].size(), context));
    }
  }

  // The inputs go to the engine a window at a time, so a large batch takes no more of the queue
  // than the running slots it can fill, and never gets 503 on its own.
  const size_t window = static_cast<size_t>(std::max(1, state.engine->options().max_running));
  std::deque<std::shared_ptr<EngineRequest>> in_flight;
  const auto cancel_all = [&] {
    for (auto& r : in_flight) r->cancel.store(true);
  };
  json data = json::array();
  int64_t prompt_tokens = 0;
  size_t next = 0;
  while (next < inputs.size() || !in_flight.empty()) {
    while (next < inputs.size() && in_flight.size() < window) {
      auto r = std::make_shared<EngineRequest>();
      r->kind = EngineRequest::Kind::kEmbed;
      r->prompt = std::move(inputs[next]);
      r->pooling = state.pooling;
      if (!state.engine->submit(r)) {
        if (!in_flight.empty()) break;  // the queue is full: wait for ours to finish first
        return overloaded_reply("The server is busy: too many requests are queued.");
      }
      in_flight.push_back(std::move(r));
      ++next;
    }
    const std::shared_ptr<EngineRequest> r = std::move(in_flight.front());
    in_flight.pop_front();
    std::vector<EngineEvent> events;
    std::vector<float> embedding;
    std::string error;
    for (bool ended = false; !ended;) {
      events.clear();
      ended = r->next(events, std::chrono::milliseconds(1000));
      for (EngineEvent& e : events) {
        if (!e.last) continue;
        embedding = std::move(e.embedding);
        error = e.error;
      }
    }
    if (!error.empty() || embedding.empty()) {
      cancel_all();
      return error_reply(ApiError(500, "server_error", "", error.empty() ? "the embedding was cancelled" : error));
    }
    prompt_tokens += static_cast<int64_t>(r->prompt.size());
    json item = {{"object", "embedding"}, {"index", data.size()}};
    if (format == "base64") {
      item["embedding"] = base64(embedding.data(), embedding.size() * sizeof(float));  // little-endian float32
    } else {
      item["embedding"] = embedding;
    }
    data.push_back(std::move(item));
  }
  return json_reply(200, {{"object", "list"},
                          {"data", std::move(data)},
                          {"model", state.model_name},
                          {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}});
}

// llama.cpp's {content, add_special} or vLLM's {prompt, add_special_tokens} (what
// lm-evaluation-harness's remote tokenizer sends), each with its own default for the special tokens.
HttpReply handle_tokenize(ServerState& state, const HttpRequest& http) {
  const json body = parse_body(http);
  const auto content = body.find("content");
  const auto prompt = body.find("prompt");
  if (content != body.end() && prompt != body.end()) invalid_request("prompt", "send 'content' or 'prompt', not both");
  const bool vllm = prompt != body.end();
  const auto text = vllm ? prompt : content;
  if (text == body.end() || !text->is_string()) invalid_request(vllm ? "prompt" : "content", "must be a string");
  const bool add_special =
      vllm ? optional_bool(body, "add_special_tokens", true) : optional_bool(body, "add_special", false);
  const bool parse_special = optional_bool(body, "parse_special", true);
  const bool with_pieces = optional_bool(body, "with_pieces", false);
  const std::vector<int32_t> ids = state.llm->tokenize(text->get<std::string>(), add_special, parse_special);
  json tokens = json::array();
  for (const int32_t id : ids) {
    if (with_pieces) {
      tokens.push_back({{"id", id}, {"piece", token_piece(state, id)}});
    } else {
      tokens.push_back(id);
    }
  }
  json reply = {{"tokens", std::move(tokens)}};
  if (vllm) {
    reply["count"] = ids.size();
    reply["max_model_len"] = state.engine->options().context;
  }
  return json_reply(200, reply);
}

HttpReply handle_detokenize(ServerState& state, const HttpRequest& http) {
  const json body = parse_body(http);
  const auto tokens = body.find("tokens");
  if (tokens == body.end()) invalid_request("tokens", "is required");
  const std::vector<int32_t> ids = token_ids(*tokens, "tokens", state.engine->n_vocab());
  const std::string text = state.llm->detokenize(ids, /*render_special=*/true);
  return json_reply(200, {{"content", text}, {"prompt", text}});  // llama.cpp's name, vLLM's
}

// vLLM's GET /tokenizer_info, the part a client needs to tokenize on the server
// (lm-evaluation-harness detects its remote tokenizer by it): the special tokens' texts, the chat
// template, the context.
HttpReply handle_tokenizer_info(ServerState& state) {
  const Llm::Impl& impl = LlmAccess::impl(*state.llm);
  const auto text_or_null = [](const std::string& t) { return t.empty() ? json(nullptr) : json(t); };
  return json_reply(200, {{"tokenizer_class", "ember"},
                          {"bos_token", text_or_null(impl.chat_template.bos_token)},
                          {"eos_token", text_or_null(impl.chat_template.eos_token)},
                          {"pad_token", nullptr},
                          {"chat_template", impl.chat_template.source},
                          {"model_max_length", state.engine->options().context},
                          {"vocab_size", state.engine->n_vocab()}});
}

}  // namespace ember::server
