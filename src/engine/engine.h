// Engine: the serving loop (DESIGN.md §6) — many requests share each forward pass. Every step
// schedules (decode rows first, then chunks of prompts within a token budget; admission by free KV
// blocks; preemption by recompute when blocks run out), runs one Model::forward, samples each
// sequence that got logits, and sends its tokens to the request's channel. Full KV blocks are
// published to the prefix cache, so a prompt that starts like an earlier one computes only the rest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "engine/draft_model.h"
#include "engine/engine_request.h"
#include "engine/sequence_decoder.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember {

struct EngineOptions {
  int32_t context = 0;       // tokens one sequence may hold, prompt included (> 0)
  int32_t max_running = 4;   // sequences decoding at once (--parallel); n > 1 choices count each
  int32_t kv_tokens = 0;     // the KV pool, shared by all sequences; 0: context * max_running
  int32_t step_tokens = 0;   // rows per forward step; 0: the model's max_step_tokens
  int32_t max_waiting = 64;  // requests queued beyond the running ones; submit() refuses more
  bool prefix_cache = true;  // reuse the KV of earlier prompts' full blocks
  // Logits floats one step may give the prompts being scored (EngineRequest::prompt_logprobs): this
  // / n_vocab rows (at least one) among all of them. 64 MiB.
  int64_t scoring_logits = int64_t{16} << 20;
  DType kv_type = DType::kF16;
  // Speculative decoding (a request's GenerateOptions::speculative): the draft model (null: prompt
  // lookup), of the model's vocabulary, run on the engine's thread. A step speculates only while it
  // decodes at most `speculate_max_batch` sequences: beyond that the rows the drafts add cost more
  // than the steps they save.
  Model* draft_model = nullptr;
  int32_t speculate_max_batch = 8;
};

// Counters and gauges for /metrics, readable from any thread.
struct EngineStats {
  int64_t waiting = 0;  // requests submitted, not yet running
  int64_t running = 0;  // sequences holding KV blocks
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;         // held by a sequence
  int64_t kv_blocks_cached = 0;       // free but keeping a cached prefix
  int64_t prompt_tokens = 0;          // of admitted requests
  int64_t prefix_queried_tokens = 0;  // prompt tokens looked up in the prefix cache
  int64_t prefix_hit_tokens = 0;      // of which were found
  int64_t generated_tokens = 0;
  int64_t draft_tokens = 0;     // speculative decoding: proposed ...
  int64_t accepted_tokens = 0;  // ... and kept
  // By position in the draft (0: first): drafts that reached it, and of those, kept it.
  std::vector<int64_t> drafted_at = {};
  std::vector<int64_t> accepted_at = {};
  int64_t preemptions = 0;
  int64_t steps = 0;
  double prefill_seconds = 0;  // forward time, shared among a step's rows by kind
  double decode_seconds = 0;
};

