// Engine: continuous batching over one model and one paged KV cache — schedule, forward, sample, emit.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/timer.h"

namespace ember {
namespace {

EngineOptions resolved(EngineOptions o, const Model& model) {
  if (o.context <= 0) fail(ErrorCode::kInvalidArgument, "the context must be > 0 tokens, got {}", o.context);
  if (o.max_running < 1) fail(ErrorCode::kInvalidArgument, "parallel must be >= 1, got {}", o.max_running);
  if (o.max_waiting < 0) fail(ErrorCode::kInvalidArgument, "the queue length must be >= 0, got {}", o.max_waiting);
  if (o.kv_tokens == 0)
    o.kv_tokens = static_cast<int32_t>(std::min<int64_t>(int64_t{o.context} * o.max_running, INT32_MAX));
  if (o.kv_tokens < o.context) {
    fail(ErrorCode::kInvalidArgument, "the KV cache ({} tokens) must hold at least one full context ({} tokens)",
         o.kv_tokens, o.context);
  }
  if (o.scoring_logits < 1) fail(ErrorCode::kInvalidArgument, "scoring_logits must be >= 1, got {}", o.scoring_logits);
  if (o.step_tokens <= 0) o.step_tokens = model.options().max_step_tokens;
  // Every running sequence gets its decode row each step, whatever the budget says.
  o.step_tokens = std::max(o.step_tokens, o.max_running);
  return o;
}

}  // namespace

Engine::Engine(Model& model, const Tokenizer& tokenizer, const EngineOptions& options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(resolved(options, model)),
      kv_(model.config(), model.kv_options(options_.kv_tokens, options_.kv_type, options_.kv_type)) {
  kv_.set_prefix_caching(options_.prefix_cache);
  if (options_.draft_model != nullptr) check_draft_vocabulary(model_, *options_.draft_model);
  publish_stats();
}

Engine::~Engine() { stop(true); }

void Engine::check_request(const EngineRequest& r) const {
  const int32_t n_vocab = model_.config().n_vocab;
  if (r.prompt.empty()) fail(ErrorCode::kInvalidArgument, "the prompt has no tokens");
  const bool embed = r.kind == EngineRequest::Kind::kEmbed;
  if (embed && r.prompt.size() > static_cast<size_t>(options_.context)) {
    fail(ErrorCode::kInvalidArgument, "the input is {} tokens, more than the context of {} tokens", r.prompt.size(),
         options_.context);
  }
  // A prompt that fills the context can still be scored when nothing is generated.
  const bool generates = r.options.stop.max_tokens != 0;
  if (!embed && (r.prompt.size() > static_cast<size_t>(options_.context) ||
                 (r.prompt.size() == static_cast<size_t>(options_.context) && generates))) {
    fail(ErrorCode::kInvalidArgument,
         "the prompt is {} tokens, which leaves no room to generate in a context of {} tokens", r.prompt.size(),
         options_.context);
  }
  for (const int32_t id : r.prompt) {
    if (id < 0 || id >= n_vocab) fail(ErrorCode::kInvalidArgument, "prompt token {} is outside the vocabulary", id);
  }
  if (r.n < 1) fail(ErrorCode::kInvalidArgument, "n must be >= 1, got {}", r.n);
  if (embed && r.prompt_logprobs >= 0) fail(ErrorCode::kInvalidArgument, "an embedding has no prompt logprobs");
  if (r.kind == EngineRequest::Kind::kGenerate) {
    SequenceDecoder probe(tokenizer_, n_vocab, r.options, {});  // throws for bad options, naming them
  }
}

bool Engine::submit(std::shared_ptr<EngineRequest> request) { return submit(std::span(&request, 1)); }

bool Engine::submit(std::span<const std::shared_ptr<EngineRequest>> requests) {
  EMBER_CHECK(!requests.empty());
  for (const auto& request : requests) {
    EMBER_CHECK(request != nullptr);
    check_request(*request);
  }
  {
    std::lock_guard lock(mutex_);
    // The queue bound counts only what cannot start at once: free running slots take requests first.
    const int64_t free_slots = std::max<int64_t>(0, int64_t{options_.max_running} - stats_.running - preempted_);
    const auto k = static_cast<int64_t>(requests.size());
    if (stopping_ || queued_ + k > options_.max_waiting + free_slots) return false;
    inbox_.insert(inbox_.end(), requests.begin(), requests.end());
    queued_ += k;
    stats_.waiting = queued_ + preempted_;
    idle_now_ = false;
  }
  wake_.notify_one();
  return true;
}

void Engine::start() {
  EMBER_CHECK(!thread_.joinable());
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || has_work_locked(); });
        if (stopping_ && cancel_on_stop_) {
          for (const auto& r : inbox_) r->cancel.store(true);
          for (const auto& s : waiting_) s->request->cancel.store(true);
          for (const auto& s : running_) s->request->cancel.store(true);
        }
        if (stopping_ && !has_work_locked()) break;
      }
      step();
    }
  });
}

