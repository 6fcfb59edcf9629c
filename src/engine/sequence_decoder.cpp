// SequenceDecoder: sampling, stop conditions and text of one sequence, one logits row at a time.
#include "engine/sequence_decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "engine/speculative.h"
#include "grammar/constraint.h"

namespace ember {

void check_generate_options(const GenerateOptions& o, int32_t n_vocab) {
  if (o.logprobs < -1 || o.logprobs > n_vocab) {
    fail(ErrorCode::kInvalidArgument, "logprobs must be -1 (none) or 0 to {} alternatives, got {}", n_vocab,
         o.logprobs);
  }
  if (o.stop.max_tokens < -1) {
    fail(ErrorCode::kInvalidArgument, "max_tokens must be -1 (no limit) or >= 0, got {}", o.stop.max_tokens);
  }
  if (!std::isfinite(o.stop.max_time_ms) || o.stop.max_time_ms < 0) {
    fail(ErrorCode::kInvalidArgument, "max_time_ms must be >= 0 (0: no limit), got {}", o.stop.max_time_ms);
  }
  const GenerateOptions::Speculative& spec = o.speculative;
  if (spec.draft_max < 0 || spec.draft_max > kMaxDraftTokens) {
    fail(ErrorCode::kInvalidArgument, "speculative.draft_max must be 0 (off) to {}, got {}", kMaxDraftTokens,
         spec.draft_max);
  }
  if (spec.draft_max > 0 && (spec.draft_min < 1 || spec.draft_min > spec.draft_max)) {
    fail(ErrorCode::kInvalidArgument, "speculative.draft_min must be 1 to draft_max ({}), got {}", spec.draft_max,
         spec.draft_min);
  }
  if (spec.draft_max > 0 && (spec.ngram_min < 1 || spec.ngram_max < spec.ngram_min || spec.ngram_max > 16)) {
    fail(ErrorCode::kInvalidArgument,
         "speculative n-gram sizes must be 1 <= ngram_min <= ngram_max <= 16, got {} and {}", spec.ngram_min,
         spec.ngram_max);
  }
  if (!(spec.p_min >= 0.0f && spec.p_min <= 1.0f)) {
    fail(ErrorCode::kInvalidArgument, "speculative.p_min must be 0 to 1, got {}", spec.p_min);
  }
  if (spec.draft_max > 0 && o.sampling.mirostat != 0) {
    fail(ErrorCode::kInvalidArgument,
         "speculative decoding does not work with mirostat (its state follows every draw)");
  }
}

namespace {

// A logits row with no number above -inf (every value NaN or -inf) leaves nothing to choose: the
// model's weights hold NaN or infinity, or its activations overflowed. (NaN entries of any other
// row are never drawn.) Cheap: in a working model's row the first entry already answers.
bool has_usable_logit(std::span<const float> logits) {
  return std::any_of(logits.begin(), logits.end(), [](float v) { return v > -std::numeric_limits<float>::infinity(); });
}

[[noreturn]] void fail_unusable_logits(int32_t generated) {
  fail(ErrorCode::kFormat,
       "the model's logits for output token {} are all NaN or -inf: its weights hold NaN or infinity, or its "
       "activations overflowed",
       generated + 1);
}

// Rolls a constraint back to a checkpoint when the scope ends, however it ends (a draft model or
// a mask that throws part way must not leave the matcher ahead by phantom draft tokens).
class RestoreConstraint {
 public:
  explicit RestoreConstraint(std::optional<grammar::GrammarMatcher>& matcher) : matcher_(matcher) {
    if (matcher_) checkpoint_ = matcher_->checkpoint();
  }
  ~RestoreConstraint() {
    if (matcher_) matcher_->restore(std::move(*checkpoint_));  // noexcept: this may run while unwinding
  }
  RestoreConstraint(const RestoreConstraint&) = delete;
  RestoreConstraint& operator=(const RestoreConstraint&) = delete;

