// SequenceDecoder: what happens to one sequence's logits row after a forward step — sample, accept,
// logprobs, end of generation, detokenize, stop strings, max tokens / time — and the held-back text
// at the end. Shared by Generator (one sequence) and the serving engine (many), so the rules exist once.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/timer.h"
#include "ember/session.h"
#include "engine/draft_model.h"
#include "engine/logprobs.h"
#include "engine/sampler_chain.h"
#include "engine/speculative.h"
#include "engine/stop_strings.h"
#include "grammar/matcher.h"
#include "model/batch.h"
#include "tokenizer/tokenizer.h"

namespace ember {

// The most draft tokens one speculative step may propose.
inline constexpr int32_t kMaxDraftTokens = 64;

// Throws Error(kInvalidArgument) for logprobs / max_tokens / max_time_ms / speculative options out
// of range (and speculation with mirostat).
void check_generate_options(const GenerateOptions& options, int32_t n_vocab);

class SequenceDecoder {
 public:
  // Validates `options` (throws Error(kInvalidArgument) naming the field; the sampler's own checks
  // included; a constraint that does not compile, with the grammar's message) and lets penalties
  // and DRY see `prompt`. The tokenizer must outlive the decoder.
  SequenceDecoder(const Tokenizer& tokenizer, int32_t n_vocab, const GenerateOptions& options,
                  std::span<const int32_t> prompt);

  // Samples the next token from `logits` (the row of the sequence's last token). Returns true with
  // `token` filled (its text may be empty while held back) when a token is generated; false when
  // the model ended its turn (nothing to emit; finished() is then true). May finish the generation
  // (stop string, max tokens, max time, a constraint's language complete) after a token it
  // returns. With a constraint only tokens it allows are drawn; throws Error(kInvalidArgument)
  // when no token of the vocabulary can continue it.
  bool on_logits(std::span<const float> logits, GeneratedToken& token);
  // What the next token's row must return, least first: its greedy token (Batch::kToken) when the
  // choice is the logits' argmax (plain greedy); its best top_k() logits (Batch::kTopK) when
  // sampling reads no more (top-k first, up to Batch::kMaxTopK); else the logits (logprobs, an
  // active constraint, logit bias, penalties, DRY, mirostat, or another first step). The caller
  // passes the row to on_token(), on_top_k() or on_logits() accordingly.
  Batch::RowOutput next_row_output() const noexcept;
  int32_t top_k() const noexcept { return sampler_.params().top_k; }
  // on_logits() for a row whose greedy token the model chose (next_row_output() kToken).
  bool on_token(int32_t id, GeneratedToken& token);
  // on_logits() from the row's best logits (next_row_output() kTopK): at least top_k() of them,
  // best first (Model::top_k()); the same token and random state as from the whole row.
  bool on_top_k(std::span<const TopCandidate> best, GeneratedToken& token);
  // Speculative decoding: rows[i] is the logits row after the last token and draft[0, i)
  // (rows.size() == draft.size() + 1). Keeps a prefix of the draft and then chooses one more token
  // by modified rejection sampling, so the output has on_logits' distribution (greedy: its
  // tokens). A draft token the constraint refuses cuts the draft there. Emits nothing: the caller
  // passes draft[0, accepted) and then `next` to emit_chosen(), one per token it returns.
  struct Speculation {
    int32_t drafted = 0;  // the draft tokens verified (a constraint may cut the draft)
    int32_t accepted = 0;
    int32_t next = -1;  // -1: none, the kept drafts complete the constrained output
  };
  // `proposals` holds the distribution each draft token was drawn from (propose()), or is empty
  // for a deterministic draft (prompt lookup).
  Speculation speculate(std::span<const int32_t> draft, std::span<const speculative::Distribution> proposals,
                        std::span<const std::span<const float>> rows);
  // How many tokens a draft may hold now, at most `max_tokens` (the caller's room and adaptive
  // length): 0 when this step should not speculate (off, mirostat, max_tokens nearly reached, a
  // prompt-lookup draft that could not reach draft_min). The rules draft() and both loops share.
  int32_t draft_limit(int32_t max_tokens, bool draft_model) const noexcept;
  // The draft after `history` (the sequence's tokens, the unstored last one included), at most
  // `limit` (draft_limit()) tokens: the draft model's through propose() when `drafter` is set (it
  // syncs to `history`; the caller holds its mutex), else prompt lookup (cleared when shorter
  // than draft_min). `proposals` is empty for prompt lookup.
  void draft(std::span<const int32_t> history, DraftModel* drafter, int32_t limit, std::vector<int32_t>& draft,
             std::vector<speculative::Distribution>& proposals);
  // Drafting with a draft model: draws up to `max_tokens` tokens, each from this sequence's
  // sampler (its settings and history, the constraint's mask) over the draft model's logits —
  // `logits` after the last token, then feed(token) after each drawn one but the last. Fills
  // `draft` and, for speculate(), `proposals`. Stops early after an end-of-generation token, where
  // the constraint leaves no choice, or where the draft model is less sure than speculative.p_min.
  void propose(std::span<const float> logits, int32_t max_tokens,
               const std::function<std::span<const float>(int32_t)>& feed, std::vector<int32_t>& draft,
               std::vector<speculative::Distribution>& proposals);
  // Emits a token speculate() chose as on_logits would have: the constraint, the sampler's
  // history, logprobs from `logits` (its row; unread without logprobs), text, stops and limits.
  bool emit_chosen(int32_t id, std::span<const float> logits, GeneratedToken& token);
  // The tokens max_tokens still allows (INT32_MAX without a limit): a draft beyond one less is wasted.
  int32_t tokens_left() const noexcept {
    return options_.stop.max_tokens < 0 ? INT32_MAX : options_.stop.max_tokens - stats_.generated_tokens;
  }
  // Mirostat's state follows every draw, so it does not speculate.
  bool can_speculate() const noexcept { return options_.sampling.mirostat == 0; }
  // Ends the generation (cancel, context full, error, max_tokens 0) unless it has ended already.
  // After kError (and kStopString) there is no tail.
  void finish(FinishReason reason);
  // After finished(): the text held back by the detokenizer and the stop-string matcher, as a
  // token with id -1; false when there is none. Call once. The tail may complete a stop string.
  bool take_tail(GeneratedToken& token);