void Engine::stop(bool cancel_running) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    cancel_on_stop_ = cancel_on_stop_ || cancel_running;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return idle_now_; });
}

bool Engine::has_work_locked() const { return !inbox_.empty() || !waiting_.empty() || !running_.empty(); }

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Engine::take_submitted() {
  std::vector<std::shared_ptr<EngineRequest>> inbox;
  {
    std::lock_guard lock(mutex_);
    inbox.swap(inbox_);
  }
  for (auto& request : inbox) {
    auto slot = std::make_unique<Slot>();
    slot->request = std::move(request);
    slot->tokens = slot->request->prompt;
    if (slot->request->kind == EngineRequest::Kind::kGenerate) {
      slot->decoder.emplace(tokenizer_, model_.config().n_vocab, slot->request->options, slot->tokens);
      slot->siblings_pending = slot->request->n > 1;
      if (slot->request->prompt_logprobs >= 0) slot->prompt_scores.emplace();
    }
    waiting_.push_back(std::move(slot));
  }
}

void Engine::sweep_cancelled() {
  for (auto& slot : running_) {
    if (!slot->done && slot->request->cancel.load(std::memory_order_relaxed)) finish(*slot, FinishReason::kCancelled);
  }
  for (auto& slot : waiting_) {
    if (!slot->done && slot->request->cancel.load(std::memory_order_relaxed)) finish(*slot, FinishReason::kCancelled);
  }
  compact();
}

void Engine::compact() {
  std::erase_if(running_, [](const SlotPtr& s) { return s->done; });
  std::erase_if(waiting_, [](const SlotPtr& s) { return s->done; });
}

bool Engine::step() {
  take_submitted();
  sweep_cancelled();
  const bool scheduled = schedule();
  if (scheduled) {
    Timer timer;
    std::span<const float> logits;
    try {
      logits = model_.forward(batch_, kv_);
    } catch (const std::exception& e) {
      // Nothing was stored (or it was rolled back): the batch's requests fail; the others go on.
      for (Slot* slot : batch_slots_) fail_request(*slot, e.what());
      batch_slots_.clear();
    }
    const double seconds = timer.elapsed_ms() / 1000.0;
    const double decode_share =
        batch_.empty() ? 0.0 : static_cast<double>(decode_rows_) / static_cast<double>(batch_.size());
    process_outputs(logits, model_.tokens(), model_.top_k(), model_.hidden());
    std::lock_guard lock(mutex_);
    stats_.decode_seconds += seconds * decode_share;
    stats_.prefill_seconds += seconds * (1.0 - decode_share);
    ++stats_.steps;
  }
  compact();
  publish_stats();
  return scheduled;
}

