// What every completion route does before it generates: the prompt (chat template, text, token
// ids, fill-in-the-middle or llama.cpp's /infill layout), its checks against the context, and the
// engine request that runs its choices.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine_request.h"
#include "server/completion_request.h"
#include "server/server_state.h"
#include "tool_calls/tool_format.h"

namespace ember::server {

struct Prompt {
  std::vector<int32_t> tokens;
  std::string text;  // completions: for echo and text offsets
  // Completions: each token's text_offset in `text` (echo with logprobs reports them).
  std::vector<size_t> offsets;
};

// The prompt of a chat request, or of a completions request's prompt `index`, checked against the
// context: a 400 (context_length_exceeded) when it leaves no room for max_tokens.
Prompt build_prompt(const ServerState& state, const CompletionRequest& req, tool_calls::ToolFormat format,
                    size_t index);

// The chat prompt of `req` through the template in use (tools, tool calls and results included).
std::string render_chat(const ServerState& state, const CompletionRequest& req, tool_calls::ToolFormat format,
                        bool add_generation_prompt);

// The engine request for one prompt: `n` choices (best_of candidates), the sampling, stops,
// logprobs, speculative and constraint options of `req`, every choice j drawing with seed + j.
// Throws ApiError 400 for speculative options that contradict the sampling.
std::shared_ptr<EngineRequest> make_engine_request(const ServerState& state, const CompletionRequest& req,
                                                   const Prompt& prompt, tool_calls::ToolFormat format, uint64_t seed);

// Every prompt is queued at once (all or none), so a batch larger than the queue and the running
// slots together can never be taken: a 400, not a busy server.
void check_prompt_count(const ServerState& state, size_t n_prompts);

// Submits every request at once (all or none), after the engine's checks: a 400 naming the prompt
// for a request the engine refuses, false when the queue is full.
bool submit_requests(ServerState& state, const std::vector<std::shared_ptr<EngineRequest>>& requests);

// The SSE reply of a completion stream (any type with stream(Sink&) and cancel()): written as the
// engine produces it, cancelled when the client goes away.
template <typename Stream>
HttpReply sse_reply(std::shared_ptr<Stream> stream) {
  HttpReply reply;
  reply.content_type = "text/event-stream";  // exactly: any other text/* type gets gzipped, which buffers
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.stream = [stream](Sink& sink) { stream->stream(sink); };
  reply.on_abort = [stream] { stream->cancel(); };
  return reply;
}

}  // namespace ember::server
