// POST /v1/chat/completions and /v1/completions: the prompt and engine requests
// (completion_setup.h), then the answer whole or as an SSE stream, in OpenAI's shapes;
// POST /apply-template, the chat prompt alone.
#include <algorithm>
#include <chrono>
#include <deque>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "api/llm_impl.h"
#include "core/check.h"
#include "server/completion_request.h"
#include "server/completion_response.h"
#include "server/completion_setup.h"
#include "server/server_state.h"
#include "server/tool_call_response.h"
#include "tokenizer/fill_in_middle.h"
#include "tokenizer/tokenizer.h"

namespace ember::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One choice as it builds up.
struct ChoiceState {
  std::string text;
  std::vector<TokenOut> logprobs;
  std::optional<FinishReason> finish;
  GenerationStats stats;
  Clock::time_point last_token;
  bool any_token = false;
  size_t offset = 0;  // characters sent so far (streaming text offsets)
  // Logprobs follow the text: a token whose bytes are still held back (a possible start of a stop
  // string) waits here with its byte offset in `text`, and a stop string drops the tokens it took.
  std::deque<std::pair<size_t, TokenOut>> held;
  size_t counted_bytes = 0, counted_chars = 0;  // text[0, counted_bytes) has counted_chars characters
  // Chat with tools (tool_choice not none): the output parsed into content and calls.
  std::optional<ToolCallOutput> tools;
};

// One prompt of the request and the engine request that runs its choices.
struct Part {
  Prompt prompt;
  std::shared_ptr<EngineRequest> request;
  size_t prompt_chars = 0;  // its text's code points: where its completions' text offsets start
  // Echo with logprobs: the prompt's tokens, the first without a logprob (nothing precedes it).
  std::vector<TokenOut> prompt_logprobs;
};

// Turns engine events into choices, metrics and (streaming) SSE chunks. Choice i belongs to part
// i / n (OpenAI's order for several prompts); the parts run at once and are read in order.
class CompletionStream {
 public:
  CompletionStream(ServerState& state, std::vector<Part> parts, const CompletionRequest& req, ResponseMeta meta,
                   tool_calls::ToolFormat format)
      : state_(state),
        parts_(std::move(parts)),
        n_(req.best_of),
        returned_(req.n),
        ranked_(req.best_of > req.n),
        chat_(req.endpoint == Endpoint::kChatCompletions),
        want_logprobs_(req.logprobs >= 0),
        echo_(req.echo),
        include_usage_(req.include_usage),
        meta_(std::move(meta)),
        choices_(parts_.size() * static_cast<size_t>(n_)) {
    for (Part& part : parts_) part.prompt_chars = utf8_characters(part.prompt.text);
    for (size_t i = 0; i < choices_.size(); ++i) choices_[i].offset = part_of(i).prompt_chars;
    if (chat_ && req.tools.calls_allowed()) {
      std::vector<std::string> names;
      for (const tool_calls::ToolSpec& t : req.tools.specs) names.push_back(t.name);
      for (ChoiceState& c : choices_) c.tools.emplace(format, names);  // a parser per choice
    }
  }

