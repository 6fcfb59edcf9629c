// Generator: prefill with prefix reuse, then one forward step per token; SequenceDecoder does the rest.
#include "engine/generator.h"

#include <algorithm>

#include "core/check.h"
#include "engine/speculative.h"

namespace ember {
namespace {

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

const GenerationStats kNoStats{};
const std::string kNoText;

}  // namespace

Generator::Generator(Model& model, const Tokenizer& tokenizer, const GeneratorOptions& options,
                     std::mutex* forward_mutex)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      forward_mutex_(forward_mutex),
      kv_(model.config(), model.kv_options(options.context, options.kv_type, options.kv_type)),
      seq_(kv_.add_sequence()) {
  EMBER_CHECK(options.context > 0);
  if (options.draft_model != nullptr) {
    check_draft_vocabulary(model, *options.draft_model);
    draft_model_.emplace(*options.draft_model, options.context, options.kv_type, options.draft_mutex);
  }
}

const GenerationStats& Generator::stats() const noexcept { return decoder_ ? decoder_->stats() : kNoStats; }
const std::string& Generator::text() const noexcept { return decoder_ ? decoder_->text() : kNoText; }

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
  SequenceDecoder decoder(tokenizer_, n_vocab, options, prompt);
  decoder_.emplace(std::move(decoder));

  size_t n_common = options_.reuse_prefix ? common_prefix(cached_, prompt) : 0;
  if (n_common == prompt.size()) --n_common;  // the last prompt token runs again: its logits are needed
  kv_.truncate(seq_, static_cast<int32_t>(n_common));
  cached_.resize(n_common);
  prompt_.assign(prompt.begin() + static_cast<ptrdiff_t>(n_common), prompt.end());
  unstored_.reset();
  chosen_.clear();
  logits_ = {};
  greedy_ = {};
  top_ = {};
  draft_length_ = options.speculative.draft_max;
  // Sampled output draws from the random stream step by step: a choice made on timing would make
  // a seed's text depend on the machine's load. Greedy output is the same either way.
  pause_ = speculative::SlowerPause(options.speculative.draft_max > 0 && options.speculative.pause_when_slower &&
                                        options.sampling.temperature <= 0.0f,
                                    draft_model_.has_value());
  decoder_->stats().cached_tokens = static_cast<int32_t>(n_common);
  cancel_.store(false, std::memory_order_relaxed);
}

bool Generator::next(GeneratedToken& token) {
  if (!decoder_) return false;
  if (decoder_->finished()) {
    chosen_.clear();
    return decoder_->take_tail(token);
  }
  try {
    if (!chosen_.empty()) {
      if (cancel_.load(std::memory_order_relaxed)) {
        chosen_.clear();
        decoder_->finish(FinishReason::kCancelled);
        return decoder_->take_tail(token);
      }
      return emit_chosen(token);
    }
    return step(token);
  } catch (...) {
    // A step that throws (a hook, an allocation) ends the generation; the cache keeps what completed.
    decoder_->finish(FinishReason::kError);
    throw;
  }
}

bool Generator::step(GeneratedToken& token) {
  GenerationStats& stats = decoder_->stats();
  // The draft first, without the model's mutex: the draft model takes its own, and never while
  // the model's is held (no lock order to get wrong when models serve as each other's drafts).
  draft_.clear();
  proposals_.clear();
  double draft_ms = 0;
  bool drafting = false;  // this step tried to draft
  if (prompt_.empty() && unstored_ && !pause_.paused() && !cancel_.load(std::memory_order_relaxed)) {
    Timer draft_timer;
    drafting = make_draft();
    draft_ms = draft_timer.elapsed_ms();
    stats.decode_ms += draft_ms;
  }
  // Held from the forward step to the sampling: the logits live in the model's buffer.
  std::unique_lock<std::mutex> lock;
  if (forward_mutex_ != nullptr) lock = std::unique_lock(*forward_mutex_);
  if (cancel_.load(std::memory_order_relaxed)) {
    decoder_->finish(FinishReason::kCancelled);
    return decoder_->take_tail(token);
  }
  if (!prompt_.empty()) {
    if (!prefill()) {
      decoder_->finish(FinishReason::kCancelled);
      return decoder_->take_tail(token);
    }
  } else if (unstored_) {
    if (cached_.size() >= static_cast<size_t>(options_.context)) {  // no room for the token just returned
      decoder_->finish(FinishReason::kContextFull);
      return decoder_->take_tail(token);
    }
    Timer decode_timer;
    const bool speculated = speculate();
    if (!speculated) decode(*unstored_);
    const double step_ms = decode_timer.elapsed_ms();
    stats.decode_ms += step_ms;
    ++stats.decode_steps;
    // Weighed by mode: a step that drafted nothing (the draft model unsure, no lookup match) still
    // paid for trying, and counts as a speculating step.
    pause_.weigh(drafting, draft_ms + step_ms, speculated ? static_cast<int32_t>(chosen_.size()) : 1);
    if (speculated) {
      lock = {};
      return emit_chosen(token);
    }
  }
  if (decoder_->options().stop.max_tokens == 0) {  // the prompt only: its cache is ready for the next turn
    decoder_->finish(FinishReason::kMaxTokens);
    return decoder_->take_tail(token);
  }
  const bool generated = !greedy_.empty() ? decoder_->on_token(greedy_.front(), token)
                         : !top_.empty()  ? decoder_->on_top_k(top_, token)
                                          : decoder_->on_logits(logits_, token);
  lock = {};
  if (!generated) return decoder_->take_tail(token);
  unstored_ = token.id;
  return true;
}