bool Engine::schedule() {
  batch_.clear();
  batch_slots_.clear();
  decode_rows_ = 0;
  budget_ = options_.step_tokens;
  scoring_rows_left_ = scoring_rows_per_step();
  for (auto& slot : running_) slot->step_rows = 0;

  // 1. One decode row for each running sequence, oldest first: running streams never wait behind
  // a prompt. A snapshot, because preemption moves the newest slots back to the queue.
  std::vector<Slot*> snapshot;
  for (auto& slot : running_) snapshot.push_back(slot.get());
  const auto decoding = [](const Slot& slot) {
    return !slot.done && slot.seq >= 0 && pending(slot) == 1 && slot.decoder.has_value();
  };
  int32_t n_decoding = 0;
  // Rows the running prompts' next chunks and the queue's head want: drafts never take them.
  int32_t prompt_rows = 0;
  if (!waiting_.empty() && (running_.empty() || running_count() < options_.max_running)) {
    prompt_rows = std::min(std::max(pending(*waiting_.front()), 0), options_.step_tokens);  // it may be admitted
  }
  for (const Slot* slot : snapshot) {
    n_decoding += decoding(*slot) ? 1 : 0;
    if (!slot->done && slot->seq >= 0 && pending(*slot) > 1) prompt_rows += pending(*slot);
  }
  // Speculation only while the batch is small, and with the rows decodes and prompts leave.
  const bool speculate = n_decoding <= options_.speculate_max_batch;
  int32_t draft_rows = std::max(options_.step_tokens - n_decoding - prompt_rows, 0);
  int32_t decodes_left = n_decoding;
  for (Slot* slot : snapshot) {
    if (!decoding(*slot)) continue;
    --decodes_left;
    slot->draft.clear();
    slot->proposals.clear();
    if (slot->n_kv >= options_.context) {  // no room for the token it just sampled
      finish(*slot, FinishReason::kContextFull);
      continue;
    }
    if (speculate) make_draft(*slot, std::min(draft_rows, options_.context - slot->n_kv - 1));
    // The draft's rows only where blocks are free, a block left for each decode still to come: a
    // draft never preempts another sequence.
    if (!slot->draft.empty()) {
      const auto rows = 1 + static_cast<int32_t>(slot->draft.size());
      if (kv_.free_blocks() - kv_.blocks_to_reserve(slot->seq, rows) < decodes_left || !kv_.reserve(slot->seq, rows)) {
        slot->draft.clear();
        slot->proposals.clear();
      }
    }
    draft_rows -= static_cast<int32_t>(slot->draft.size());
    if (!slot->draft.empty()) {
      add_speculative_rows(*slot);
    } else {
      if (!reserve_or_preempt(*slot, 1)) continue;
      add_rows(*slot, 1);
    }
    decode_rows_ += slot->step_rows;
  }
  // 2. The running prompts' next chunks, then 3. new (or preempted) requests, while the budget lasts.
  for (Slot* slot : snapshot) {
    if (budget_ <= 0) break;
    if (slot->done || slot->seq < 0 || slot->step_rows > 0 || pending(*slot) < 1) continue;
    const int32_t n = std::min({pending(*slot), budget_, chunk_limit(*slot)});
    if (n < 1 || !reserve_or_preempt(*slot, n)) continue;  // n 0: the step's scoring rows are taken
    add_rows(*slot, n);
  }
  while (budget_ > 0 && !waiting_.empty()) {
    Slot& slot = *waiting_.front();
    const int32_t choices = slot.siblings_pending ? slot.request->n : 1;
    if (!running_.empty() && running_count() + choices > options_.max_running) break;
    if (!admit(slot)) break;  // first come, first served: the next waits for this one
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return !batch_.empty();
}

int32_t Engine::running_count() const {
  int32_t n = 0;
  for (const auto& slot : running_) n += slot->done ? 0 : 1;
  return n;
}

bool Engine::reserve_or_preempt(Slot& slot, int32_t n) {
  while (!kv_.reserve(slot.seq, n)) {
    // The newest running sequence without rows in this step gives its blocks back (recomputed when
    // it is admitted again; its full blocks stay in the prefix cache, so that is usually cheap).
    Slot* victim = nullptr;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      Slot* s = it->get();
      if (!s->done && s->seq >= 0 && s->step_rows == 0 && s != &slot) {
        victim = s;
        break;
      }
    }
    if (victim == nullptr) {
      if (slot.step_rows == 0) preempt(slot);
      return false;
    }
    preempt(*victim);
  }
  return true;
}

void Engine::preempt(Slot& slot) {
  if (slot.decoder) kv_.cache_full_blocks(slot.seq, slot.tokens);
  return_drafter(slot);
  kv_.remove_sequence(slot.seq);
  slot.seq = -1;
  slot.n_kv = 0;
  slot.pooled.clear();
  slot.pooled_rows = 0;
  const auto it = std::find_if(running_.begin(), running_.end(), [&](const SlotPtr& s) { return s.get() == &slot; });
  EMBER_CHECK(it != running_.end());
  waiting_.push_front(std::move(*it));
  running_.erase(it);
  std::lock_guard lock(mutex_);
  ++stats_.preemptions;
  --stats_.running;  // running -> preempted, so that release() finds it where it is
  ++preempted_;
}

