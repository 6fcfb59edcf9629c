// Generator: one sequence's generation loop — prefill of a prompt's uncached tokens, then one token
// per step (SequenceDecoder samples it, checks the stops and turns it into text) — over its own KV
// cache. It is the engine behind ember::Session (include/ember/session.h) and the CLI's run and chat.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ember/session.h"
#include "engine/draft_model.h"
#include "engine/sequence_decoder.h"
#include "model/batch.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace ember {

struct GeneratorOptions {
  int32_t context = 0;  // tokens the sequence may hold, prompt included (> 0)
  DType kv_type = DType::kF16;
  bool reuse_prefix = true;  // keep the cache of the previous prompt and generation
  // Speculative decoding's draft model (may be null: prompt lookup), of the model's vocabulary
  // (check_draft_vocabulary), with its own forward mutex (may be null, or the model's).
  Model* draft_model = nullptr;
  std::mutex* draft_mutex = nullptr;
};

class Generator {
 public:
  // `model` and `tokenizer` must outlive the generator. `forward_mutex` (may be null) serializes
  // forward passes with other generators of the same model. Throws Error(kOutOfMemory) when the
  // KV cache cannot be allocated.
  Generator(Model& model, const Tokenizer& tokenizer, const GeneratorOptions& options, std::mutex* forward_mutex);

  // Starts a generation after `prompt` (the whole context). Throws Error(kInvalidArgument) for bad
  // options (naming them) or a prompt that is empty or leaves no room in the context; nothing
  // changes then.
  void start(std::span<const int32_t> prompt, const GenerateOptions& options);
  // Runs the next forward step (the prompt's, in chunks; or one token's) and returns the next
  // token, or false once finished. An exception from the step (a hook's) ends the generation
  // (kError) and propagates; the cache keeps the chunks that completed.
  bool next(GeneratedToken& token);

  // Thread-safe: the generation stops before its next forward step.
  void cancel() noexcept { cancel_.store(true, std::memory_order_relaxed); }
  // Ends any generation and empties the cache.
  void reset();

  const GenerationStats& stats() const noexcept;
  const std::string& text() const noexcept;
  std::span<const int32_t> cached_tokens() const noexcept { return cached_; }
  const KvCache& kv() const noexcept { return kv_; }
  int32_t context() const noexcept { return options_.context; }

 private:
  // next() without the exception handling: one forward step and its token.
  bool step(GeneratedToken& token);
  // Runs the prompt's uncached tokens in steps of the model's max_step_tokens; false if cancelled.
  bool prefill();
  // Stores `token` at the end of the sequence and computes its logits (or greedy token).
  void decode(int32_t token);
  // What the row of the last token in the cache asks for (SequenceDecoder::next_row_output(): its
  // greedy token or best logits when that is all the decoder reads, so no n_vocab-wide row comes
  // back from a GPU; else its logits); sets batch_.top_k for a top-k row.
  Batch::RowOutput last_row_output();
  // Runs batch_ and keeps its outputs (valid until the next forward step).
  void forward();
  // Speculative decoding's draft after the unstored token (the draft model's, else prompt
  // lookup) into draft_ / proposals_; empty when the step does not speculate.
  // False when this step cannot draft at all (no room, off, the token limit): a plain step.
  bool make_draft();
  // Stores the unstored token and draft_ in one forward pass, keeps what verification accepts,
  // and queues the chosen tokens. False when there is no draft (then decode() as usual).
  bool speculate();
  // Emits the next chosen token (the generation may finish on it: the rest is dropped).
  bool emit_chosen(GeneratedToken& token);

  Model& model_;
  const Tokenizer& tokenizer_;
  GeneratorOptions options_;
  std::mutex* forward_mutex_;
  KvCache kv_;
  SeqId seq_;
  std::vector<int32_t> cached_;  // the tokens whose K/V the cache holds
  Batch batch_;
  std::atomic<bool> cancel_{false};

  // The generation in progress.
  std::optional<SequenceDecoder> decoder_;
  std::vector<int32_t> prompt_;        // to prefill: the prompt's tokens past the cached prefix
  std::optional<int32_t> unstored_;    // the last sampled token, not yet in the cache
  std::span<const float> logits_;      // of the last token in the cache
  std::span<const int32_t> greedy_;    // or its greedy token, when it asked for that instead
  std::span<const TopCandidate> top_;  // or its best logits
  // Chosen by a speculative step, emitted one per next() (so a cancel or a stop between them
  // leaves the stats true), with their logits rows when logprobs are asked for (the model's
  // buffer may be overwritten by another session's step meanwhile).
  std::deque<std::pair<int32_t, std::vector<float>>> chosen_;
  std::optional<DraftModel> draft_model_;
  int32_t draft_length_ = 0;    // the next draft's length, adapted to the acceptance rate
  std::vector<int32_t> draft_;  // this step's draft, and the distributions it was drawn from
  std::vector<speculative::Distribution> proposals_;
  // Greedy speculation pauses while it measures slower per token than plain steps (the machine
  // and the models decide); set by start().
  speculative::SlowerPause pause_;
};

}  // namespace ember
