// POST /v1/chat/completions and /v1/completions: the prompt (chat template or text or token ids),
// its checks against the context, the engine request, then the answer whole or as an SSE stream;
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
#include "server/server_state.h"
#include "server/tool_call_response.h"
#include "tokenizer/chat_template/chat_template.h"
#include "tokenizer/fill_in_middle.h"
#include "tokenizer/tokenizer.h"

namespace ember::server {
namespace {

// The server's speculative flags with the request's overrides. Off with mirostat unless the
// request asked for it (then a 400: its state follows every draw).
GenerateOptions::Speculative speculative_options(GenerateOptions::Speculative spec, const CompletionRequest& req) {
  if (req.draft_max) spec.draft_max = *req.draft_max;
  if (req.draft_min) spec.draft_min = *req.draft_min;
  if (req.p_min) spec.p_min = *req.p_min;
  if (req.ngram_max) {
    spec.ngram_max = *req.ngram_max;
    spec.ngram_min = std::min(spec.ngram_min, spec.ngram_max);
  }
  if (spec.draft_max > 0 && req.sampling.mirostat != 0) {
    if (req.draft_max) invalid_request(req.draft_max_param, "speculative decoding does not work with mirostat");
    spec.draft_max = 0;
  }
  if (spec.draft_max > 0 && spec.draft_min > spec.draft_max) {
    if (req.draft_min) {
      invalid_request(req.draft_min_param, fmt::format("'{}' ({}) is more than the draft maximum ({})",
                                                       req.draft_min_param, spec.draft_min, spec.draft_max));
    }
    spec.draft_min = spec.draft_max;
  }
  return spec;
}

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Prompt {
  std::vector<int32_t> tokens;
  std::string text;  // completions: for echo and text offsets
  // Completions: each token's text_offset in `text` (echo with logprobs reports them).
  std::vector<size_t> offsets;
};

// A token-id prompt's text and offsets, from one stream detokenization with the control tokens
// shown: the text is valid UTF-8 (a stray byte is U+FFFD, one character) and every offset counts
// the characters of the text before its token.
void detokenize_ids(const ServerState& state, Prompt& p) {
  Detokenizer detokenizer(*state.tokenizer, DecodeOptions{.render_special = true});
  size_t chars = 0;
  for (const int32_t id : p.tokens) {
    p.offsets.push_back(chars);
    const std::string piece = detokenizer.push(id);
    chars += utf8_characters(piece);
    p.text += piece;
  }
  p.text += detokenizer.flush();
}

// A text prompt's offsets: each token's text (control tokens shown) found where the text goes on,
// allowing for the space an SPM tokenizer puts before a word the text does not have; a token the
// text does not spell there (the BOS the tokenizer added, a normalized form) takes no characters.
void text_offsets(const ServerState& state, Prompt& p) {
  const std::string_view text = p.text;
  const std::vector<int32_t> own = state.llm->tokenize(p.text, /*add_special=*/false, /*parse_special=*/true);
  const bool suffix = own.size() <= p.tokens.size() &&
                      std::equal(own.begin(), own.end(), p.tokens.end() - static_cast<ptrdiff_t>(own.size()));
  const size_t added = suffix ? p.tokens.size() - own.size() : 0;  // in front: a BOS
  size_t at = 0, chars = 0;  // bytes of the text spelled so far, and their characters
  for (size_t i = 0; i < p.tokens.size(); ++i) {
    p.offsets.push_back(chars);
    if (i < added) continue;
    const std::string piece = state.tokenizer->decode(
        std::span(&p.tokens[i], 1), DecodeOptions{.render_special = true, .strip_space_prefix = false});
    size_t spelled = 0;
    if (text.substr(at).starts_with(piece)) {
      spelled = piece.size();
    } else if (piece.starts_with(' ') && text.substr(at).starts_with(std::string_view(piece).substr(1))) {
      spelled = piece.size() - 1;
    }
    chars += utf8_characters(text.substr(at, spelled));
    at += spelled;
  }
}

// The instruction the prompt must carry for the model to know the tools: for the generic format,
// the tools and the JSON shape to answer in; for DeepSeek under a template that never renders
// `tools` (the official V3.1 and R1-distill ones), the tools and the call syntax. Empty otherwise
// (the template renders the tools itself).
std::string tool_instruction(const Llm::Impl& impl, const CompletionRequest& req, tool_calls::ToolFormat format) {
  if (!req.tools.calls_allowed()) return {};
  if (format == tool_calls::ToolFormat::kGeneric) return generic_tool_instructions(req.tools);
  const bool deepseek = format == tool_calls::ToolFormat::kDeepSeekV31 || format == tool_calls::ToolFormat::kDeepSeekR1;
  if (deepseek && impl.chat_template.source.find("tools") == std::string::npos) {
    return deepseek_tool_instructions(req.tools, format);
  }
  return {};
}

// The chat template's context as Llm::apply_chat_template builds it, plus what tool calling adds:
// `tools`, assistant `tool_calls` (content null when absent), tool messages' `tool_call_id` (ids
// mapped to the 9 characters Mistral's templates demand: template_call_id), and
// tool_instruction(): a system message, or with `instruction_in_user` (templates that refuse a
// system role, gemma-2's) the start of the first user message.
nlohmann::ordered_json chat_context(const Llm::Impl& impl, const CompletionRequest& req, tool_calls::ToolFormat format,
                                    bool add_generation_prompt, bool instruction_in_user = false) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  size_t first = 0;  // the first request message not yet in `messages`
  std::string instruction = tool_instruction(impl, req, format);
  if (!instruction.empty() && !instruction_in_user) {
    // Joined to the client's system message: many templates take only one, and only first.
    const bool has_system = !req.messages.empty() && req.messages[0].role == "system";
    messages.push_back(
        {{"role", "system"}, {"content", has_system ? req.messages[0].content + "\n\n" + instruction : instruction}});
    first = has_system ? 1 : 0;
    instruction.clear();
  }
  for (size_t i = first; i < req.messages.size(); ++i) {
    const RequestMessage& m = req.messages[i];
    nlohmann::ordered_json message = {{"role", m.role}, {"content", m.content}};
    if (!instruction.empty() && m.role == "user") {
      message["content"] = instruction + "\n\n" + m.content;
      instruction.clear();
    }
    if (!m.tool_calls.is_null()) {
      // No content: null, as OpenAI sends it; Devstral's template indexes a non-string content
      // (content[0].text) and so gets "".
      if (!m.has_content) {
        message["content"] = format == tool_calls::ToolFormat::kDevstral ? nlohmann::ordered_json("") : nullptr;
      }
      message["tool_calls"] = m.tool_calls;
      for (auto& call : message["tool_calls"]) {
        if (call.is_object() && call.contains("id") && call["id"].is_string()) {
          call["id"] = tool_calls::template_call_id(format, call["id"].get<std::string>());
        }
      }
    }
    if (!m.tool_call_id.empty()) message["tool_call_id"] = tool_calls::template_call_id(format, m.tool_call_id);
    messages.push_back(std::move(message));
  }
  nlohmann::ordered_json context = {{"messages", std::move(messages)}};
  if (req.tools.active()) context["tools"] = req.tools.tools;
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = impl.chat_template.bos_token;
  context["eos_token"] = impl.chat_template.eos_token;
  return context;
}

// The chat prompt of `req` through the template in use (tools, tool calls and results included).
std::string render_chat(const ServerState& state, const CompletionRequest& req, tool_calls::ToolFormat format,
                        bool add_generation_prompt) {
  const Llm::Impl& impl = LlmAccess::impl(*state.llm);
  try {
    if (impl.chat_error) throw *impl.chat_error;
    try {
      return impl.chat_program->render(chat_context(impl, req, format, add_generation_prompt));
    } catch (const TemplateError&) {
      // The tool instruction went in as a system message, which some templates refuse (gemma-2's
      // "System role not supported"): again, with it in the first user message.
      if (tool_instruction(impl, req, format).empty()) throw;
      return impl.chat_program->render(
          chat_context(impl, req, format, add_generation_prompt, /*instruction_in_user=*/true));
    }
  } catch (const TemplateError& e) {
    invalid_request("messages", std::string("the chat template failed on these messages: ") + e.what());
  }
}

// The prompt of a chat request, or of a completions request's prompt `index`, checked against the
// context.
Prompt build_prompt(const ServerState& state, const CompletionRequest& req, tool_calls::ToolFormat format,
                    size_t index) {
  Prompt p;
  if (req.endpoint == Endpoint::kChatCompletions) {
    const std::string text = render_chat(state, req, format, /*add_generation_prompt=*/true);
    p.tokens = state.llm->tokenize(text, /*add_special=*/true, /*parse_special=*/true);
  } else if (const PromptInput& input = req.prompts[index]; !input.tokens.empty()) {
    p.tokens = input.tokens;
    detokenize_ids(state, p);
  } else if (req.suffix) {
    // Fill in the middle: the prompt is the text before the gap; offsets count from its start.
    p.tokens = fill_in_middle_prompt(*state.tokenizer, input.text, *req.suffix);
    p.text = input.text;
  } else {
    // As llama.cpp's server: control-token text in a raw prompt becomes those tokens.
    p.tokens = state.llm->tokenize(input.text, /*add_special=*/true, /*parse_special=*/true);
    p.text = input.text;
    if (req.echo && req.logprobs >= 0) text_offsets(state, p);
  }
  const bool several = req.prompts.size() > 1;
  const std::string param = req.endpoint == Endpoint::kChatCompletions ? "messages"
                            : several                                  ? fmt::format("prompt[{}]", index)
                                                                       : "prompt";
  const std::string which = several ? fmt::format("prompt {}", index) : param;
  if (p.tokens.empty()) invalid_request(param, fmt::format("the {} is empty", which));
  const int32_t context = state.engine->options().context;
  const auto n_prompt = static_cast<int32_t>(p.tokens.size());
  // A prompt that fills the context may still be scored (max_tokens 0: nothing generated).
  if (n_prompt > context || (n_prompt == context && req.max_tokens != 0)) {
    throw ApiError(400, "invalid_request_error", param,
                   fmt::format("This model's maximum context length is {} tokens. However, your {} resulted in {} "
                               "tokens, which leaves no room to generate.",
                               context, which, n_prompt),
                   "context_length_exceeded");
  }
  if (req.max_tokens > context - n_prompt) {
    throw ApiError(400, "invalid_request_error", "max_tokens",
                   fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                               "({} in the {}, {} for the completion).",
                               context, int64_t{n_prompt} + req.max_tokens, n_prompt, which, req.max_tokens),
                   "context_length_exceeded");
  }
  return p;
}

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
  // Every prompt is queued at once (all or none), so a batch larger than the queue and the running
  // slots together can never be taken: a client error, not a busy server.
  const EngineOptions& engine = state.engine->options();
  if (const int64_t most = int64_t{engine.max_waiting} + engine.max_running; static_cast<int64_t>(n_prompts) > most) {
    invalid_request("prompt", fmt::format("this server takes at most {} prompts in one request (--max-queue {} + "
                                          "--parallel {}); this one has {}",
                                          most, engine.max_waiting, engine.max_running, n_prompts));
  }

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
    auto request = std::make_shared<EngineRequest>();
    request->prompt = part.prompt.tokens;
    request->n = req.best_of;  // candidates; the best n are returned
    request->options.sampling = req.sampling;
    request->options.sampling.seed = seed;  // every prompt's choice j draws with seed + j
    request->options.stop.max_tokens = req.max_tokens;
    request->options.stop.strings = req.stop;
    request->options.stop.ignore_eos = req.ignore_eos;
    // Choosing the best candidates reads each token's logprob.
    request->options.logprobs = req.best_of > req.n ? std::max(req.logprobs, 0) : req.logprobs;
    request->options.speculative = speculative_options(state.options.speculative, req);
    request->options.constraint = req.tools.calls_allowed() ? tool_call_constraint(req.tools, format) : req.constraint;
    if (req.echo && req.logprobs >= 0) request->prompt_logprobs = req.logprobs;
    part.request = request;
    requests.push_back(std::move(request));
    parts.push_back(std::move(part));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      state.engine->check_request(*requests[i]);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kInvalidArgument) throw;
      if (requests.size() == 1) invalid_request("", e.what());
      invalid_request(fmt::format("prompt[{}]", i), fmt::format("prompt {}: {}", i, e.what()));
    }
  }
  if (!state.engine->submit(requests)) return overloaded_reply("The server is busy: too many requests are queued.");

  ResponseMeta meta;
  meta.id = random_id(chat ? "chatcmpl-" : "cmpl-");
  meta.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  meta.model = state.model_name;
  auto stream = std::make_shared<CompletionStream>(state, std::move(parts), req, std::move(meta), format);
  if (!req.stream) return stream->whole();
  HttpReply reply;
  reply.content_type = "text/event-stream";  // exactly: any other text/* type gets gzipped, which buffers
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.stream = [stream](Sink& sink) { stream->stream(sink); };
  reply.on_abort = [stream] { stream->cancel(); };
  return reply;
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
