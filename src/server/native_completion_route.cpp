// POST /completion (and /completions) and /infill: llama.cpp's own completion endpoints, as its
// clients (llama.vim, llama.vscode, scripts written against llama-server) call them. The prompt
// and engine requests are the OpenAI routes' (completion_setup.h); the answer has llama.cpp's
// shape: {content, stop_type, timings, ...}, an array for several prompts or choices, streamed as
// SSE chunks of {content, tokens, stop: false} and a final object with stop: true (no [DONE]).
#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "server/completion_request.h"
#include "server/completion_response.h"
#include "server/completion_setup.h"
#include "server/native_response.h"
#include "server/server_state.h"
#include "tokenizer/fill_in_middle.h"
#include "tokenizer/tokenizer.h"

namespace ember::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One choice as it builds up.
struct NativeChoice {
  std::string text;
  std::vector<int32_t> tokens;
  // n_probs: each token's probabilities with the byte offset where its text begins.
  std::vector<std::pair<size_t, NativeTokenProbs>> probs;
  std::optional<FinishReason> finish;
  GenerationStats stats;
  std::optional<Clock::time_point> first_token, last_token;
  // Ended by t_max_predict_ms or n_indent: nothing more is shown, and its stop_type is "limit";
  // its counts and times stop at the token that ended it (the engine may have made more).
  bool limited = false;
  // n_indent: where the line after the last newline begins (npos before any), and whether its
  // indentation has been measured.
  size_t line_start = std::string::npos;
  bool line_measured = false;
};

struct NativePart {
  Prompt prompt;
  std::string prompt_text;  // as llama.cpp reports it: control tokens spelled out
  std::shared_ptr<EngineRequest> request;
};

class NativeStream {
 public:
  NativeStream(ServerState& state, std::vector<NativePart> parts, const CompletionRequest& req, uint64_t seed)
      : state_(state),
        parts_(std::move(parts)),
        n_(req.n),
        options_(req.native),
        want_probs_(req.logprobs > 0),
        settings_(native_generation_settings(req, seed, state.engine->options().context)),
        choices_(parts_.size() * static_cast<size_t>(n_)) {}

  HttpReply whole() {
    while (poll(nullptr)) {
    }
    if (!error_.empty()) return error_reply(ApiError(500, "server_error", "", error_));
    for (const NativeChoice& c : choices_) {
      if (c.finish == FinishReason::kCancelled && !c.limited) {
        return overloaded_reply("The server is shutting down: the request was cancelled before it finished.");
      }
    }
    if (choices_.size() == 1) return json_reply(200, final_object(0, /*streamed=*/false));
    json all = json::array();
    for (size_t i = 0; i < choices_.size(); ++i) all.push_back(final_object(i, false));
    return json_reply(200, all);
  }

  // A chunk per token, then each choice's final object, the prompts' chunks interleaved as they
  // come (llama.cpp's order: `index` tells them apart); comment lines while nothing comes, so that
  // a client gone away is noticed (a write fails) and cancels.
  void stream(Sink& sink) {
    sink_ = &sink;
    auto last_write = Clock::now();
    for (bool more = true; more && !gone_;) {
      const size_t written = writes_;
      more = poll(&sink);
      if (writes_ != written) {
        last_write = Clock::now();
      } else if (Clock::now() - last_write > 1s) {
        write(":\n\n");
        last_write = Clock::now();
      }
    }
  }

  void cancel() {
    for (NativePart& part : parts_) part.request->cancel.store(true);
  }

 private:
  // Takes what every unfinished prompt has sent, waiting a moment for the first of them when none
  // has anything; whether any prompt is still running. Every prompt is read each round, so that a
  // limit in any of them stops it at once.
  bool poll(Sink* sink) {
    if (ended_.empty()) ended_.assign(parts_.size(), false);
    bool any_event = false, running = false;
    for (size_t p = 0; p < parts_.size(); ++p) {
      if (ended_[p]) continue;
      events_.clear();
      ended_[p] = parts_[p].request->next(events_, 0ms);
      any_event = any_event || !events_.empty();
      for (EngineEvent& e : events_) take(p, e, sink);
      running = running || !ended_[p];
    }
    if (running && !any_event) {
      for (size_t p = 0; p < parts_.size(); ++p) {
        if (ended_[p]) continue;
        events_.clear();
        ended_[p] = parts_[p].request->next(events_, parts_.size() == 1 ? 250ms : 20ms);
        for (EngineEvent& e : events_) take(p, e, sink);
        break;
      }
    }
    return std::find(ended_.begin(), ended_.end(), false) != ended_.end();
  }