bool Engine::admit(Slot& slot) {
  if (chunk_limit(slot) < 1) return false;  // the step's scoring rows are taken: the next step
  const bool generate = slot.decoder.has_value();
  int32_t matched = 0;
  // Embeddings pool every row's hidden state, and a prompt being scored needs every row's logits,
  // so they adopt no cached prefix.
  const bool adopt = generate && !slot.prompt_scores;
  slot.seq = kv_.add_sequence(slot.tokens, adopt ? static_cast<int32_t>(slot.tokens.size()) - 1 : 0, &matched);
  slot.n_kv = matched;
  // The whole remaining prompt must fit beside a block of headroom for each running sequence, or
  // the admission would only preempt them. (The unreserved rest of running prompts is not counted:
  // their later chunks may preempt this request, which costs a recompute, never output.)
  const int64_t need = kv_.blocks_to_reserve(slot.seq, pending(slot));
  const int64_t headroom = running_count();
  if (need + headroom > kv_.free_blocks()) {
    kv_.remove_sequence(slot.seq);
    slot.seq = -1;
    slot.n_kv = 0;
    // Nothing runs and still no room: the cache can never hold this request.
    if (running_count() == 0) fail_request(slot, "the KV cache cannot hold this request");
    return false;
  }
  const int32_t n = std::min({pending(slot), budget_, chunk_limit(slot)});
  EMBER_CHECK(kv_.reserve(slot.seq, n));
  if (slot.admitted) {  // a preempted sequence back
    std::lock_guard lock(mutex_);
    --preempted_;
    ++stats_.running;
  } else {
    slot.admitted = true;
    const auto prompt = static_cast<int64_t>(slot.request->prompt.size());
    if (generate) slot.decoder->stats().cached_tokens = matched;
    std::lock_guard lock(mutex_);
    --queued_;
    ++stats_.running;  // now, not at the end of the step: submit() bounds the queue by it
    stats_.prompt_tokens += prompt;
    if (generate) {
      stats_.prefix_queried_tokens += prompt;
      stats_.prefix_hit_tokens += matched;
    }
  }
  add_rows(slot, n);
  return true;
}

void Engine::add_rows(Slot& slot, int32_t n) {
  const bool generate = slot.decoder.has_value();
  const auto end = static_cast<int32_t>(slot.tokens.size());
  const Pooling pooling = slot.request->pooling;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = slot.n_kv + i;
    Batch::RowOutput output = Batch::kNoOutput;
    if (generate) {
      // The last row returns what its decoder reads: the greedy token or the best logits when
      // that is all (a few bytes back from a GPU, not n_vocab floats). Forking n choices samples
      // each from the logits. The batch's top_k serves every top-k row (each takes its prefix).
      if (pos + 1 == end) {
        output = slot.siblings_pending ? Batch::kLogits : slot.decoder->next_row_output();
        if (output == Batch::kTopK) batch_.top_k = std::max(batch_.top_k, slot.decoder->top_k());
      } else if (slot.prompt_scores && pos >= static_cast<int32_t>(slot.prompt_scores->size())) {
        output = Batch::kLogits;  // scores token pos + 1 (rows scored before a preemption are not again)
        --scoring_rows_left_;
      }
    } else if (pooling == Pooling::kMean || (pooling == Pooling::kCls && pos == 0) ||
               (pooling == Pooling::kLast && pos + 1 == end)) {
      output = Batch::kHidden;
    }
    batch_.add(slot.tokens[static_cast<size_t>(pos)], pos, slot.seq, output);
  }
  slot.step_rows = n;
  budget_ -= n;
  batch_slots_.push_back(&slot);
}

int32_t Engine::scoring_rows_per_step() const {
  return static_cast<int32_t>(std::clamp<int64_t>(options_.scoring_logits / model_.config().n_vocab, 1, INT32_MAX));
}

int32_t Engine::chunk_limit(const Slot& slot) const {
  if (!slot.prompt_scores) return std::numeric_limits<int32_t>::max();
  // Rows scored before a preemption are recomputed without logits; the prompt's last row samples.
  const int32_t rescored = std::max(0, static_cast<int32_t>(slot.prompt_scores->size()) - slot.n_kv);
  const int64_t limit = int64_t{rescored} + scoring_rows_left_;
  const int32_t last_row = static_cast<int32_t>(slot.tokens.size()) - 1;
  return limit >= last_row - slot.n_kv ? std::numeric_limits<int32_t>::max() : static_cast<int32_t>(limit);
}