  bool finished() const noexcept { return stats_.finish != FinishReason::kNone; }
  const std::string& text() const noexcept { return text_; }
  const GenerateOptions& options() const noexcept { return options_; }
  // generated_tokens, first_token_ms, finish, stop_string and total_ms (on finish) are kept here;
  // the owner adds its timings (prefill, decode) and token counts.
  GenerationStats& stats() noexcept { return stats_; }
  const GenerationStats& stats() const noexcept { return stats_; }

 private:
  // on_logits() after the choice of `id`.
  bool emit(int32_t id, std::span<const float> logits, GeneratedToken& token);
  // The constraint's mask for the next token over `n_logits` entries, or empty when none applies.
  std::span<const uint64_t> allowed_mask(size_t n_logits);
  // The mask's first allowed token, or -1 when none of the `n_logits` is (a dead end). Reads the
  // mask the last allowed_mask() filled.
  int32_t first_allowed_token(size_t n_logits) const {
    const int32_t first = mask_.first();
    return first < static_cast<int32_t>(n_logits) ? first : -1;
  }

  const Tokenizer& tokenizer_;
  GenerateOptions options_;
  SamplerChain sampler_;
  StopStringMatcher stops_;
  std::optional<grammar::GrammarMatcher> constraint_;
  grammar::TokenMask mask_;
  // Control tokens of the constraint (triggers, control_tokens) and the text they print as.
  std::vector<std::pair<int32_t, std::string>> control_texts_;
  Detokenizer detokenizer_;
  TokenLogprobs logprobs_;
  std::string text_;
  size_t text_bytes_ = 0;  // the detokenized bytes so far, shown or held back: the next byte_offset
  GenerationStats stats_;
  Timer timer_;
  std::mt19937_64 verify_rng_;  // speculative verification's draws
  std::mt19937_64 draft_rng_;   // the draft model's draws
  bool tail_taken_ = false;
};

}  // namespace ember