  NativeTokenProbs token_probs(const GeneratedToken& token) const {
    NativeTokenProbs t{.id = token.id, .text = token_piece(state_, token.id), .logprob = token.logprob, .top = {}};
    for (const TokenLogprob& alt : token.top) t.top.push_back({alt.token, token_piece(state_, alt.token), alt.logprob});
    return t;
  }

  // n_indent, as llama.cpp: once a newline has come, the next line's first character that is not
  // a space or tab (a newline counts: a blank line too) ends the answer when fewer than n_indent
  // spaces and tabs come before it. The bytes of `piece` to keep.
  size_t indent_cut(NativeChoice& c, std::string_view piece) const {
    if (options_.n_indent <= 0) return piece.size();
    for (size_t i = 0; i < piece.size(); ++i) {
      const size_t at = c.text.size() + i;
      if (c.line_start != std::string::npos && !c.line_measured && piece[i] != ' ' && piece[i] != '\t') {
        c.line_measured = true;
        if (at - c.line_start < static_cast<size_t>(options_.n_indent)) {
          c.limited = true;
          return i;
        }
      }
      if (piece[i] == '\n') {
        c.line_start = at + 1;
        c.line_measured = false;
      }
    }
    return piece.size();
  }

  void take(size_t p, EngineEvent& e, Sink* sink) {
    const size_t index = p * static_cast<size_t>(n_) + static_cast<size_t>(e.choice);
    NativeChoice& c = choices_[index];
    if (e.has_token && !c.limited) {
      json chunk_probs = json::array();
      if (e.token.id >= 0) {
        // From the request's making (before it was submitted), so never negative.
        const Clock::time_point since = c.last_token ? *c.last_token : parts_[p].request->arrival;
        (c.last_token ? state_.metrics.inter_token_latency : state_.metrics.time_to_first_token)
            .observe(std::chrono::duration<double>(e.at - since).count());
        if (!c.first_token) c.first_token = e.at;
        c.last_token = e.at;
        c.tokens.push_back(e.token.id);
        if (want_probs_) {
          NativeTokenProbs probs = token_probs(e.token);
          if (sink != nullptr) chunk_probs.push_back(native_token_probs(probs));
          c.probs.emplace_back(e.token.byte_offset, std::move(probs));
        }
      }
      std::string_view piece = e.token.text;
      piece = piece.substr(0, indent_cut(c, piece));
      c.text += piece;
      // t_max_predict_ms, as llama.cpp: checked where a piece has a newline, from the first token.
      if (!c.limited && options_.t_max_predict_ms > 0 && c.first_token && piece.find('\n') != std::string_view::npos &&
          std::chrono::duration<double, std::milli>(e.at - *c.first_token).count() > options_.t_max_predict_ms) {
        c.limited = true;
      }
      if (sink != nullptr) {
        json chunk = {{"index", index},
                      {"content", piece},
                      {"tokens", e.token.id >= 0 ? json::array({e.token.id}) : json::array()},
                      {"stop", false},
                      {"id_slot", -1},
                      {"tokens_predicted", c.tokens.size()},
                      {"tokens_evaluated", parts_[p].prompt.tokens.size()}};
        if (want_probs_) chunk["completion_probabilities"] = std::move(chunk_probs);
        send(chunk);
      }
      if (c.limited) cancel_if_all_ended(p);
    }
    if (e.last) {
      c.stats = e.stats;
      c.finish = e.stats.finish;
      if (!e.error.empty()) error_ = e.error;
      cancel_if_all_ended(p);  // a choice stopped by a limit may be all that still runs
      if (sink != nullptr) {
        if (!e.error.empty()) {
          send(ApiError(500, "server_error", "", e.error).to_json());
        } else {
          send(final_object(index, /*streamed=*/true));
        }
      }
    }
  }

  // A limit ends a choice here; the engine stops the request once none of its choices runs on.
  void cancel_if_all_ended(size_t p) {
    const auto first = p * static_cast<size_t>(n_);
    for (size_t i = first; i < first + static_cast<size_t>(n_); ++i) {
      if (!choices_[i].limited && !choices_[i].finish) return;
    }
    parts_[p].request->cancel.store(true);
  }

