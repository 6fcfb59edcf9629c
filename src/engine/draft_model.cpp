// DraftModel: the vocabulary check and a cache that follows the target's sequence (see draft_model.h).
#include "engine/draft_model.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/check.h"

namespace ember {

void check_draft_vocabulary(const Model& target, const Model& draft) {
  const GgufFile& t = target.file();
  const GgufFile& d = draft.file();
  if (target.config().n_vocab != draft.config().n_vocab) {
    fail(
        ErrorCode::kInvalidArgument,
        "the draft model '{}' has {} logits per token and the model '{}' {}: a draft must share the model's vocabulary",
        d.name(), draft.config().n_vocab, t.name(), target.config().n_vocab);
  }
  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  if (!t.contains(kTokens) || !d.contains(kTokens)) {
    fail(ErrorCode::kInvalidArgument, "'{}' has no {}: cannot check that the draft model shares the vocabulary",
         t.contains(kTokens) ? d.name() : t.name(), kTokens);
  }
  const std::span<const std::string_view> a = t.get_strings(kTokens);
  const std::span<const std::string_view> b = d.get_strings(kTokens);
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      fail(ErrorCode::kInvalidArgument,
           "the draft model '{}' has another vocabulary than '{}': token {} is {:?} there and {:?} here", d.name(),
           t.name(), i, b[i], a[i]);
    }
  }
  if (a.size() != b.size()) {
    fail(ErrorCode::kInvalidArgument,
         "the draft model '{}' has {} tokens and '{}' {}: a draft must share the vocabulary", d.name(), b.size(),
         t.name(), a.size());
  }
}

namespace {

// The target's cache type where the draft's heads can hold it, else F16 (Q8_0 with heads that are
// not a multiple of 32): the draft's cache only shapes its guesses, which the target verifies.
DType draft_kv_type(const Model& model, DType kv_type) {
  return kv_dtype_supported(kv_type, model.config().head_dim) && kv_dtype_supported(kv_type, model.config().head_dim_v)
             ? kv_type
             : DType::kF16;
}

}  // namespace

DraftModel::DraftModel(Model& model, int32_t context, DType kv_type, std::mutex* forward_mutex)
    : model_(model),
      forward_mutex_(forward_mutex),
      kv_(model.config(), model.kv_options(context, draft_kv_type(model, kv_type), draft_kv_type(model, kv_type))),
      seq_(kv_.add_sequence()) {
  EMBER_CHECK(context > 0);
}

std::span<const float> DraftModel::sync(std::span<const int32_t> tokens) {
  EMBER_CHECK(!tokens.empty());
  size_t keep = 0;
  while (keep < cached_.size() && keep < tokens.size() && cached_[keep] == tokens[keep]) ++keep;
  if (keep == tokens.size()) --keep;  // the last token runs again: its logits are needed
  kv_.truncate(seq_, static_cast<int32_t>(keep));
  cached_.resize(keep);
  const size_t chunk = static_cast<size_t>(model_.options().max_step_tokens);
  std::span<const float> logits;
  while (cached_.size() < tokens.size()) {
    const size_t n = std::min(tokens.size() - cached_.size(), chunk);
    batch_.clear();
    for (size_t i = 0; i < n; ++i) {
      const size_t at = cached_.size() + i;
      batch_.add(tokens[at], static_cast<int32_t>(at), seq_, at + 1 == tokens.size());
    }
    logits = model_.forward(batch_, kv_);
    // Moved chunk by chunk, so cached_ stays true to the cache if a later chunk throws.
    cached_.insert(cached_.end(), tokens.begin() + static_cast<ptrdiff_t>(cached_.size()),
                   tokens.begin() + static_cast<ptrdiff_t>(cached_.size() + n));
  }
  return logits;
}

std::span<const float> DraftModel::feed(int32_t token) {
  batch_.clear();
  batch_.add(token, static_cast<int32_t>(cached_.size()), seq_, true);
  const std::span<const float> logits = model_.forward(batch_, kv_);
  cached_.push_back(token);
  return logits;
}

void DraftModel::reset() {
  kv_.truncate(seq_, 0);
  cached_.clear();
}

}  // namespace ember
