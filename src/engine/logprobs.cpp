// Logprobs: log-softmax of the raw logits (one pass for the max, one for the sum) and a heap
// selection of the top-N.
#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "engine/sampler_math.h"

namespace ember {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNegInf = -kInf;

}  // namespace

void compute_logprobs(std::span<const float> logits, int32_t chosen, int32_t n_top, TokenLogprobs& out) {
  EMBER_CHECK(!logits.empty() && chosen >= 0 && static_cast<size_t>(chosen) < logits.size());
  const float max = sampling::max_logit(logits);
  // logprob(x) for one logit. Three regimes: a finite max (the usual one), +inf logits, none live.
  size_t n_inf = 0;
  if (max == kInf) n_inf = static_cast<size_t>(std::count(logits.begin(), logits.end(), kInf));
  const double log_sum = max > kNegInf && max < kInf ? std::log(sampling::exp_sum(logits, max, 1.0f)) : 0.0;
  const auto logprob = [&](float x) -> float {
    if (max == kInf) return x == kInf ? static_cast<float>(-std::log(static_cast<double>(n_inf))) : kNegInf;
    if (!(x > kNegInf) || !(max > kNegInf)) return kNegInf;  // NaN, -inf, or nothing live
    return sampling::saturate_to_float(static_cast<double>(x) - max - log_sum);
  };
  out.chosen = {chosen, logprob(logits[static_cast<size_t>(chosen)])};
  const size_t k = static_cast<size_t>(std::clamp<int64_t>(n_top, 0, static_cast<int64_t>(logits.size())));
  out.candidates.resize(k);
  select_top_candidates(logits, k, out.candidates.data());
  out.top.clear();
  for (const TopCandidate& c : out.candidates) out.top.push_back({c.id, logprob(c.logit)});
}

}  // namespace ember