void Engine::score_prompt(Slot& slot, size_t first, std::span<const float> logits) {
  const auto n_vocab = static_cast<size_t>(model_.config().n_vocab);
  std::vector<GeneratedToken>& scores = *slot.prompt_scores;
  const int32_t first_pos = slot.n_kv - slot.step_rows;
  TokenLogprobs scratch;
  size_t logit = 0;
  for (size_t r = first; logit * n_vocab < logits.size(); ++r) {
    if (batch_.logits[r] != Batch::kLogits) continue;
    const auto next = static_cast<size_t>(first_pos + static_cast<int32_t>(r - first) + 1);
    EMBER_CHECK(next == scores.size() + 1);
    compute_logprobs(logits.subspan(logit++ * n_vocab, n_vocab), slot.tokens[next], slot.request->prompt_logprobs,
                     scratch);
    scores.push_back({.id = scratch.chosen.token, .logprob = scratch.chosen.logprob, .top = scratch.top});
  }
  if (scores.size() + 1 == slot.request->prompt.size()) {
    EngineEvent event;
    event.has_prompt_logprobs = true;
    event.prompt_logprobs = std::move(scores);
    slot.prompt_scores.reset();
    slot.request->push(std::move(event));
  }
}

void Engine::make_draft(Slot& slot, int32_t max_tokens) {
  SequenceDecoder& decoder = *slot.decoder;
  // Not from the prompt's last token: its row samples the first token (and forks n > 1 choices).
  if (slot.siblings_pending || decoder.stats().generated_tokens == 0) return;
  if (slot.draft_length < 0) slot.draft_length = decoder.options().speculative.draft_max;
  const bool lookup = options_.draft_model == nullptr;
  const int32_t limit = decoder.draft_limit(std::min(max_tokens, slot.draft_length), !lookup);
  if (limit < 1) return;
  try {
    if (!lookup && !slot.drafter) {
      if (!drafters_.empty()) {
        slot.drafter = std::move(drafters_.back());
        drafters_.pop_back();
      } else {
        slot.drafter = std::make_unique<DraftModel>(*options_.draft_model, options_.context, options_.kv_type, nullptr);
      }
    }
    // slot.tokens ends with the token sampled last, not yet stored: the draft follows it.
    decoder.draft(slot.tokens, slot.drafter.get(), limit, slot.draft, slot.proposals);
  } catch (const std::exception&) {
    // The draft model failed (its memory, a hook): this sequence goes on without speculation.
    slot.draft.clear();
    slot.proposals.clear();
    slot.draft_length = 0;
    return_drafter(slot);
  }
}

void Engine::add_speculative_rows(Slot& slot) {
  batch_.add(slot.tokens[static_cast<size_t>(slot.n_kv)], slot.n_kv, slot.seq, Batch::kLogits);
  for (size_t i = 0; i < slot.draft.size(); ++i) {
    batch_.add(slot.draft[i], slot.n_kv + 1 + static_cast<int32_t>(i), slot.seq, Batch::kLogits);
  }
  slot.step_rows = 1 + static_cast<int32_t>(slot.draft.size());
  budget_ -= slot.step_rows;
  batch_slots_.push_back(&slot);
}

