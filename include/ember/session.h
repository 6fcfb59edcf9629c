// ember::Session — one conversation with a loaded model: its own KV cache, generating text that
// streams token by token, either to a callback or pulled from a Generation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/export.h"
#include "ember/llm.h"
#include "ember/sampling.h"

namespace ember {

struct GenerateOptions {
  SamplingParams sampling = {};
  StopConditions stop = {};
  // Logprobs of each generated token (from the model's distribution, before sampling transforms)
  // and of this many best alternatives; -1: none.
  int32_t logprobs = -1;
  // Prompt text: add BOS where the vocabulary asks (off when a chat template writes it), and turn
  // control-token text into control tokens (off for untrusted text).
  bool add_special = true;
  bool parse_special = true;
  // Structured output (JSON Schema, JSON mode, GBNF, regex); kNone by default.
  OutputConstraint constraint = {};
  // Speculative decoding: up to `draft_max` tokens proposed by the session's draft model
  // (SessionOptions::draft_model), else by prompt lookup (the tokens that followed an earlier
  // occurrence of the last ngram_min..ngram_max tokens of prompt and output), checked in one
  // forward pass. The output has the distribution plain decoding would; greedy gives the same
  // tokens (bit for bit with LoadOptions::batch_invariant: otherwise a verify step's rows may round
  // differently from one-row steps, and a near-tie can flip). The draft length adapts to the
  // acceptance rate between draft_min and draft_max; a prompt-lookup draft shorter than draft_min
  // is not checked. draft_max 0: off (a draft model alone does not turn it on). Not with mirostat.
  struct Speculative {
    int32_t draft_max = 0;
    int32_t draft_min = 1;
    int32_t ngram_min = 1;
    int32_t ngram_max = 3;
    // A draft model's draft ends where the draft model is less sure of its next token than this
    // (its softmax probability at temperature 1, before the sampler), as llama.cpp's --draft-p-min:
    // unsure drafts are mostly rejected and cost a draft step and a verified row each. 0: off.
    float p_min = 0.75f;
    // Greedy only: pause while speculative steps measure slower per token than plain ones (the
    // machine and the models decide), trying again later. The output is the same either way; off,
    // the steps taken do not depend on timing (tests counting them).
    bool pause_when_slower = true;
  } speculative = {};
};

// One generated token. `text` is what may be shown now: it is empty while a UTF-8 character or a
// possible stop string is incomplete, and can carry text of earlier tokens once released. The
// concatenated texts are the generation's output. A generation may end with a piece that has no
// token (id -1): text held back until the end.
struct GeneratedToken {
  int32_t id = -1;
  std::string text = {};
  float logprob = 0.0f;                // when GenerateOptions::logprobs >= 0
  std::vector<TokenLogprob> top = {};  // the best `logprobs` alternatives, best first
  // Where this token's bytes begin in the generation's whole text, held-back bytes counted (an
  // incomplete character, a possible start of a stop string). The `text`s shown so far are a prefix
  // of that text, so the token's own bytes have been shown once more than byte_offset bytes have.
  // When a stop string ends the generation, a token at or past the end of the text shown made only
  // the stop string (logprobs that follow the text leave it out). The last piece (id -1): the
  // length of the text shown before it.
  size_t byte_offset = 0;
};

enum class FinishReason : uint8_t {
  kNone,             // still generating
  kEndOfGeneration,  // the model ended its turn (EOS, EOT, ...)
  kMaxTokens,        // StopConditions::max_tokens
  kStopString,       // one of StopConditions::strings (not part of the output)
  kMaxTime,          // StopConditions::max_time_ms
  kContextFull,      // no room left in the session's context
  kCancelled,        // Session::cancel()
  kError,            // a step threw (a hook, an allocation): the exception reached the caller
};
EMBER_API std::string_view finish_reason_name(FinishReason reason) noexcept;  // "stop", "length", ...

struct GenerationStats {
  int32_t prompt_tokens = 0;  // the prompt's tokens
  int32_t cached_tokens = 0;  // of which were already in the KV cache (not computed again)
  int32_t generated_tokens = 0;
  int32_t decode_steps = 0;  // one-token forward steps after the prompt's
  double prefill_ms = 0;     // the prompt's uncached tokens
  double decode_ms = 0;
  double sample_ms = 0;
  double first_token_ms = 0;  // generate() to the first generated token (0: none was generated)
  double total_ms = 0;
  FinishReason finish = FinishReason::kNone;
  std::string stop_string = {};  // which one, for kStopString
  int32_t draft_tokens = 0;      // speculative decoding: tokens proposed ...
  int32_t accepted_tokens = 0;   // ... and kept
  // By position in the draft (0: the first proposed token): how many drafts reached it, and how
  // many of those kept it.
  std::vector<int32_t> drafted_at = {};
  std::vector<int32_t> accepted_at = {};
};

class Session;

// A generation in progress, pulled one token at a time (a range: `for (auto& t : generation)`).
// Each next() runs one forward step (the prompt's, in chunks, or one token's); nothing runs ahead. Destroying it ends
// the generation; so does the session's next generate() or reset(). It must not outlive its session, and is used from
// one thread at a time (Session::cancel() is the exception).
class EMBER_API Generation {
 public:
  Generation(Generation&&) noexcept;
  Generation& operator=(Generation&&) noexcept;
  ~Generation();