  // Non-streaming: waits for every choice (a client that leaves is not noticed: the request runs
  // to its end, bounded by max_tokens and the context).
  HttpReply whole() {
    std::vector<EngineEvent> events;
    for (size_t p = 0; p < parts_.size(); ++p) {
      for (bool ended = false; !ended;) {
        events.clear();
        ended = parts_[p].request->next(events, 1000ms);
        for (EngineEvent& e : events) take(p, e, nullptr);
      }
    }
    if (!error_.empty()) return error_reply(ApiError(500, "server_error", "", error_));
    // Cancelled by a shutdown (the only way a non-streaming request is cancelled): a reply without
    // a finish_reason is not OpenAI's shape, and the text is cut anyway; the client may retry.
    for (const ChoiceState& c : choices_) {
      if (c.finish == FinishReason::kCancelled) {
        return overloaded_reply("The server is shutting down: the request was cancelled before it finished.");
      }
    }
    std::vector<ChoiceOut> out;
    for (const size_t i : returned_choices()) {
      ChoiceState& c = choices_[i];
      const Part& part = part_of(i);
      ChoiceOut o;
      o.index = static_cast<int32_t>(out.size());
      o.text = echo_ ? part.prompt.text + c.text : c.text;
      o.finish = c.finish;
      o.offset = echo_ ? 0 : part.prompt_chars;  // echoed, the logprobs start with the prompt's tokens
      if (want_logprobs_) o.logprobs = echo_ ? echoed_logprobs(part, std::move(c.logprobs)) : std::move(c.logprobs);
      if (c.tools) {
        std::vector<ToolCallOutput::Delta> ignored;
        c.tools->push(c.text, ignored);
        c.tools->finish(ignored);
        o.text = c.tools->content();
        o.tool_calls = c.tools->calls();
        o.called_tools = c.tools->saw_calls();
      }
      out.push_back(std::move(o));
    }
    const Usage u = usage();
    return json_reply(200, chat_ ? chat_completion(meta_, out, u) : text_completion(meta_, out, u));
  }

  // Streaming: role chunks (chat) or the echoed prompts, a chunk per token, a finish chunk per
  // choice, usage, [DONE]. Comment lines while nothing comes, so that a client gone away is
  // noticed (a write fails) and cancels. The parts' events are read in order: a later prompt's
  // chunks come once the earlier prompts' choices have ended (it runs meanwhile).
  void stream(Sink& sink) {
    meta_.stream_usage = include_usage_;
    sink_ = &sink;
    for (size_t i = 0; i < choices_.size(); ++i) {
      ChoiceOut first;
      first.index = static_cast<int32_t>(i);
      if (chat_) {
        send(chat_chunk(meta_, first, /*first=*/true));
      } else if (echo_ && !want_logprobs_) {  // with logprobs, once the prompt is scored (take())
        first.text = part_of(i).prompt.text;
        send(text_completion(meta_, {first}, std::nullopt));
      }
    }
    std::vector<EngineEvent> events;
    auto last_write = Clock::now();
    for (size_t p = 0; p < parts_.size() && !gone_; ++p) {
      for (;;) {
        events.clear();
        const bool ended = parts_[p].request->next(events, 250ms);
        for (EngineEvent& e : events) take(p, e, &sink);
        if (ended || gone_) break;
        if (!events.empty()) {
          last_write = Clock::now();
        } else if (Clock::now() - last_write > 1s) {
          write(":\n\n");
          last_write = Clock::now();
        }
      }
    }
    if (gone_) return;
    if (include_usage_) send(usage_chunk(meta_, chat_, usage()));
    write(kSseDone);
  }

  void cancel() {
    for (Part& part : parts_) part.request->cancel.store(true);
  }

 private:
  const Part& part_of(size_t choice) const { return parts_[choice / static_cast<size_t>(n_)]; }

  // The choices to return, in order: all of them; with best_of, each prompt's n candidates with
  // the highest mean token logprob (over the tokens its text shows), best first. A candidate
  // that wrote nothing has no mean and comes last.
  std::vector<size_t> returned_choices() const {
    std::vector<size_t> out(choices_.size());
    std::iota(out.begin(), out.end(), size_t{0});
    if (!ranked_) return out;
    const auto mean_logprob = [this](size_t i) {
      const std::vector<TokenOut>& tokens = choices_[i].logprobs;
      double sum = 0;
      for (const TokenOut& t : tokens) sum += t.logprob;
      return tokens.empty() ? -std::numeric_limits<double>::infinity() : sum / static_cast<double>(tokens.size());
    };
    out.clear();
    const auto per_prompt = static_cast<size_t>(n_);
    for (size_t p = 0; p < parts_.size(); ++p) {
      std::vector<std::pair<double, size_t>> ranked;
      for (size_t i = p * per_prompt; i < (p + 1) * per_prompt; ++i) ranked.emplace_back(mean_logprob(i), i);
      std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      for (size_t k = 0; k < static_cast<size_t>(returned_); ++k) out.push_back(ranked[k].second);
    }
    return out;
  }

