// Logprobs: the chosen token's log-probability and the top-N alternatives under the model's own
// distribution (the log-softmax of the raw logits, before any sampling transform; DESIGN.md §7).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ember/sampling.h"
#include "model/top_candidates.h"

namespace ember {

// TokenLogprob (token, logprob) is public: include/ember/sampling.h.
struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;         // best first, ties to the lower id
  std::vector<TopCandidate> candidates;  // compute_logprobs' selection (kept for its capacity)
};

// Fills `out` for the token `chosen` (in [0, logits.size())) and the `n_top` most likely tokens
// (clamped to [0, logits.size()]). Max-subtracted, summed in float64; a NaN logit counts as -inf
// (probability 0); +inf logits share all the probability; when no logit is finite or +inf every
// logprob is -inf. Partial selection (select_top_candidates, the sampler's top-k), never a sort of
// the vocabulary; reuses out's capacity (no allocation once warm).
void compute_logprobs(std::span<const float> logits, int32_t chosen, int32_t n_top, TokenLogprobs& out);

}  // namespace ember