 private:
  std::optional<grammar::GrammarMatcher>& matcher_;
  std::optional<grammar::GrammarMatcher::Checkpoint> checkpoint_;
};

const GenerateOptions& checked(const GenerateOptions& options, int32_t n_vocab) {
  check_generate_options(options, n_vocab);
  return options;
}

}  // namespace

SequenceDecoder::SequenceDecoder(const Tokenizer& tokenizer, int32_t n_vocab, const GenerateOptions& options,
                                 std::span<const int32_t> prompt)
    : tokenizer_(tokenizer),
      options_(checked(options, n_vocab)),
      sampler_(options.sampling, n_vocab, &tokenizer),
      stops_(options.stop.strings),
      // A generation continues its prompt: its first piece keeps its leading space.
      detokenizer_(tokenizer, DecodeOptions{.render_special = false, .strip_space_prefix = false}) {
  for (const int32_t id : prompt) sampler_.accept(id);  // penalties and DRY look at the prompt too
  verify_rng_.seed(static_cast<uint64_t>(options.sampling.seed) ^ 0x9E3779B97F4A7C15ull);
  draft_rng_.seed(static_cast<uint64_t>(options.sampling.seed) ^ 0xD1B54A32D192ED03ull);
  stats_.prompt_tokens = static_cast<int32_t>(prompt.size());
  if (auto grammar = grammar::compile_constraint(options.constraint)) {
    // With ignore_eos the end tokens are ordinary tokens the grammar never allows: the generation
    // ends when the language is complete and nothing can follow, or at max_tokens.
    std::span<const int32_t> end_tokens;
    if (!options.stop.ignore_eos) end_tokens = tokenizer.vocab().end_of_generation();
    constraint_.emplace(std::move(grammar), tokenizer.vocab_trie(), end_tokens);
    if (!options.constraint.triggers.empty()) {
      std::vector<grammar::GrammarMatcher::Trigger> triggers;
      for (const std::string& text : options.constraint.triggers) {
        if (text.empty()) fail(ErrorCode::kInvalidArgument, "a constraint trigger must not be empty");
        // A trigger the vocabulary spells as one token (a control token such as [TOOL_CALLS] too)
        // is also recognized by its id: control tokens have no bytes to find in the text.
        const std::vector<TokenId> ids = tokenizer.encode(text, {.add_special = false, .parse_special = true});
        triggers.push_back({.text = text, .token = ids.size() == 1 ? ids[0] : -1});
        if (ids.size() == 1 && tokenizer.vocab().type(ids[0]) == TokenType::kControl) {
          control_texts_.emplace_back(ids[0], text);
        }
      }
      constraint_->set_lazy(std::move(triggers), options.constraint.trigger_in_grammar,
                            options.constraint.triggers_at_start);
    }
    for (const std::string& text : options.constraint.control_tokens) {
      const std::vector<TokenId> ids = tokenizer.encode(text, {.add_special = false, .parse_special = true});
      if (ids.size() != 1) continue;  // not one token of this vocabulary: plain bytes in the grammar
      constraint_->add_token_text(ids[0], text);
      control_texts_.emplace_back(ids[0], text);
    }
  }
}

bool SequenceDecoder::on_logits(std::span<const float> logits, GeneratedToken& token) {
  EMBER_CHECK(!finished());
  if (constraint_ && constraint_->finished()) {  // a language complete before any token (root ::= "")
    finish(FinishReason::kEndOfGeneration);
    return false;
  }
  if (!has_usable_logit(logits)) fail_unusable_logits(stats_.generated_tokens);
  Timer sample_timer;
  int32_t id = 0;
  if (constraint_ && !constraint_->unconstrained()) {
    constraint_->fill_mask(mask_);
    // The mask covers the tokenizer's vocabulary; the model's rows may be a few entries longer
    // (padded embeddings) or shorter: the sampler sees exactly the model's.
    const size_t words = (logits.size() + 63) / 64;
    if (mask_.words().size() < words) {
      fail(ErrorCode::kInvalidArgument, "the model's vocabulary ({} entries) is larger than the tokenizer's ({})",
           logits.size(), mask_.n_vocab());
    }
    const std::span<const uint64_t> allowed = mask_.words().first(words);
    const int32_t first_allowed = first_allowed_token(logits.size());
    if (first_allowed < 0) {
      fail(ErrorCode::kInvalidArgument,
           "no token of the vocabulary can continue the constrained output after {} tokens (the grammar needs "
           "bytes this vocabulary cannot spell)",
           stats_.generated_tokens);
    }
    id = sampler_.sample(logits, allowed);
    // Only when every allowed token's logit is NaN or -inf can the draw miss the mask.
    if (!mask_.test(id)) id = first_allowed;
    if (!constraint_->accept(id)) {  // the mask and the matcher disagree: a bug, but not worth the process
      fail(ErrorCode::kInvalidArgument, "internal error: the constraint refused token {}, which its mask allowed", id);
    }
  } else {
    id = sampler_.sample(logits);
    if (constraint_) constraint_->accept(id);  // a lazy constraint watching for its trigger
  }
  stats_.sample_ms += sample_timer.elapsed_ms();
  return emit(id, logits, token);
}

Batch::RowOutput SequenceDecoder::next_row_output() const noexcept {
  // A lazy constraint still watching for its trigger only follows the tokens (on_logits' else).
  if (options_.logprobs >= 0 || (constraint_ && !constraint_->unconstrained())) return Batch::kLogits;
  if (sampler_.plain_greedy()) return Batch::kToken;
  return sampler_.top_k_first(Batch::kMaxTopK) > 0 ? Batch::kTopK : Batch::kLogits;
}

bool SequenceDecoder::on_token(int32_t id, GeneratedToken& token) {
  EMBER_CHECK(!finished() && next_row_output() == Batch::kToken && id >= -1 && id < sampler_.n_vocab());
  if (id < 0) fail_unusable_logits(stats_.generated_tokens);  // Batch::kToken's "no number above -inf"
  if (constraint_) constraint_->accept(id);                   // a lazy constraint watching for its trigger
  return emit(id, {}, token);
}

bool SequenceDecoder::on_top_k(std::span<const TopCandidate> best, GeneratedToken& token) {
  const auto k = static_cast<size_t>(top_k());
  EMBER_CHECK(!finished() && next_row_output() == Batch::kTopK && best.size() >= k && k > 0);
  // The best first, NaN ranked as -inf: nothing above -inf there, nothing anywhere.
  if (!(best[0].logit > -std::numeric_limits<float>::infinity())) fail_unusable_logits(stats_.generated_tokens);
  Timer sample_timer;
  const int32_t id = sampler_.sample_top_k(best.first(k));
  if (constraint_) constraint_->accept(id);  // a lazy constraint watching for its trigger
  stats_.sample_ms += sample_timer.elapsed_ms();
  return emit(id, {}, token);
}

// Everything after the choice of `id`: the sampler's history, logprobs, the end of generation, the
// text, stop strings and limits.
bool SequenceDecoder::emit(int32_t id, std::span<const float> logits, GeneratedToken& token) {
  sampler_.accept(id);
  token.id = id;
  token.text.clear();
  token.top.clear();
  token.logprob = 0.0f;
  token.byte_offset = text_bytes_;
  if (options_.logprobs >= 0) {
    compute_logprobs(logits, id, options_.logprobs, logprobs_);
    token.logprob = logprobs_.chosen.logprob;
    token.top.assign(logprobs_.top.begin(), logprobs_.top.end());
  }

  if (!options_.stop.ignore_eos && tokenizer_.vocab().is_end_of_generation(id)) {
    finish(FinishReason::kEndOfGeneration);
    return false;
  }
  // A control token that belongs to the constrained language (a tool-call marker) is part of the
  // output text, so that the caller's parser sees it; other control tokens print nothing.
  std::string piece;
  if (const auto it =
          std::find_if(control_texts_.begin(), control_texts_.end(), [id](const auto& c) { return c.first == id; });
      it != control_texts_.end()) {
    piece = detokenizer_.flush() + it->second;
  } else {
    piece = detokenizer_.push(id);
  }
  text_bytes_ += piece.size();
  const StopStringMatcher::Result matched = stops_.push(piece);
  token.text = matched.text;
  text_ += matched.text;
  if (++stats_.generated_tokens == 1) stats_.first_token_ms = timer_.elapsed_ms();

  if (matched.stopped) {
    stats_.stop_string = options_.stop.strings[static_cast<size_t>(matched.index)];
    finish(FinishReason::kStopString);
  } else if (constraint_ && constraint_->finished()) {
    finish(FinishReason::kEndOfGeneration);  // the constrained language is complete: nothing can follow
  } else if (options_.stop.max_tokens >= 0 && stats_.generated_tokens >= options_.stop.max_tokens) {
    finish(FinishReason::kMaxTokens);
  } else if (options_.stop.max_time_ms > 0 && timer_.elapsed_ms() >= options_.stop.max_time_ms) {
    finish(FinishReason::kMaxTime);
  }
  return true;
}

std::span<const uint64_t> SequenceDecoder::allowed_mask(size_t n_logits) {
  if (!constraint_ || constraint_->unconstrained()) return {};
  constraint_->fill_mask(mask_);
  const size_t words = (n_logits + 63) / 64;
  if (mask_.words().size() < words) {
    fail(ErrorCode::kInvalidArgument, "the model's vocabulary ({} entries) is larger than the tokenizer's ({})",
         n_logits, mask_.n_vocab());
  }
  return mask_.words().first(words);
}

int32_t SequenceDecoder::draft_limit(int32_t max_tokens, bool draft_model) const noexcept {
  const GenerateOptions::Speculative& spec = options_.speculative;
  if (spec.draft_max <= 0 || !can_speculate() || finished()) return 0;
  // Beyond max_tokens' next-to-last token a draft is wasted: the step adds one more itself.
  const int32_t limit = std::min(max_tokens, tokens_left() - 1);
  if (limit < 1 || (!draft_model && limit < spec.draft_min)) return 0;
  return limit;
}

void SequenceDecoder::draft(std::span<const int32_t> history, DraftModel* drafter, int32_t limit,
                            std::vector<int32_t>& draft, std::vector<speculative::Distribution>& proposals) {
  draft.clear();
  proposals.clear();
  if (limit < 1) return;
  if (drafter == nullptr) {
    const GenerateOptions::Speculative& spec = options_.speculative;
    draft = speculative::ngram_draft(history, spec.ngram_min, spec.ngram_max, limit);
    if (static_cast<int32_t>(draft.size()) < spec.draft_min) draft.clear();  // not worth a check
    return;
  }
  propose(
      drafter->sync(history), limit, [drafter](int32_t token) { return drafter->feed(token); }, draft, proposals);
}

void SequenceDecoder::propose(std::span<const float> logits, int32_t max_tokens,
                              const std::function<std::span<const float>(int32_t)>& feed, std::vector<int32_t>& draft,
                              std::vector<speculative::Distribution>& proposals) {
  EMBER_CHECK(!finished() && can_speculate());
  draft.clear();
  proposals.clear();
  Timer sample_timer;
  // A copy of the sampler (its coins, XTC's, are the target's too: a proposal may depend on them,
  // verification stays exact for each) and the constraint walked along the draft, then rolled back.
  SamplerChain proposer = sampler_;
  const RestoreConstraint restore(constraint_);
  for (int32_t i = 0; i < max_tokens; ++i) {
    const std::span<const uint64_t> allowed = allowed_mask(logits.size());
    if (!allowed.empty() && first_allowed_token(logits.size()) < 0) {
      // A dead end: no token can follow the last draft token. Dropped (it was drawn and is not
      // used: verification stays exact), so the target decides that position.
      if (!draft.empty()) {
        draft.pop_back();
        proposals.pop_back();
      }
      break;
    }
    // An unsure draft model ends the draft, judged among the tokens the constraint allows (where
    // it forces one token, the draft model is sure of it). Decided before the draw, from the draft
    // model and the prefix alone, so verification stays exact.
    const float p_min = options_.speculative.p_min;
    if (p_min > 0.0f && speculative::top_probability(logits, allowed) < p_min) break;
    speculative::Distribution q;
    proposer.distribution(logits, allowed, q);
    // Where the draft model only gives refused tokens (every allowed logit -inf), the draft ends:
    // speculate() decides that position from the target alone.
    if (!allowed.empty() && std::any_of(q.begin(), q.end(), [&](const auto& e) { return !mask_.test(e.first); })) {
      break;
    }
    const int32_t token = speculative::draw(q, draft_rng_);
    if (token < 0) break;
    draft.push_back(token);
    proposals.push_back(std::move(q));
    const bool end = !options_.stop.ignore_eos && tokenizer_.vocab().is_end_of_generation(token);
    if (constraint_ && !constraint_->accept(token)) {
      // The mask allowed what the matcher refuses (a bug elsewhere): drop it, the target decides.
      draft.pop_back();
      proposals.pop_back();
      break;
    }
    // After an end-of-generation token or a complete constrained output nothing follows.
    if (end || i + 1 == max_tokens || (constraint_ && constraint_->finished())) break;
    proposer.accept(token);
    logits = feed(token);
  }
  stats_.sample_ms += sample_timer.elapsed_ms();
}

SequenceDecoder::Speculation SequenceDecoder::speculate(std::span<const int32_t> draft,
                                                        std::span<const speculative::Distribution> proposals,
                                                        std::span<const std::span<const float>> rows) {
  EMBER_CHECK(!finished() && can_speculate() && rows.size() == draft.size() + 1);
  EMBER_CHECK(proposals.empty() || proposals.size() == draft.size());
  Timer sample_timer;
  // The target's distribution after each draft prefix: a copy of the sampler (penalties and DRY
  // see the prefix) and the constraint walked along the draft, then rolled back.
  std::vector<speculative::Distribution> target(draft.size() + 1);
  SamplerChain probe = sampler_;
  std::optional<RestoreConstraint> restore;
  restore.emplace(constraint_);
  size_t usable = draft.size();
  for (size_t i = 0; i <= draft.size(); ++i) {
    if (!has_usable_logit(rows[i])) {
      if (i == 0) fail_unusable_logits(stats_.generated_tokens);
      // Broken only after draft token i - 1 (an overflow it caused): as a dead end below, the draft
      // ends before it, so that this fails only if plain decoding would (by choosing that token).
      usable = i - 1;
      break;
    }
    const std::span<const uint64_t> allowed = allowed_mask(rows[i].size());
    if (i > 0 && !allowed.empty() && first_allowed_token(rows[i].size()) < 0) {
      // A dead end after draft token i - 1: nothing can follow it. Plain decoding fails there only
      // if it picks that token, so the draft ends before it and position i - 1 is drawn from the
      // target (exact: the token is dropped unused, whether looked up or drawn).
      usable = i - 1;
      break;
    }
    probe.distribution(rows[i], allowed, target[i]);
    if (!allowed.empty()) {
      // As on_logits: nothing allowed is an error; a draw that misses the mask (every allowed
      // logit NaN or -inf) is the first allowed token.
      const int32_t first_allowed = first_allowed_token(rows[i].size());
      if (first_allowed < 0) {
        fail(ErrorCode::kInvalidArgument,
             "no token of the vocabulary can continue the constrained output after {} tokens (the grammar needs "
             "bytes this vocabulary cannot spell)",
             stats_.generated_tokens + static_cast<int32_t>(i));
      }
      if (std::any_of(target[i].begin(), target[i].end(), [&](const auto& e) { return !mask_.test(e.first); })) {
        target[i] = {{first_allowed, 1.0}};
        usable = i;  // the choice here is forced: the draft ends
        break;
      }
    }
    if (i == draft.size()) break;
    if (constraint_ && !constraint_->allows(draft[i])) {
      // The constraint refuses this draft token: the draft ends before it. (Cutting there is exact
      // only for a deterministic draft, whose refused token verification rejects for certain;
      // propose() draws only allowed tokens.)
      if (!proposals.empty()) {
        fail(ErrorCode::kInvalidArgument, "internal error: the constraint refused draft token {}, drawn under its mask",
             draft[i]);
      }
      usable = i;
      break;
    }
    if (constraint_) {
      constraint_->accept(draft[i]);
      if (constraint_->finished()) {
        // The constrained output is complete after this draft token: kept, it ends the generation
        // (as on_logits would), so nothing follows it (an empty distribution: `next` is -1).
        usable = i + 1;
        target[usable].clear();
        break;
      }
    }
    probe.accept(draft[i]);
  }
  restore.reset();  // the constraint back where it was: emit_chosen() advances it
  // The coins the copy drew (XTC) are spent: the next step must not draw them again.
  sampler_.take_rng(probe);
  target.resize(usable + 1);
  const speculative::Verdict v = speculative::verify(
      draft.first(usable), proposals.empty() ? proposals : proposals.first(usable), target, verify_rng_);
  stats_.draft_tokens += static_cast<int32_t>(usable);
  stats_.accepted_tokens += v.accepted;
  if (stats_.drafted_at.size() < usable) {
    stats_.drafted_at.resize(usable);
    stats_.accepted_at.resize(usable);
  }
  for (size_t i = 0; i < usable; ++i) {
    ++stats_.drafted_at[i];
    if (static_cast<int32_t>(i) < v.accepted) ++stats_.accepted_at[i];
  }
  stats_.sample_ms += sample_timer.elapsed_ms();
  return {.drafted = static_cast<int32_t>(usable), .accepted = v.accepted, .next = v.next};
}

bool SequenceDecoder::emit_chosen(int32_t id, std::span<const float> logits, GeneratedToken& token) {
  EMBER_CHECK(!finished());
  if (constraint_ && !constraint_->accept(id)) {
    fail(ErrorCode::kInvalidArgument, "internal error: the constraint refused token {}, which its mask allowed", id);
  }
  return emit(id, logits, token);
}

void SequenceDecoder::finish(FinishReason reason) {
  if (finished()) return;
  stats_.finish = reason;
  stats_.total_ms = timer_.elapsed_ms();
  // After a stop string nothing more is shown; after an error the caller has an exception instead.
  if (reason == FinishReason::kStopString || reason == FinishReason::kError) tail_taken_ = true;
}

bool SequenceDecoder::take_tail(GeneratedToken& token) {
  if (tail_taken_ || !finished()) return false;
  tail_taken_ = true;
  StopStringMatcher::Result last = stops_.push(detokenizer_.flush());
  std::string tail = std::move(last.text);
  if (last.stopped) {  // the held-back bytes completed a stop string
    stats_.finish = FinishReason::kStopString;
    stats_.stop_string = options_.stop.strings[static_cast<size_t>(last.index)];
  } else {
    tail += stops_.flush();
  }
  if (tail.empty()) return false;
  token.id = -1;
  token.text = std::move(tail);
  token.logprob = 0.0f;
  token.top.clear();
  token.byte_offset = text_.size();
  text_ += token.text;
  return true;
}

}  // namespace ember