  TokenOut token_out(const GeneratedToken& token) const {
    TokenOut t;
    t.text = token_piece(state_, token.id);
    t.logprob = token.logprob;
    for (const TokenLogprob& alt : token.top) t.top.emplace_back(token_piece(state_, alt.token), alt.logprob);
    return t;
  }

  // The prompt's logprobs, then the completion's.
  static std::vector<TokenOut> echoed_logprobs(const Part& part, std::vector<TokenOut> completion) {
    std::vector<TokenOut> all = part.prompt_logprobs;
    for (TokenOut& t : completion) all.push_back(std::move(t));
    return all;
  }

  // The held tokens whose bytes the text now shows, with their text offsets: characters from the
  // prompt's start to the token's first byte, which the tokens' own texts need not add up to (a
  // BOS has none, a token inside a character has part of one). At the end every held token goes,
  // unless a stop string took it.
  std::optional<std::vector<TokenOut>> release_logprobs(ChoiceState& c, size_t prompt_chars, bool ended, bool stopped) {
    std::optional<std::vector<TokenOut>> out;
    while (!c.held.empty()) {
      auto& [at, token] = c.held.front();
      if (at >= c.text.size() && !(ended && !stopped)) break;
      const size_t start = std::clamp(at, c.counted_bytes, c.text.size());  // an error leaves text held
      c.counted_chars += utf8_characters(std::string_view(c.text).substr(c.counted_bytes, start - c.counted_bytes));
      c.counted_bytes = start;
      token.text_offset = prompt_chars + c.counted_chars;
      if (!out) out.emplace();
      out->push_back(std::move(token));
      c.held.pop_front();
    }
    if (ended) c.held.clear();
    return out;
  }

  // The prompt's scores (echo with logprobs); streaming, each of its choices' echo chunk with them.
  void take_prompt_logprobs(size_t p, const EngineEvent& e, Sink* sink) {
    Part& part = parts_[p];
    TokenOut first;
    first.text = token_piece(state_, part.prompt.tokens.front());
    first.no_logprob = true;
    part.prompt_logprobs.push_back(std::move(first));
    for (const GeneratedToken& token : e.prompt_logprobs) part.prompt_logprobs.push_back(token_out(token));
    for (size_t i = 0; i < part.prompt_logprobs.size() && i < part.prompt.offsets.size(); ++i) {
      part.prompt_logprobs[i].text_offset = part.prompt.offsets[i];
    }
    if (sink == nullptr) return;
    for (int32_t j = 0; j < n_; ++j) {
      ChoiceOut o;
      o.index = static_cast<int32_t>(p) * n_ + j;
      o.text = part.prompt.text;
      o.logprobs = part.prompt_logprobs;
      send(text_completion(meta_, {o}, std::nullopt));
    }
  }

