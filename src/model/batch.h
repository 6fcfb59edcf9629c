// Batch: one forward step's rows (DESIGN.md §2) — any mix of prefill chunks and decode tokens of
// several sequences, flattened: row i is token tokens[i] of sequence seq[i] at position pos[i], and
// logits[i] says what that row returns (RowOutput: nothing, its logits, its greedy token, its best
// logits, or its hidden state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"

namespace ember {

// One of a Batch::kTopK row's best logits.
struct TopCandidate {
  float logit;
  int32_t id;
};

struct Batch {
  // What a row returns from Model::forward (the values of `logits`). Nested and unscoped: the
  // values compare with the uint8_t flags directly without claiming kLogits & co. in namespace ember.
  enum RowOutput : uint8_t {
    kNoOutput = 0,  // K/V stored only (prefill rows before the last)
    kLogits = 1,    // the row's logits: Model::forward()'s [n_logits][n_vocab]
    kHidden = 2,    // the row's final-normed hidden state (output norm, no LM head): Model::hidden()
    // The row's greedy token only (Model::tokens()): the index of its largest logit, the lowest on
    // ties, never NaN — SamplerChain's greedy choice — or -1 when no logit is above -inf (a broken
    // model: SequenceDecoder fails the request). With the head on the GPU the argmax runs there:
    // one id comes back instead of n_vocab floats.
    kToken = 3,
    // The row's `top_k` best logits with their ids (Model::top_k()), best first: the larger logit,
    // then the lower id; a NaN ranks (and is returned) as -inf — the sampler's top-k. With the head
    // on the GPU the selection runs there: k pairs come back instead of n_vocab floats.
    kTopK = 4,
  };
  // The most candidates a kTopK row returns.
  static constexpr int32_t kMaxTopK = 256;

  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;
  std::vector<SeqId> seq;
  std::vector<uint8_t> logits;  // a RowOutput per row
  int32_t top_k = 0;            // candidates per kTopK row, one count for the batch (1..kMaxTopK)

  size_t size() const noexcept { return tokens.size(); }
  bool empty() const noexcept { return tokens.empty(); }
  void clear() noexcept {
    tokens.clear();
    pos.clear();
    seq.clear();
    logits.clear();
    top_k = 0;
  }
  void add(int32_t token, int32_t position, SeqId sequence, RowOutput output) {
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(sequence);
    logits.push_back(output);
  }
  void add(int32_t token, int32_t position, SeqId sequence, bool want_logits) {
    add(token, position, sequence, want_logits ? kLogits : kNoOutput);
  }
};

}  // namespace ember
