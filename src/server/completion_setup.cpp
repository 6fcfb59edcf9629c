// The prompt and the engine request of a completion request (completion_setup.h).
#include "server/completion_setup.h"

#include <algorithm>
#include <span>
#include <string_view>

#include "api/llm_impl.h"
#include "server/completion_response.h"
#include "server/tool_call_request.h"
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

}  // namespace

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

Prompt build_prompt(const ServerState& state, const CompletionRequest& req, tool_calls::ToolFormat format,
                    size_t index) {
  Prompt p;
  if (req.endpoint == Endpoint::kChatCompletions) {
    const std::string text = render_chat(state, req, format, /*add_generation_prompt=*/true);
    p.tokens = state.llm->tokenize(text, /*add_special=*/true, /*parse_special=*/true);
  } else if (req.endpoint == Endpoint::kInfill) {
    // Room for the answer: max_tokens, or a quarter of the context without a limit.
    const int32_t context = state.engine->options().context;
    const int32_t room = req.max_tokens >= 0 ? std::max(req.max_tokens, 1) : context / 4;
    p.tokens = infill_prompt(*state.tokenizer,
                             InfillParts{.prefix = req.infill_prefix,
                                         .suffix = req.infill_suffix,
                                         .prompt = req.prompts.front().text,
                                         .extra = req.infill_extra},
                             std::max(context - room, 0));
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
  std::string which = several ? fmt::format("prompt {}", index) : param;
  if (req.suffix) which += " and suffix";                          // fill in the middle: both are in the prompt
  if (req.endpoint == Endpoint::kInfill) which = "infill prompt";  // the code is cut to fit; the prompt field is not
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

std::shared_ptr<EngineRequest> make_engine_request(const ServerState& state, const CompletionRequest& req,
                                                   const Prompt& prompt, tool_calls::ToolFormat format, uint64_t seed) {
  auto request = std::make_shared<EngineRequest>();
  request->prompt = prompt.tokens;
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
  return request;
}

void check_prompt_count(const ServerState& state, size_t n_prompts) {
  const EngineOptions& engine = state.engine->options();
  if (const int64_t most = int64_t{engine.max_waiting} + engine.max_running; static_cast<int64_t>(n_prompts) > most) {
    invalid_request("prompt", fmt::format("this server takes at most {} prompts in one request (--max-queue {} + "
                                          "--parallel {}); this one has {}",
                                          most, engine.max_waiting, engine.max_running, n_prompts));
  }
}

bool submit_requests(ServerState& state, const std::vector<std::shared_ptr<EngineRequest>>& requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      state.engine->check_request(*requests[i]);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kInvalidArgument) throw;
      if (requests.size() == 1) invalid_request("", e.what());
      invalid_request(fmt::format("prompt[{}]", i), fmt::format("prompt {}: {}", i, e.what()));
    }
  }
  return state.engine->submit(requests);
}

}  // namespace ember::server
