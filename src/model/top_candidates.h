// The k best logits of a row in Batch::kTopK's order: one selection for the model's host path and
// the sampler (engine/sampler_math.h's select_top_k), so their top-k rows cannot drift apart.
#pragma once

#include <cstddef>
#include <span>

#include "model/batch.h"

namespace ember {

// TopCandidate order: the higher logit first, then the lower id.
inline bool ranks_before(const TopCandidate& a, const TopCandidate& b) noexcept {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// out [k] = the k best entries of x (a NaN ranks, and is written, as -inf), best first, ties to the
// lower id: a heap of k with the worst on top, one comparison per logit, blocks of 16 that cannot
// beat the worst skipped with a vector compare. k <= x.size() (0: nothing).
void select_top_candidates(std::span<const float> x, size_t k, TopCandidate* out) noexcept;

}  // namespace ember