void Engine::verify(Slot& slot, std::span<const float> logits) {
  SequenceDecoder& decoder = *slot.decoder;
  const auto n_vocab = static_cast<size_t>(model_.config().n_vocab);
  const size_t k = slot.draft.size();
  std::vector<std::span<const float>> rows;
  for (size_t i = 0; i <= k; ++i) rows.push_back(logits.subspan(i * n_vocab, n_vocab));
  const SequenceDecoder::Speculation v = decoder.speculate(slot.draft, slot.proposals, rows);
  const GenerateOptions::Speculative& spec = decoder.options().speculative;
  slot.draft_length =
      speculative::next_draft_length(slot.draft_length, v.drafted, v.accepted, spec.draft_min, spec.draft_max);
  {
    std::lock_guard lock(mutex_);
    stats_.draft_tokens += v.drafted;
    stats_.accepted_tokens += v.accepted;
    if (stats_.drafted_at.size() < static_cast<size_t>(v.drafted)) {
      stats_.drafted_at.resize(static_cast<size_t>(v.drafted));
      stats_.accepted_at.resize(static_cast<size_t>(v.drafted));
    }
    for (int32_t i = 0; i < v.drafted; ++i) {
      ++stats_.drafted_at[static_cast<size_t>(i)];
      if (i < v.accepted) ++stats_.accepted_at[static_cast<size_t>(i)];
    }
  }
  // The cache keeps the decode row's token and the accepted drafts; the rejected ones go.
  const int32_t kept = 1 + v.accepted;
  kv_.truncate(slot.seq, slot.n_kv + kept);
  slot.n_kv += kept;
  slot.tokens.insert(slot.tokens.end(), slot.draft.begin(), slot.draft.begin() + v.accepted);
  kv_.cache_full_blocks(slot.seq, std::span<const int32_t>(slot.tokens).first(static_cast<size_t>(slot.n_kv)));
  // Emit the kept drafts (already stored) and then `next` (the new unstored token), as sample()
  // would have one by one; a stop among them ends the choice there.
  for (int32_t j = 0; j <= v.accepted && !decoder.finished(); ++j) {
    const int32_t id = j < v.accepted ? slot.draft[static_cast<size_t>(j)] : v.next;
    if (id < 0) {  // no next token: the kept drafts complete the constrained output
      if (!decoder.finished()) decoder.finish(FinishReason::kEndOfGeneration);
      break;
    }
    EngineEvent event;
    event.choice = slot.choice;
    if (!decoder.emit_chosen(id, rows[static_cast<size_t>(j)], event.token)) break;
    if (j == v.accepted) {
      slot.tokens.push_back(id);
      if (static_cast<int32_t>(slot.tokens.size()) > options_.context) decoder.finish(FinishReason::kContextFull);
    }
    event.has_token = true;
    slot.request->push(std::move(event));
    std::lock_guard lock(mutex_);
    ++stats_.generated_tokens;
  }
  slot.draft.clear();
  slot.proposals.clear();
  if (decoder.finished()) finish(slot, decoder.stats().finish);
}

void Engine::return_drafter(Slot& slot) {
  if (!slot.drafter) return;
  // Kept for reuse up to the most sequences that speculate at once; the rest free their memory.
  if (static_cast<int32_t>(drafters_.size()) < options_.speculate_max_batch) {
    slot.drafter->reset();
    drafters_.push_back(std::move(slot.drafter));
  }
  slot.drafter.reset();
}

void Engine::process_outputs(std::span<const float> logits, std::span<const int32_t> tokens,
                             std::span<const TopCandidate> top, std::span<const float> hidden) {
  const auto n_vocab = static_cast<size_t>(model_.config().n_vocab);
  const auto n_embd = static_cast<size_t>(model_.config().n_embd);
  const auto k = static_cast<size_t>(batch_.top_k);
  size_t row = 0;  // batch row
  // The next unclaimed output of each kind: logits row, greedy token, top-k row, hidden row.
  size_t logit = 0, token = 0, top_row = 0, hidden_row = 0;
  for (Slot* slot : batch_slots_) {
    const size_t first = row;
    row += static_cast<size_t>(slot->step_rows);
    // The slot's outputs are claimed before any is used, so that a slot that throws part way
    // leaves the next slots reading their own.
    size_t n_logits = 0, n_tokens = 0, n_top = 0, n_hidden = 0;
    for (size_t r = first; r < row; ++r) {
      n_logits += batch_.logits[r] == Batch::kLogits ? 1 : 0;
      n_tokens += batch_.logits[r] == Batch::kToken ? 1 : 0;
      n_top += batch_.logits[r] == Batch::kTopK ? 1 : 0;
      n_hidden += batch_.logits[r] == Batch::kHidden ? 1 : 0;
    }
    const std::span<const float> slot_logits = logits.subspan(logit * n_vocab, n_logits * n_vocab);
    const size_t token_at = token, top_at = top_row, hidden_at = hidden_row;
    logit += n_logits;
    token += n_tokens;
    top_row += n_top;
    hidden_row += n_hidden;
    // A sequence whose sampling or verification throws (an internal error) fails alone: the
    // engine thread and the other requests go on.
    try {
      if (!slot->draft.empty()) {  // a speculative decode: every row has logits
        verify(*slot, slot_logits);
        continue;
      }
      slot->n_kv += slot->step_rows;
      if (!slot->decoder) {
        pool(*slot, hidden.subspan(hidden_at * n_embd, n_hidden * n_embd));
        continue;
      }
      kv_.cache_full_blocks(slot->seq, slot->tokens);
      // The last row of the prompt (or the decode row) samples; a chunk before it samples nothing.
      const bool sampling_row = slot->n_kv == static_cast<int32_t>(slot->tokens.size());
      if (slot->prompt_scores) {
        const bool samples_from_logits = sampling_row && batch_.logits[row - 1] == Batch::kLogits;
        score_prompt(*slot, first, slot_logits.first((n_logits - (samples_from_logits ? 1 : 0)) * n_vocab));
      }
      if (!sampling_row) continue;
      switch (batch_.logits[row - 1]) {
        case Batch::kToken: sample(*slot, {.greedy = tokens[token_at]}); break;
        case Batch::kTopK: sample(*slot, {.top = top.subspan(top_at * k, k)}); break;
        case Batch::kLogits: {
          const std::span<const float> logits_row = slot_logits.last(n_vocab);
          if (slot->siblings_pending) fork_choices(*slot, logits_row);
          sample(*slot, {.logits = logits_row});
          break;
        }
        default: break;
      }
    } catch (const std::exception& e) {
      // The forward pass stored rows (a draft's) that slot->tokens does not hold: cut them
      // before the blocks are published and released.
      if (slot->seq >= 0 && kv_.n_tokens(slot->seq) > static_cast<int32_t>(slot->tokens.size())) {
        kv_.truncate(slot->seq, static_cast<int32_t>(slot->tokens.size()));
      }
      fail_request(*slot, e.what());
    }
  }
}