  void take(size_t p, EngineEvent& e, Sink* sink) {
    if (e.has_prompt_logprobs) take_prompt_logprobs(p, e, sink);
    const int32_t index = static_cast<int32_t>(p) * n_ + e.choice;
    ChoiceState& c = choices_[static_cast<size_t>(index)];
    const size_t prompt_chars = parts_[p].prompt_chars;
    if (e.has_token) {
      if (e.token.id >= 0) {
        const auto now = e.at;  // when the engine sent it: prompts read one after another stay exact
        // From the request's making (before it was submitted), so never negative.
        const Clock::time_point since_when = c.any_token ? c.last_token : parts_[p].request->arrival;
        const double since = std::chrono::duration<double>(now - since_when).count();
        (c.any_token ? state_.metrics.inter_token_latency : state_.metrics.time_to_first_token).observe(since);
        c.any_token = true;
        c.last_token = now;
        if (want_logprobs_ || ranked_) c.held.emplace_back(e.token.byte_offset, token_out(e.token));
      }
      c.text += e.token.text;
      std::optional<std::vector<TokenOut>> logprobs = release_logprobs(c, prompt_chars, false, false);
      if (sink == nullptr && logprobs) std::move(logprobs->begin(), logprobs->end(), std::back_inserter(c.logprobs));
      if (sink != nullptr && c.tools) {
        send_tool_deltas(c, index, e.token.text, false, std::move(logprobs));
      } else if (sink != nullptr && (!e.token.text.empty() || logprobs)) {
        ChoiceOut o;
        o.index = index;
        o.text = e.token.text;
        o.logprobs = std::move(logprobs);
        o.offset = c.offset;
        c.offset += utf8_characters(e.token.text);
        send(chat_ ? chat_chunk(meta_, o, false) : text_completion(meta_, {o}, std::nullopt));
      }
    }
    if (e.last) {
      c.stats = e.stats;
      c.finish = e.stats.finish;
      if (!e.error.empty()) error_ = e.error;
      std::optional<std::vector<TokenOut>> logprobs =
          release_logprobs(c, prompt_chars, true, c.finish == FinishReason::kStopString);
      if (sink == nullptr && logprobs) std::move(logprobs->begin(), logprobs->end(), std::back_inserter(c.logprobs));
      if (sink != nullptr) {
        if (!e.error.empty()) send(ApiError(500, "server_error", "", e.error).to_json());
        if (c.tools) {
          send_tool_deltas(c, index, {}, true, std::move(logprobs));
        } else if (logprobs) {  // tokens whose text never showed (no text, or held to the end)
          ChoiceOut o;
          o.index = index;
          o.logprobs = std::move(logprobs);
          o.offset = c.offset;
          send(chat_ ? chat_chunk(meta_, o, false) : text_completion(meta_, {o}, std::nullopt));
        }
        ChoiceOut o;
        o.index = index;
        o.finish = c.finish;
        o.called_tools = c.tools && c.tools->saw_calls();
        o.offset = c.offset;
        send(chat_ ? chat_chunk(meta_, o, false) : text_completion(meta_, {o}, std::nullopt));
      }
    }
  }

  // Streaming with tools: the text goes through the choice's parser, and what it settles goes out
  // as content or tool_calls chunks (never the raw markup). Logprobs ride on the first chunk, or
  // on an empty content chunk while the parser holds the text back.
  void send_tool_deltas(ChoiceState& c, int32_t choice, std::string_view text, bool finish,
                        std::optional<std::vector<TokenOut>> logprobs) {
    std::vector<ToolCallOutput::Delta> deltas;
    if (finish) {
      c.tools->finish(deltas);
    } else {
      c.tools->push(text, deltas);
    }
    if (deltas.empty() && logprobs) deltas.emplace_back();
    for (ToolCallOutput::Delta& d : deltas) {
      ChoiceOut o;
      o.index = choice;
      o.text = std::move(d.content);
      o.tool_calls = std::move(d.tool_calls);
      o.logprobs = std::move(logprobs);
      logprobs.reset();
      send(chat_chunk(meta_, o, false));
    }
  }

  // Summed over the prompts (each computed once, whatever n) and the choices.
  Usage usage() const {
    Usage u;
    for (size_t p = 0; p < parts_.size(); ++p) {
      u.prompt_tokens += static_cast<int32_t>(parts_[p].request->prompt.size());
      u.cached_tokens += choices_[p * static_cast<size_t>(n_)].stats.cached_tokens;
    }
    for (const ChoiceState& c : choices_) {
      u.completion_tokens += c.stats.generated_tokens;
      u.draft_tokens += c.stats.draft_tokens;
      u.accepted_tokens += c.stats.accepted_tokens;
      u.total_ms = std::max(u.total_ms, c.stats.total_ms);
    }
    u.first_token_ms = choices_.front().stats.first_token_ms;
    return u;
  }