  // llama.cpp's answer object; streamed, its text and tokens came in the chunks before it.
  json final_object(size_t index, bool streamed) const {
    const NativeChoice& c = choices_[index];
    const NativePart& part = parts_[index / static_cast<size_t>(n_)];
    const auto n_prompt = static_cast<int32_t>(part.prompt.tokens.size());
    // A limit's counts and times stop at the token that ended the answer.
    GenerationStats stats = c.stats;
    if (c.limited) {
      stats.generated_tokens = static_cast<int32_t>(c.tokens.size());
      if (c.first_token && c.last_token) {
        stats.total_ms =
            stats.first_token_ms + std::chrono::duration<double, std::milli>(*c.last_token - *c.first_token).count();
      }
    }
    json reply = {
        {"index", index},
        {"content", streamed ? std::string() : c.text},
        {"tokens", options_.return_tokens && !streamed ? json(c.tokens) : json::array()},
        {"id_slot", -1},
        {"stop", true},
        {"model", state_.model_name},
        {"tokens_predicted", stats.generated_tokens},
        {"tokens_evaluated", n_prompt},
        {"generation_settings", settings_},
        {"prompt", part.prompt_text},
        {"has_new_line", c.text.find('\n') != std::string::npos},
        {"truncated", c.finish == FinishReason::kContextFull},
        {"stop_type", native_stop_type(c.finish, c.limited)},
        {"stopping_word", c.finish == FinishReason::kStopString && !c.limited ? c.stats.stop_string : std::string()},
        {"tokens_cached", n_prompt + stats.generated_tokens},
        {"timings", native_timings(stats, n_prompt, stats.generated_tokens)}};
    if (want_probs_ && !streamed) {
      // A stop string or a limit drops the tokens past the text shown.
      const bool cut = c.limited || c.finish == FinishReason::kStopString;
      json probs = json::array();
      for (const auto& [at, token] : c.probs) {
        if (!cut || at < c.text.size()) probs.push_back(native_token_probs(token));
      }
      reply["completion_probabilities"] = std::move(probs);
    }
    return select_response_fields(reply, options_.response_fields);
  }

  void send(const json& event) { write(sse_event(event)); }
  void write(std::string_view data) {
    if (gone_ || sink_ == nullptr) return;
    ++writes_;
    if (!sink_->write(data)) {
      gone_ = true;
      cancel();
    }
  }

  ServerState& state_;
  std::vector<NativePart> parts_;
  int32_t n_;
  NativeOptions options_;
  bool want_probs_;
  json settings_;
  std::vector<NativeChoice> choices_;
  Sink* sink_ = nullptr;
  size_t writes_ = 0;
  bool gone_ = false;
  std::string error_;
  std::vector<bool> ended_;  // per prompt: its request has sent its last event
  std::vector<EngineEvent> events_;
};

}  // namespace

HttpReply handle_native_completion(ServerState& state, const HttpRequest& http, bool infill) {
  // As llama.cpp, before the body: a model without the tokens cannot fill in at all.
  if (infill && !has_fill_in_middle(state.tokenizer->vocab())) {
    throw ApiError(501, "not_supported_error", "",
                   "Infill is not supported by this model: it has no fill-in-the-middle tokens (<|fim_prefix|>, "
                   "<fim_prefix>, ...); /infill needs a code model trained to fill a gap");
  }
  const CompletionRequest req =
      parse_completion_request(parse_body(http), infill ? Endpoint::kInfill : Endpoint::kNativeCompletion,
                               state.engine->n_vocab(), /*body_text=*/http.body);
  check_prompt_count(state, req.prompts.size());
  const uint64_t seed = req.seed ? *req.seed : random_seed();
  std::vector<NativePart> parts;
  std::vector<std::shared_ptr<EngineRequest>> requests;
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    NativePart part;
    part.prompt = build_prompt(state, req, tool_calls::ToolFormat::kGeneric, i);
    part.prompt_text = state.tokenizer->decode(part.prompt.tokens, DecodeOptions{.render_special = true});
    part.request = make_engine_request(state, req, part.prompt, tool_calls::ToolFormat::kGeneric, seed);
    requests.push_back(part.request);
    parts.push_back(std::move(part));
  }
  if (!submit_requests(state, requests)) return overloaded_reply("The server is busy: too many requests are queued.");
  auto stream = std::make_shared<NativeStream>(state, std::move(parts), req, seed);
  if (!req.stream) return stream->whole();
  return sse_reply(stream);
}

}  // namespace ember::server