class Engine {
 public:
  // `model` and `tokenizer` must outlive the engine. Throws Error(kInvalidArgument) for impossible
  // options and Error(kOutOfMemory) when the KV pool cannot be allocated.
  Engine(Model& model, const Tokenizer& tokenizer, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks the request (throws Error(kInvalidArgument): empty or too long a prompt, a token outside
  // the vocabulary, bad options, n < 1) and queues it. Returns false when the queue is full or the
  // engine is stopping: the request was not taken. Thread-safe.
  bool submit(std::shared_ptr<EngineRequest> request);
  // Several requests, queued all or none (a request with several prompts); each is checked first.
  bool submit(std::span<const std::shared_ptr<EngineRequest>> requests);
  // submit()'s checks of one request, alone (to say which of several is wrong); throws
  // Error(kInvalidArgument). Thread-safe.
  void check_request(const EngineRequest& r) const;

  // The engine's thread: steps while there is work, sleeps while there is none.
  void start();
  // Refuses new requests; with `cancel_running` ends the running and queued ones (kCancelled),
  // else lets them finish. Then the thread exits; joins it. Idempotent.
  void stop(bool cancel_running);
  // Waits until no request is queued or running, or `timeout` passes; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);

  // One step: takes submitted requests, schedules, runs a forward pass, sends events. Returns
  // false when there was nothing to do. Called by the thread (start()), or by tests without it.
  bool step();

  EngineStats stats() const;
  const EngineOptions& options() const noexcept { return options_; }
  // The shared KV cache; its size and types never change (read them from any thread).
  const KvCache& kv() const noexcept { return kv_; }
  int32_t n_vocab() const noexcept { return model_.config().n_vocab; }
  int32_t n_embd() const noexcept { return model_.config().n_embd; }

 private:
  // One choice of a request: its decoder, its tokens and its place in the KV cache.
  struct Slot {
    std::shared_ptr<EngineRequest> request;
    int32_t choice = 0;
    std::optional<SequenceDecoder> decoder;  // generation requests
    std::vector<int32_t> tokens;             // prompt + generated: what the KV must hold next
    int32_t n_kv = 0;                        // of `tokens`, held by the KV cache
    SeqId seq = -1;                          // -1: holds no blocks (queued, or preempted)
    bool admitted = false;                   // has run at least once (no longer counts as queued)
    bool siblings_pending = false;           // choice 0 of n > 1: the others fork off its prompt
    bool done = false;                       // ended; removed from the lists at the end of the step
    // Choice 0 of a prompt_logprobs request, until its prompt is scored: the scores so far, in
    // order (row p scores token p + 1).
    std::optional<std::vector<GeneratedToken>> prompt_scores;
    std::vector<double> pooled;  // embedding requests: the pooling sum
    int32_t pooled_rows = 0;
    // This step's rows in the batch, and whether the last asks for an output.
    int32_t step_rows = 0;
    bool step_output = false;
    // Speculative decoding: this step's draft (rows after the decode row, each with logits) and
    // the distributions its tokens were drawn from (empty for prompt lookup); the draft model's
    // cache of this sequence (from drafters_, while it speculates); the next draft's length.
    std::vector<int32_t> draft;
    std::vector<speculative::Distribution> proposals;
    std::unique_ptr<DraftModel> drafter;
    int32_t draft_length = -1;  // -1: not started (the request's draft_max)
  };
  using SlotPtr = std::unique_ptr<Slot>;

  void take_submitted();
  void sweep_cancelled();
  // Drops the ended slots from running_ and waiting_.
  void compact();
  static int32_t pending(const Slot& slot) noexcept { return static_cast<int32_t>(slot.tokens.size()) - slot.n_kv; }
  int32_t running_count() const;
  // Builds batch_ from running_ and admits from waiting_; false when it is empty.
  bool schedule();
  // Reserves `n` more positions for `slot`, preempting the newest running slots when blocks run
  // short; false when even that did not free enough (`slot` itself may be preempted then).
  bool reserve_or_preempt(Slot& slot, int32_t n);
  void preempt(Slot& slot);
  // Gives the front waiting slot a sequence (adopting a cached prefix) and its first chunk; false
  // when the KV cache cannot take its whole prompt now.
  bool admit(Slot& slot);
  void add_rows(Slot& slot, int32_t n);
  // Rows of logits one step gives the prompts being scored: EngineOptions::scoring_logits floats
  // (at least one row).
  int32_t scoring_rows_per_step() const;
  // The most prompt rows `slot` may add to this step: a prompt being scored asks for every row's
  // logits, within what the step's scoring rows have left (0: none this step).
  int32_t chunk_limit(const Slot& slot) const;
  // Scores the slot's prompt rows of this step from batch row `first` on, whose logits are `logits`
  // (one row per row scored); sends the scores once the whole prompt is.
  void score_prompt(Slot& slot, size_t first, std::span<const float> logits);
  // A decode slot's draft for this step, at most `max_tokens` long (none when it does not speculate).
  void make_draft(Slot& slot, int32_t max_tokens);
  // The decode row and the draft's rows, every one with logits.
  void add_speculative_rows(Slot& slot);
  // Verifies a slot's draft against its rows' logits, keeps the accepted tokens in the KV cache and
  // emits them and the token chosen after them.
  void verify(Slot& slot, std::span<const float> logits);
  // Gives back a slot's draft-model cache.
  void return_drafter(Slot& slot);
  // The step's outputs to their slots: logits rows, greedy tokens (Batch::kToken rows), best logits
  // (Batch::kTopK rows, batch_.top_k each) and hidden rows.
  void process_outputs(std::span<const float> logits, std::span<const int32_t> tokens,
                       std::span<const TopCandidate> top, std::span<const float> hidden);
  // Choice 0's prompt is done: choices 1..n-1 share its blocks and sample from the same row.
  void fork_choices(Slot& first, std::span<const float> logits_row);
  // What a sequence's row returned: the greedy token the model chose, its best logits, or its logits.
  struct RowOutputs {
    std::optional<int32_t> greedy = {};
    std::span<const TopCandidate> top = {};
    std::span<const float> logits = {};
  };
  // The slot's next token from its row.
  void sample(Slot& slot, const RowOutputs& row);
  // Adds this step's hidden rows to an embedding's pool; sends the vector once the prompt is done.
  void pool(Slot& slot, std::span<const float> rows);
  // Ends a generation (sends the held-back text and the last events) and frees its blocks.
  void finish(Slot& slot, FinishReason reason);
  void fail_request(Slot& slot, const std::string& message);
  // The last event of the slot's choice, and of the choices that were never forked from it.
  void send_last(const Slot& slot, const GenerationStats& stats, const std::string& error);
  void release(Slot& slot);
  void publish_stats();
  bool has_work_locked() const;

  Model& model_;
  const Tokenizer& tokenizer_;
  EngineOptions options_;
  KvCache kv_;
  Batch batch_;
  std::vector<Slot*> batch_slots_;  // the slots with rows in batch_, in order
  int32_t budget_ = 0;              // rows left in the step being scheduled
  int32_t scoring_rows_left_ = 0;   // of them, logits rows prompts being scored may still take
  int32_t decode_rows_ = 0;         // of the step, decode rows (the rest are prompt rows)

  std::vector<std::unique_ptr<DraftModel>> drafters_;  // free draft-model caches (engine thread)

  std::deque<SlotPtr> waiting_;   // engine thread only
  std::vector<SlotPtr> running_;  // in admission order (the newest last)

  mutable std::mutex mutex_;  // guards inbox_, stopping_, the stats
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::vector<std::shared_ptr<EngineRequest>> inbox_;
  int64_t queued_ = 0;     // submitted requests never admitted yet (inbox + waiting)
  int64_t preempted_ = 0;  // slots back in waiting_ after running
  bool idle_now_ = true;   // nothing submitted, queued or running (wait_idle)
  bool stopping_ = false;
  bool cancel_on_stop_ = false;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace ember
