// Generator: prefill with prefix reuse, then sample / detokenize / stop, one forward step per token.
#include "engine/generator.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ember {
namespace {

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
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

Generator::Generator(Model& model, const Tokenizer& tokenizer, const GeneratorOptions& options,
                     std::mutex* forward_mutex)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      forward_mutex_(forward_mutex),
      kv_(model.config(), model.kv_options(options.context, options.kv_type, options.kv_type)),
      seq_(kv_.add_sequence()),
      // A generation continues its prompt: its first piece keeps its leading space.
      detokenizer_(tokenizer, DecodeOptions{.render_special = false, .strip_space_prefix = false}) {
  EMBER_CHECK(options.context > 0);
}

void Generator::start(std::span<const int32_t> prompt, const GenerateOptions& options) {
  const int32_t n_vocab = model_.config().n_vocab;
  check_generate_options(options, n_vocab);
  if (prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  if (prompt.size() >= static_cast<size_t>(options_.context)) {
    fail(ErrorCode::kInvalidArgument,
         "the prompt is {} tokens, which leaves no room to generate in a context of {} tokens", prompt.size(),
         options_.context);
  }
  for (const int32_t id : prompt) {
    if (id < 0 || id >= n_vocab) fail(ErrorCode::kInvalidArgument, "prompt token {} is outside the vocabulary", id);
  }
  // Everything that can throw comes first, so a rejected start leaves the session as it was.
  SamplerChain sampler(options.sampling, n_vocab, &tokenizer_);
  StopStringMatcher stops(options.stop.strings);

  size_t n_common = options_.reuse_prefix ? common_prefix(cached_, prompt) : 0;
  if (n_common == prompt.size()) --n_common;  // the last prompt token runs again: its logits are needed
  kv_.truncate(seq_, static_cast<int32_t>(n_common));
  cached_.resize(n_common);
  prompt_.assign(prompt.begin() + static_cast<ptrdiff_t>(n_common), prompt.end());

  generate_ = options;
  sampler_.emplace(std::move(sampler));
  for (const int32_t id : prompt) sampler_->accept(id);  // penalties and DRY look at the prompt too
  stops_.emplace(std::move(stops));
  detokenizer_.reset();
  unstored_.reset();
  logits_ = {};
  text_.clear();
  stats_ = GenerationStats{};
  stats_.prompt_tokens = static_cast<int32_t>(prompt.size());
  stats_.cached_tokens = static_cast<int32_t>(n_common);
  tail_pending_ = false;
  cancel_.store(false, std::memory_order_relaxed);
  timer_.reset();
}

bool Generator::next(GeneratedToken& token) {
  if (tail_pending_) return take_tail(token);
  if (stats_.finish != FinishReason::kNone || !sampler_) return false;
  try {
    return step(token);
  } catch (...) {
    // A step that throws (a hook, an allocation) ends the generation; the cache keeps what completed.
    finish(FinishReason::kError);
    tail_pending_ = false;
    throw;
  }
}

bool Generator::step(GeneratedToken& token) {
  // Held from the forward step to the sampling: the logits live in the model's buffer.
  std::unique_lock<std::mutex> lock;
  if (forward_mutex_ != nullptr) lock = std::unique_lock(*forward_mutex_);
  if (cancel_.load(std::memory_order_relaxed)) {
    finish(FinishReason::kCancelled);
    return take_tail(token);
  }
  if (!prompt_.empty()) {
    if (!prefill()) {
      finish(FinishReason::kCancelled);
      return take_tail(token);
    }
  } else if (unstored_) {
    if (cached_.size() >= static_cast<size_t>(options_.context)) {  // no room for the token just returned
      finish(FinishReason::kContextFull);
      return take_tail(token);
    }
    Timer decode_timer;
    decode(*unstored_);
    stats_.decode_ms += decode_timer.elapsed_ms();
    ++stats_.decode_steps;
  }
  if (generate_.stop.max_tokens == 0) {  // the prompt only: its cache is ready for the next turn
    finish(FinishReason::kMaxTokens);
    return take_tail(token);
  }

  Timer sample_timer;
  const int32_t id = sampler_->sample(logits_);
  sampler_->accept(id);
  token.id = id;
  token.top.clear();
  token.logprob = 0.0f;
  if (generate_.logprobs >= 0) {
    compute_logprobs(logits_, id, generate_.logprobs, logprobs_);
    token.logprob = logprobs_.chosen.logprob;
    token.top.assign(logprobs_.top.begin(), logprobs_.top.end());
  }
  stats_.sample_ms += sample_timer.elapsed_ms();
  lock = {};

  if (!generate_.stop.ignore_eos && tokenizer_.vocab().is_end_of_generation(id)) {
    finish(FinishReason::kEndOfGeneration);
    return take_tail(token);
  }
  const StopStringMatcher::Result matched = stops_->push(detokenizer_.push(id));
  token.text = matched.text;
  text_ += matched.text;
  unstored_ = id;
  if (++stats_.generated_tokens == 1) stats_.first_token_ms = timer_.elapsed_ms();

  if (matched.stopped) {
    stats_.stop_string = generate_.stop.strings[static_cast<size_t>(matched.index)];
    finish(FinishReason::kStopString);
  } else if (generate_.stop.max_tokens >= 0 && stats_.generated_tokens >= generate_.stop.max_tokens) {
    finish(FinishReason::kMaxTokens);
  } else if (generate_.stop.max_time_ms > 0 && timer_.elapsed_ms() >= generate_.stop.max_time_ms) {
    finish(FinishReason::kMaxTime);
  }
  return true;
}

bool Generator::prefill() {
  Timer prefill_timer;
  const size_t chunk = static_cast<size_t>(model_.options().max_step_tokens);
  while (!prompt_.empty()) {
    if (cancel_.load(std::memory_order_relaxed)) break;
    const size_t n = std::min(prompt_.size(), chunk);
    batch_.clear();
    for (size_t i = 0; i < n; ++i) {
      batch_.add(prompt_[i], static_cast<int32_t>(cached_.size() + i), seq_, i + 1 == prompt_.size());
    }
    logits_ = model_.forward(batch_, kv_);
    // Moved chunk by chunk, so prompt_ and cached_ stay true to the cache if a later chunk throws.
    cached_.insert(cached_.end(), prompt_.begin(), prompt_.begin() + static_cast<ptrdiff_t>(n));
    prompt_.erase(prompt_.begin(), prompt_.begin() + static_cast<ptrdiff_t>(n));
    stats_.prefill_ms += prefill_timer.elapsed_ms();
    prefill_timer.reset();
  }
  return prompt_.empty();
}

void Generator::decode(int32_t token) {
  batch_.clear();
  batch_.add(token, static_cast<int32_t>(cached_.size()), seq_, true);
  logits_ = model_.forward(batch_, kv_);
  cached_.push_back(token);
  unstored_.reset();
}

void Generator::finish(FinishReason reason) {
  stats_.finish = reason;
  stats_.total_ms = timer_.elapsed_ms();
  // After a stop string nothing more is shown; otherwise what the detokenizer and the matcher hold.
  tail_pending_ = reason != FinishReason::kStopString;
}

bool Generator::take_tail(GeneratedToken& token) {
  tail_pending_ = false;
  if (!stops_) return false;
  StopStringMatcher::Result last = stops_->push(detokenizer_.flush());
  std::string tail = std::move(last.text);
  if (last.stopped) {  // the held-back bytes completed a stop string
    stats_.finish = FinishReason::kStopString;
    stats_.stop_string = generate_.stop.strings[static_cast<size_t>(last.index)];
  } else {
    tail += stops_->flush();
  }
  if (tail.empty()) return false;
  token.id = -1;
  token.text = std::move(tail);
  token.logprob = 0.0f;
  token.top.clear();
  text_ += token.text;
  return true;
}

void Generator::reset() {
  if (stats_.finish == FinishReason::kNone && sampler_) finish(FinishReason::kCancelled);
  tail_pending_ = false;
  kv_.truncate(seq_, 0);
  cached_.clear();
  prompt_.clear();
  unstored_.reset();
}

}  // namespace ember