  // The next token, or false when the generation has finished (stats().finish says why).
  bool next(GeneratedToken& token);
  const GenerationStats& stats() const noexcept;
  // The text generated so far (stop strings and held-back text excluded).
  const std::string& text() const noexcept;

  class Iterator {
   public:
    using value_type = GeneratedToken;
    using difference_type = std::ptrdiff_t;
    const GeneratedToken& operator*() const noexcept { return token_; }
    const GeneratedToken* operator->() const noexcept { return &token_; }
    Iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(std::default_sentinel_t) const noexcept { return generation_ == nullptr; }

   private:
    friend class Generation;
    explicit Iterator(Generation* generation) : generation_(generation) { advance(); }
    void advance() {
      if (generation_ != nullptr && !generation_->next(token_)) generation_ = nullptr;
    }
    Generation* generation_;
    GeneratedToken token_;
  };
  Iterator begin() { return Iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend class Session;
  explicit Generation(Session* session);
  bool live() const noexcept;      // still the session's current generation
  void end_generation() noexcept;  // cancels it if it is
  Session* session_;
  uint64_t epoch_;
};

struct SessionOptions {
  // Keep the KV cache of the previous prompt and generation, so a prompt that starts the same way
  // (the next turn of a conversation) computes only its new tokens.
  bool reuse_prefix = true;
  // Speculative decoding's draft model (GenerateOptions::speculative): a smaller model with the
  // same vocabulary. Null: drafts come from prompt lookup. Its weights are shared by the sessions
  // that name it; each has its own KV cache of it. Throws Error(kInvalidArgument) at construction
  // when the vocabularies differ.
  std::shared_ptr<Llm> draft_model = nullptr;
};

class EMBER_API Session {
 public:
  // The model stays loaded while a session holds it. Throws Error(kOutOfMemory) when its KV cache
  // cannot be allocated.
  explicit Session(std::shared_ptr<Llm> llm, const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts generating after `prompt` (the whole context: with reuse_prefix, the tokens it shares
  // with what the cache holds are not computed again). Throws Error(kInvalidArgument) for bad
  // options or a prompt that leaves no room in the context. Starting a generation ends the
  // previous one of this session.
  Generation generate(std::string_view prompt, const GenerateOptions& options = {});
  Generation generate(std::span<const int32_t> prompt_tokens, const GenerateOptions& options = {});

  // The callback style: calls on_token for each token until the generation finishes or the
  // callback returns false (then finish is kCancelled, unless that token ended it anyway; text
  // held back until the end is not passed to a callback that asked to stop).
  GenerationStats generate(std::string_view prompt, const GenerateOptions& options,
                           const std::function<bool(const GeneratedToken&)>& on_token);

  // Thread-safe, from any thread: the running generation stops before its next forward step
  // (finish kCancelled). A cancel with no generation running affects none.
  void cancel() noexcept;

  // Forgets the conversation (the KV cache is emptied).
  void reset();

  // The tokens whose K/V the cache holds, in order (valid until the next generate() or next()).
  std::span<const int32_t> cached_tokens() const noexcept;
  const std::shared_ptr<Llm>& llm() const noexcept;

  struct Impl;

 private:
  friend class Generation;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
