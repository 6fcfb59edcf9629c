// Sampler: greedy, or temperature + top-k + top-p + a seeded categorical draw over a heap-selected
// candidate set.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace ember {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Candidates tried first when top-p runs over the whole vocabulary; grown 8x while their mass falls
// short of top_p (one O(n) scan each).
constexpr size_t kTopPFirstCandidates = 64;

// NaN logits rank with -inf: below every real logit, never drawn.
inline float rank_key(float logit) noexcept { return std::isnan(logit) ? kNegInf : logit; }

// The highest logit's id, the lowest such id on ties; NaN compares false, so it is never picked.
int32_t argmax(std::span<const float> logits) noexcept {
  int32_t best = 0;
  float best_logit = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

// exp((logit - max_logit) / temperature): a candidate's unnormalized probability.
inline double weight(float logit, float max_logit, float inv_temperature) noexcept {
  return std::exp((logit - max_logit) * inv_temperature);
}

}  // namespace

void validate(const SamplerOptions& options) {
  if (!std::isfinite(options.temperature)) {
    fail(ErrorCode::kInvalidArgument, "sampler temperature must be a finite number (got {})", options.temperature);
  }
  if (options.top_k < 0) fail(ErrorCode::kInvalidArgument, "sampler top_k must be >= 0 (got {})", options.top_k);
  if (!(options.top_p > 0.0f && options.top_p <= 1.0f)) {
    fail(ErrorCode::kInvalidArgument, "sampler top_p must be in (0, 1] (got {})", options.top_p);
  }
}

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) { validate(options); }

bool Sampler::better(const Candidate& a, const Candidate& b) noexcept {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void Sampler::select_top(std::span<const float> logits, size_t m) {
  // A heap of the best m so far with the worst on top: one comparison per logit, O(log m) for the
  // few that beat the worst. Ids arrive in increasing order, so a tie never displaces a lower id.
  candidates_.clear();
  for (size_t i = 0; i < m; ++i) candidates_.push_back({rank_key(logits[i]), static_cast<int32_t>(i)});
  std::make_heap(candidates_.begin(), candidates_.end(), better);
  for (size_t i = m; i < logits.size(); ++i) {
    const float v = rank_key(logits[i]);
    if (v > candidates_.front().logit) {
      std::pop_heap(candidates_.begin(), candidates_.end(), better);
      candidates_.back() = {v, static_cast<int32_t>(i)};
      std::push_heap(candidates_.begin(), candidates_.end(), better);
    }
  }
  std::sort_heap(candidates_.begin(), candidates_.end(), better);  // best first
}

void Sampler::set_weights(size_t from, size_t to, float inv_temperature) {
  const float max_logit = candidates_.front().logit;
  probs_.resize(to);
  for (size_t i = from; i < to; ++i) probs_[i] = weight(candidates_[i].logit, max_logit, inv_temperature);
}

void Sampler::select_top_p(std::span<const float> logits, double target, float inv_temperature) {
  // Real models put top_p of the mass on a few dozen tokens: one heap scan finds them.
  size_t m = std::min(logits.size(), kTopPFirstCandidates);
  select_top(logits, m);
  set_weights(0, m, inv_temperature);
  double held = 0.0;
  for (const double w : probs_) held += w;
  if (held >= target || m == logits.size()) return;
  // A flat distribution (a high temperature): order the vocabulary in growing slices, each an
  // nth_element over the rest plus a sort of the slice, until the slices hold the target mass.
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {rank_key(logits[i]), static_cast<int32_t>(i)};
  size_t sorted = 0;
  held = 0.0;
  while (held < target && sorted < logits.size()) {
    m = std::min(logits.size(), std::max(m * 8, sorted + 1));
    const auto first = candidates_.begin() + static_cast<ptrdiff_t>(sorted);
    const auto middle = candidates_.begin() + static_cast<ptrdiff_t>(m);
    std::nth_element(first, middle, candidates_.end(), better);
    std::sort(first, middle, better);
    set_weights(sorted, m, inv_temperature);
    for (size_t i = sorted; i < m; ++i) held += probs_[i];
    sorted = m;
  }
  candidates_.resize(sorted);
}

int32_t Sampler::draw(double total) {
  // 53 random bits as a double in [0, 1): the same on every standard library (unlike
  // std::uniform_real_distribution), so a seed reproduces a run anywhere.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * total;
  double cumulative = 0.0;
  int32_t last = 0;  // the last index with mass, for a target rounding lands past the end
  for (size_t i = 0; i < probs_.size(); ++i) {
    if (probs_[i] <= 0.0) continue;
    cumulative += probs_[i];
    last = static_cast<int32_t>(i);
    if (target < cumulative) return last;
  }
  return last;
}

int32_t Sampler::sample(std::span<const float> logits) {
  EMBER_CHECK(!logits.empty() && logits.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()));
  if (greedy()) return argmax(logits);
  const size_t n = logits.size();
  const size_t k = options_.top_k == 0 ? n : std::min(n, static_cast<size_t>(options_.top_k));
  const float inv_temperature = 1.0f / options_.temperature;
  if (!std::isfinite(inv_temperature)) return argmax(logits);  // a denormal temperature is greedy

  if (k == n && options_.top_p >= 1.0f) {  // the whole vocabulary: no candidate selection at all
    const int32_t best = argmax(logits);
    const float max_logit = rank_key(logits[static_cast<size_t>(best)]);
    if (!std::isfinite(max_logit)) return best;  // +inf dominates; all -inf / NaN: nothing to draw
    probs_.resize(n);
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += probs_[i] = weight(rank_key(logits[i]), max_logit, inv_temperature);
    return draw(total);
  }

  // The candidates, best first, in candidates_ and their weights in probs_; `mass` is what top-p
  // is a share of: the k candidates' weight after top-k, the whole vocabulary's without it.
  double mass = 0.0;
  if (k < n) {
    select_top(logits, k);
    if (!std::isfinite(candidates_.front().logit)) return candidates_.front().id;
    set_weights(0, k, inv_temperature);
    for (const double w : probs_) mass += w;
  } else {
    const int32_t best = argmax(logits);
    const float max_logit = rank_key(logits[static_cast<size_t>(best)]);
    if (!std::isfinite(max_logit)) return best;
    for (const float logit : logits) mass += weight(rank_key(logit), max_logit, inv_temperature);
    select_top_p(logits, static_cast<double>(options_.top_p) * mass, inv_temperature);
  }

  // top-p: the shortest prefix holding top_p of the mass (at least one token).
  const double target = static_cast<double>(options_.top_p) * mass;
  double kept_mass = 0.0;
  size_t kept = 0;
  while (kept < probs_.size()) {
    kept_mass += probs_[kept++];
    if (kept_mass >= target) break;
  }
  probs_.resize(kept);
  return candidates_[static_cast<size_t>(draw(kept_mass))].id;
}

}  // namespace ember