bool Generator::prefill() {
  GenerationStats& stats = decoder_->stats();
  Timer prefill_timer;
  const size_t chunk = static_cast<size_t>(model_.options().max_step_tokens);
  while (!prompt_.empty()) {
    if (cancel_.load(std::memory_order_relaxed)) break;
    const size_t n = std::min(prompt_.size(), chunk);
    batch_.clear();
    for (size_t i = 0; i < n; ++i) {
      batch_.add(prompt_[i], static_cast<int32_t>(cached_.size() + i), seq_,
                 i + 1 == prompt_.size() ? last_row_output() : Batch::kNoOutput);
    }
    forward();
    // Moved chunk by chunk, so prompt_ and cached_ stay true to the cache if a later chunk throws.
    cached_.insert(cached_.end(), prompt_.begin(), prompt_.begin() + static_cast<ptrdiff_t>(n));
    prompt_.erase(prompt_.begin(), prompt_.begin() + static_cast<ptrdiff_t>(n));
    stats.prefill_ms += prefill_timer.elapsed_ms();
    prefill_timer.reset();
  }
  return prompt_.empty();
}

void Generator::decode(int32_t token) {
  batch_.clear();
  batch_.add(token, static_cast<int32_t>(cached_.size()), seq_, last_row_output());
  forward();
  cached_.push_back(token);
  unstored_.reset();
}

Batch::RowOutput Generator::last_row_output() {
  const Batch::RowOutput output = decoder_->next_row_output();
  if (output == Batch::kTopK) batch_.top_k = decoder_->top_k();
  return output;
}

void Generator::forward() {
  logits_ = model_.forward(batch_, kv_);
  greedy_ = model_.tokens();
  top_ = model_.top_k();
}

bool Generator::make_draft() {
  // Room after the unstored token, and the adaptive length.
  const int32_t room = options_.context - static_cast<int32_t>(cached_.size()) - 1;
  const int32_t limit = decoder_->draft_limit(std::min(draft_length_, room), draft_model_.has_value());
  if (limit < 1) return false;
  cached_.push_back(*unstored_);  // the draft follows the unstored token; taken back below, even on a throw
  struct TakeBack {
    std::vector<int32_t>& v;
    ~TakeBack() { v.pop_back(); }
  } take_back{cached_};
  std::unique_lock<std::mutex> lock;
  if (draft_model_ && draft_model_->forward_mutex() != nullptr) lock = std::unique_lock(*draft_model_->forward_mutex());
  decoder_->draft(cached_, draft_model_ ? &*draft_model_ : nullptr, limit, draft_, proposals_);
  return true;
}

bool Generator::speculate() {
  const auto n = static_cast<int32_t>(cached_.size());
  if (draft_.empty() || n + 1 + static_cast<int32_t>(draft_.size()) > options_.context) return false;
  const std::span<const int32_t> drafted = draft_;
  batch_.clear();
  batch_.add(*unstored_, n, seq_, true);
  for (size_t i = 0; i < drafted.size(); ++i) batch_.add(drafted[i], n + 1 + static_cast<int32_t>(i), seq_, true);
  const std::span<const float> all = model_.forward(batch_, kv_);
  // The cache now holds the unstored token and the whole draft: so does cached_, until verified.
  cached_.push_back(*unstored_);
  cached_.insert(cached_.end(), drafted.begin(), drafted.end());
  unstored_.reset();
  const auto n_vocab = static_cast<size_t>(model_.config().n_vocab);
  std::vector<std::span<const float>> rows;
  for (size_t i = 0; i <= drafted.size(); ++i) rows.push_back(all.subspan(i * n_vocab, n_vocab));
  const SequenceDecoder::Speculation v = decoder_->speculate(drafted, proposals_, rows);
  // The rejected drafts leave the cache; `next` is the token to store after the kept ones.
  cached_.resize(static_cast<size_t>(n) + 1 + static_cast<size_t>(v.accepted));
  kv_.truncate(seq_, static_cast<int32_t>(cached_.size()));
  const bool keep_rows = decoder_->options().logprobs >= 0;
  for (int32_t j = 0; j <= v.accepted; ++j) {
    const int32_t id = j < v.accepted ? drafted[static_cast<size_t>(j)] : v.next;
    if (id < 0) break;  // no next token: the kept drafts complete the constrained output
    const std::span<const float> row = rows[static_cast<size_t>(j)];
    chosen_.emplace_back(id, keep_rows ? std::vector<float>(row.begin(), row.end()) : std::vector<float>());
  }
  if (v.next >= 0) unstored_ = v.next;
  const GenerateOptions::Speculative& spec = decoder_->options().speculative;
  draft_length_ = speculative::next_draft_length(draft_length_, v.drafted, v.accepted, spec.draft_min, spec.draft_max);
  return true;
}

bool Generator::emit_chosen(GeneratedToken& token) {
  auto [id, row] = std::move(chosen_.front());
  chosen_.pop_front();
  const bool emitted = decoder_->emit_chosen(id, row, token);
  if (decoder_->finished()) chosen_.clear();  // a stop, a limit or the end: the rest is not output
  // The last chosen token with no next one: the output is complete (emit_chosen has ended it).
  if (chosen_.empty() && !unstored_ && !decoder_->finished()) decoder_->finish(FinishReason::kEndOfGeneration);
  return emitted ? true : decoder_->take_tail(token);
}

void Generator::reset() {
  if (decoder_ && !decoder_->finished()) {
    decoder_->finish(FinishReason::kCancelled);
    GeneratedToken discarded;
    decoder_->take_tail(discarded);  // a reset shows nothing more
  }
  kv_.truncate(seq_, 0);
  cached_.clear();
  prompt_.clear();
  unstored_.reset();
  chosen_.clear();
  if (draft_model_) draft_model_->reset();
}

}  // namespace ember