void Engine::fork_choices(Slot& first, std::span<const float> logits_row) {
  const EngineRequest& request = *first.request;
  // Every sibling is made before any runs: a throw here leaves none behind, and choice 0's
  // failure then ends them all (siblings_pending still set).
  std::vector<SlotPtr> siblings;
  for (int32_t choice = 1; choice < request.n; ++choice) {
    auto sibling = std::make_unique<Slot>();
    sibling->request = first.request;
    sibling->choice = choice;
    sibling->admitted = true;
    GenerateOptions options = request.options;
    options.sampling.seed += static_cast<uint64_t>(choice);
    sibling->decoder.emplace(tokenizer_, model_.config().n_vocab, options, request.prompt);
    sibling->decoder->stats().cached_tokens = first.decoder->stats().cached_tokens;
    sibling->tokens = first.tokens;
    siblings.push_back(std::move(sibling));
  }
  first.siblings_pending = false;
  {
    std::lock_guard lock(mutex_);
    stats_.running += static_cast<int64_t>(siblings.size());  // as admit() counts choice 0
  }
  for (SlotPtr& sibling : siblings) {
    // The prompt's blocks are shared; the first write into a shared partial block copies it.
    sibling->seq = kv_.fork(first.seq, first.n_kv);
    sibling->n_kv = first.n_kv;
    Slot& s = *sibling;
    running_.push_back(std::move(sibling));
    try {
      sample(s, {.logits = logits_row});
    } catch (const std::exception& e) {
      fail_request(s, e.what());  // this choice alone
    }
  }
}

void Engine::sample(Slot& slot, const RowOutputs& row) {
  SequenceDecoder& decoder = *slot.decoder;
  if (decoder.options().stop.max_tokens == 0) {
    decoder.finish(FinishReason::kMaxTokens);
  } else {
    EngineEvent event;
    event.choice = slot.choice;
    const bool generated = row.greedy         ? decoder.on_token(*row.greedy, event.token)
                           : !row.top.empty() ? decoder.on_top_k(row.top, event.token)
                                              : decoder.on_logits(row.logits, event.token);
    if (generated) {
      slot.tokens.push_back(event.token.id);
      // The token just sampled is the last the context allows (it is returned, never stored).
      if (static_cast<int32_t>(slot.tokens.size()) > options_.context) decoder.finish(FinishReason::kContextFull);
      event.has_token = true;
      slot.request->push(std::move(event));
      std::lock_guard lock(mutex_);
      ++stats_.generated_tokens;
    }
  }
  if (decoder.finished()) finish(slot, decoder.stats().finish);
}

