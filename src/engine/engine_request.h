// EngineRequest: what a client hands the serving engine (a generation with n choices, or an
// embedding) and the channel of events the engine sends back — tokens as they are sampled, each
// choice's end with its stats, an embedding — read by the client's thread (DESIGN.md §6).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "ember/session.h"

namespace ember {

// How an embedding request turns its tokens' final hidden states into one vector.
enum class Pooling : uint8_t { kMean, kLast, kCls };

struct EngineEvent {
  int32_t choice = 0;
  std::chrono::steady_clock::time_point at = {};  // when the engine sent it (set by push())
  // A generated token (id >= 0) or text held back until the end (id -1). Absent on an event that
  // only ends its choice.
  bool has_token = false;
  GeneratedToken token;
  // The choice has ended: `stats` says why and counts its tokens. No event of the choice follows.
  bool last = false;
  GenerationStats stats;
  std::vector<float> embedding;  // embedding requests: the L2-normalized vector, on the last event
  // EngineRequest::prompt_logprobs: once per request, before any token, with choice 0. The prompt's
  // tokens after the first, each with its logprob given the tokens before it and its alternatives
  // (text empty); empty for a one-token prompt.
  bool has_prompt_logprobs = false;
  std::vector<GeneratedToken> prompt_logprobs;
  std::string error;  // non-empty: the engine failed this request (the message)
};

struct EngineRequest {
  enum class Kind : uint8_t { kGenerate, kEmbed };
  Kind kind = Kind::kGenerate;
  std::vector<int32_t> prompt;  // non-empty, shorter than the engine's context (or as long, generating nothing)
  int32_t n = 1;                // choices; choice i samples with seed options.sampling.seed + i
  GenerateOptions options;      // max_tokens -1 runs until the context is full
  Pooling pooling = Pooling::kMean;
  // Generation: >= 0 scores the prompt (EngineEvent::prompt_logprobs), with this many alternatives
  // per token. Every prompt row then returns its logits, so the prompt adopts no cached prefix.
  int32_t prompt_logprobs = -1;

  // Set from any thread (a client that went away): the engine ends every choice (kCancelled) and
  // frees the request's KV blocks at its next step.
  std::atomic<bool> cancel{false};

  // The event channel. The engine pushes; the client pops (wait()).
  void push(EngineEvent event) {
    event.at = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      if (event.last) ++ended_;
      events_.push_back(std::move(event));
    }
    ready_.notify_all();
  }
  // Moves the pending events into `out` (appending), waiting up to `timeout` for one. Returns true
  // once the request has ended and `out` holds its last events: nothing more will come.
  bool next(std::vector<EngineEvent>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, timeout, [&] { return !events_.empty() || ended_locked(); });
    for (EngineEvent& e : events_) out.push_back(std::move(e));
    events_.clear();
    return ended_locked();
  }
  // Every choice has sent its last event (embedding requests: the one choice).
  bool ended() const {
    std::lock_guard lock(mutex_);
    return ended_locked();
  }

  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<EngineEvent> events_;
  int32_t ended_ = 0;
  bool ended_locked() const { return ended_ >= (kind == Kind::kEmbed ? 1 : n); }
};

}  // namespace ember
