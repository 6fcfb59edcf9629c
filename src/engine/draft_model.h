// DraftModel: a smaller model of the target's vocabulary that proposes the next tokens for
// speculative decoding. It keeps its own KV cache of the target's tokens, brought up to date (the
// common prefix kept, the rest run) before each draft, so a rejected draft costs it nothing.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace ember {

// Throws Error(kInvalidArgument) unless `draft` has `target`'s vocabulary: the same number of
// logits and the same token texts (tokenizer.ggml.tokens), so a token id means one thing in both.
void check_draft_vocabulary(const Model& target, const Model& draft);

class DraftModel {
 public:
  // `model` must outlive the draft. `forward_mutex` (may be null) serializes its forward passes
  // with other users of the model. Throws Error(kOutOfMemory) when the KV cache cannot be allocated.
  DraftModel(Model& model, int32_t context, DType kv_type, std::mutex* forward_mutex);

  // Brings the cache to `tokens` (the target's whole sequence: what it keeps and the token it is
  // about to store) and returns the logits after the last of them; valid until the next call.
  // Callers hold forward_mutex().
  std::span<const float> sync(std::span<const int32_t> tokens);
  // Stores `token` after the cached ones and returns the logits after it.
  std::span<const float> feed(int32_t token);
  void reset();

  Model& model() noexcept { return model_; }
  std::mutex* forward_mutex() const noexcept { return forward_mutex_; }
  const KvCache& kv() const noexcept { return kv_; }

 private:
  Model& model_;
  std::mutex* forward_mutex_;
  KvCache kv_;
  SeqId seq_;
  std::vector<int32_t> cached_;  // the tokens whose K/V the cache holds
  Batch batch_;
};

}  // namespace ember