void Engine::pool(Slot& slot, std::span<const float> rows) {
  const auto n_embd = static_cast<size_t>(model_.config().n_embd);
  if (slot.pooled.empty()) slot.pooled.assign(n_embd, 0.0);
  for (size_t r = 0; r * n_embd < rows.size(); ++r) {
    for (size_t i = 0; i < n_embd; ++i) slot.pooled[i] += rows[r * n_embd + i];
    ++slot.pooled_rows;
  }
  if (pending(slot) > 0) return;  // more chunks to come
  EngineEvent event;
  event.last = true;
  event.stats.prompt_tokens = static_cast<int32_t>(slot.tokens.size());
  event.stats.finish = FinishReason::kEndOfGeneration;
  double norm = 0;
  for (double& v : slot.pooled) {
    v /= std::max(slot.pooled_rows, 1);
    norm += v * v;
  }
  norm = std::sqrt(norm);
  if (!std::isfinite(norm)) {  // (fails the request: the caller's catch)
    fail(ErrorCode::kFormat,
         "the model's hidden states are not finite (NaN or infinity): its weights hold NaN or infinity, or its "
         "activations overflowed");
  }
  event.embedding.resize(n_embd);
  for (size_t i = 0; i < n_embd; ++i) {
    event.embedding[i] = static_cast<float>(norm > 0 ? slot.pooled[i] / norm : 0.0);
  }
  release(slot);
  slot.request->push(std::move(event));
}

void Engine::finish(Slot& slot, FinishReason reason) {
  if (slot.done) return;
  if (!slot.decoder) {  // an embedding cancelled or failed
    release(slot);
    GenerationStats stats;
    stats.finish = reason;
    send_last(slot, stats, {});
    return;
  }
  SequenceDecoder& decoder = *slot.decoder;
  decoder.finish(reason);
  EngineEvent tail;
  tail.choice = slot.choice;
  if (decoder.take_tail(tail.token)) {
    tail.has_token = true;
    slot.request->push(std::move(tail));
  }
  release(slot);
  send_last(slot, decoder.stats(), {});
}

void Engine::fail_request(Slot& slot, const std::string& message) {
  if (slot.done) return;
  release(slot);
  GenerationStats stats;
  stats.finish = FinishReason::kError;
  send_last(slot, stats, message);
}

void Engine::send_last(const Slot& slot, const GenerationStats& stats, const std::string& error) {
  // Choices never forked end with the first, for the same reason.
  const int32_t last_choice = slot.siblings_pending ? slot.request->n - 1 : slot.choice;
  for (int32_t choice = slot.choice; choice <= last_choice; ++choice) {
    EngineEvent event;
    event.choice = choice;
    event.last = true;
    event.stats = stats;
    event.error = error;
    slot.request->push(std::move(event));
  }
}

void Engine::release(Slot& slot) {
  return_drafter(slot);
  const bool running = slot.seq >= 0;  // else queued, or preempted (admitted)
  if (running) {
    if (slot.decoder) kv_.cache_full_blocks(slot.seq, slot.tokens);
    kv_.remove_sequence(slot.seq);
    slot.seq = -1;
  }
  slot.done = true;
  // Now, before the request's last event, not at the end of the step: a client that sends its next
  // request on that event finds the slot free (submit() bounds the queue by these).
  std::lock_guard lock(mutex_);
  --(running ? stats_.running : slot.admitted ? preempted_ : queued_);
  stats_.waiting = queued_ + preempted_;
}

void Engine::publish_stats() {
  const KvCacheStats kv = kv_.stats();
  int64_t running = 0;
  for (const auto& slot : running_) running += slot->done ? 0 : 1;
  int64_t preempted = 0;  // back in the queue after running: not in queued_, still to finish
  for (const auto& slot : waiting_) preempted += slot->admitted && !slot->done ? 1 : 0;
  bool idle = false;
  {
    std::lock_guard lock(mutex_);
    preempted_ = preempted;
    stats_.waiting = queued_ + preempted;
    stats_.running = running;
    stats_.kv_blocks_total = kv.total;
    stats_.kv_blocks_used = kv.used;
    stats_.kv_blocks_cached = kv.cached;
    idle = inbox_.empty() && waiting_.empty() && running_.empty();
    idle_now_ = idle;
  }
  if (idle) idle_.notify_all();
}

}  // namespace ember