  void send(const json& event) { write(sse_event(event)); }
  void write(std::string_view data) {
    if (gone_ || sink_ == nullptr) return;
    if (!sink_->write(data)) {
      gone_ = true;
      cancel();
    }
  }

  ServerState& state_;
  std::vector<Part> parts_;
  int32_t n_;         // candidates per prompt (best_of)
  int32_t returned_;  // choices returned per prompt (n): the best, when fewer than the candidates
  bool ranked_;
  bool chat_, want_logprobs_, echo_, include_usage_;
  ResponseMeta meta_;
  std::vector<ChoiceState> choices_;
  Sink* sink_ = nullptr;
  bool gone_ = false;
  std::string error_;
};

}  // namespace

HttpReply handle_completion(ServerState& state, const HttpRequest& http, bool chat) {
  const Endpoint endpoint = chat ? Endpoint::kChatCompletions : Endpoint::kCompletions;
  const CompletionRequest req =
      parse_completion_request(parse_body(http), endpoint, state.engine->n_vocab(), /*body_text=*/http.body);
  // The tool-call syntax is the template's (the one in use: --chat-template, else the model's).
  const tool_calls::ToolFormat format =
      tool_calls::detect_tool_format(LlmAccess::impl(*state.llm).chat_template.source);
  const size_t n_prompts = chat ? 1 : req.prompts.size();
  check_prompt_count(state, n_prompts);

  if (req.suffix && !has_fill_in_middle(state.tokenizer->vocab())) {
    invalid_request("suffix",
                    "this model has no fill-in-the-middle tokens (<|fim_prefix|>, <fim_prefix>, ...): 'suffix' "
                    "needs a code model trained to fill a gap");
  }

  const uint64_t seed = req.seed ? *req.seed : random_seed();
  std::vector<Part> parts;
  std::vector<std::shared_ptr<EngineRequest>> requests;
  for (size_t i = 0; i < n_prompts; ++i) {
    Part part;
    part.prompt = build_prompt(state, req, format, i);
    part.request = make_engine_request(state, req, part.prompt, format, seed);
    requests.push_back(part.request);
    parts.push_back(std::move(part));
  }
  if (!submit_requests(state, requests)) return overloaded_reply("The server is busy: too many requests are queued.");

  ResponseMeta meta;
  meta.id = random_id(chat ? "chatcmpl-" : "cmpl-");
  meta.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  meta.model = state.model_name;
  auto stream = std::make_shared<CompletionStream>(state, std::move(parts), req, std::move(meta), format);
  if (!req.stream) return stream->whole();
  return sse_reply(stream);
}

// POST /apply-template: the prompt /v1/chat/completions renders for the same body (tools, tool
// calls and tool results included), without generating; add_generation_prompt (default true).
HttpReply handle_apply_template(ServerState& state, const HttpRequest& http) {
  const nlohmann::json body = parse_body(http);
  bool add_generation_prompt = true;
  if (const auto it = body.find("add_generation_prompt"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      invalid_request("add_generation_prompt",
                      fmt::format("'add_generation_prompt' must be a boolean, not {}", json_type_name(*it)));
    }
    add_generation_prompt = it->get<bool>();
  }
  const CompletionRequest req =
      parse_completion_request(body, Endpoint::kChatCompletions, state.engine->n_vocab(), /*body_text=*/http.body);
  const tool_calls::ToolFormat format =
      tool_calls::detect_tool_format(LlmAccess::impl(*state.llm).chat_template.source);
  tool_call_constraint(req.tools, format);  // tools a completion would refuse are refused here too
  return json_reply(200, {{"prompt", render_chat(state, req, format, add_generation_prompt)}});
}

}  // namespace ember::server
