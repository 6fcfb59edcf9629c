// Prompt-lookup drafting and modified rejection sampling (see speculative.h).
#include "engine/speculative.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace ember::speculative {
namespace {

// A uniform double in [0, 1) from 53 random bits.
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// max(0, p - q) over the union of both supports, both sorted by token.
std::vector<std::pair<int32_t, double>> residual(const Distribution& p, const Distribution& q) {
  std::vector<std::pair<int32_t, double>> out;
  size_t j = 0;
  for (const auto& [token, prob] : p) {
    while (j < q.size() && q[j].first < token) ++j;
    const double other = j < q.size() && q[j].first == token ? q[j].second : 0.0;
    if (prob > other) out.emplace_back(token, prob - other);
  }
  return out;
}

}  // namespace

int32_t draw(const std::vector<std::pair<int32_t, double>>& weights, std::mt19937_64& rng) {
  double total = 0.0;
  for (const auto& [token, w] : weights) total += w;
  if (!(total > 0.0)) return -1;
  const double target = uniform(rng) * total;
  double sum = 0.0;
  for (const auto& [token, w] : weights) {
    sum += w;
    if (target < sum) return token;
  }
  // Rounding left the draw past the last cumulative sum: the last token with weight.
  for (auto it = weights.rbegin(); it != weights.rend(); ++it) {
    if (it->second > 0.0) return it->first;
  }
  return -1;
}

int32_t next_draft_length(int32_t current, int32_t drafted, int32_t accepted, int32_t min, int32_t max) {
  // A draft cut short (the draft model unsure, a short lookup match, the room left) and kept
  // whole says nothing about a longer one: the length stays.
  const int32_t next = accepted < drafted ? current - 1 : drafted >= current ? current + 2 : current;
  return std::clamp(next, std::max(min, 1), std::max(max, 1));
}

double probability(const Distribution& d, int32_t token) {
  const auto it = std::lower_bound(d.begin(), d.end(), token, [](const auto& e, int32_t t) { return e.first < t; });
  return it != d.end() && it->first == token ? it->second : 0.0;
}

std::vector<int32_t> ngram_draft(std::span<const int32_t> history, int n_min, int n_max, int max_tokens) {
  EMBER_CHECK(n_min >= 1 && n_min <= n_max);
  const auto size = static_cast<int64_t>(history.size());
  for (int n = n_max; n >= n_min && max_tokens > 0; --n) {
    if (size < n + 1) continue;
    const std::span<const int32_t> tail = history.subspan(static_cast<size_t>(size - n));
    // The latest start j < size - n whose n tokens equal the tail and that has a token after them.
    for (int64_t j = size - n - 1; j >= 0; --j) {
      if (!std::equal(tail.begin(), tail.end(), history.begin() + j)) continue;
      const int64_t from = j + n;
      const int64_t to = std::min(size, from + max_tokens);
      return {history.begin() + from, history.begin() + to};
    }
  }
  return {};
}

Verdict verify(std::span<const int32_t> draft, std::span<const Distribution> proposals,
               std::span<const Distribution> target, std::mt19937_64& rng) {
  EMBER_CHECK(target.size() == draft.size() + 1);
  EMBER_CHECK(proposals.empty() || proposals.size() == draft.size());
  Verdict v;
  for (size_t i = 0; i < draft.size(); ++i) {
    const double p = probability(target[i], draft[i]);
    const double q = proposals.empty() ? 1.0 : probability(proposals[i], draft[i]);
    // Keep with probability min(1, p / q): u * q < p (q == 0 cannot be drawn; then keep if p > 0).
    if (uniform(rng) * q < p) {
      ++v.accepted;
      continue;
    }
    const Distribution one_hot = {{draft[i], 1.0}};
    const int32_t t = draw(residual(target[i], proposals.empty() ? one_hot : proposals[i]), rng);
    // A residual that rounds to nothing: the target's own distribution.
    v.next = t >= 0 ? t : draw(target[i], rng);
    return v;
  }
  v.next = draw(target[draft.size()], rng);
  return v;
}

double top_probability(std::span<const float> logits, std::span<const uint64_t> allowed) {
  const auto is_allowed = [&](size_t i) { return allowed.empty() || ((allowed[i / 64] >> (i % 64)) & 1) != 0; };
  float top = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > top && is_allowed(i)) top = logits[i];
  }
  if (!std::isfinite(top)) return 0.0;
  const float floor = top - 20.0f;
  double sum = 0.0;  // of exp(l - top): the top term is 1
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > floor && is_allowed(i)) sum += std::exp(static_cast<double>(logits[i]) - top);
  }
  return 1.0 / sum;
}

SlowerPause::SlowerPause(bool enabled, bool catches_up)
    : enabled_(enabled), catches_up_(catches_up), pause_(enabled ? 1 : 0) {}

void SlowerPause::weigh(bool drafting, double ms, int32_t tokens) {
  if (!enabled_) return;
  if (drafting && after_pause_) {
    after_pause_ = false;
    return;
  }
  double& ms_per_token = drafting ? draft_ms_per_token_ : plain_ms_per_token_;
  const double now = ms / std::max(tokens, 1);
  ms_per_token = ms_per_token == 0 ? now : 0.7 * ms_per_token + 0.3 * now;
  if (pause_ > 0) {
    --pause_;
    return;
  }
  if (!drafting || plain_ms_per_token_ == 0) return;
  if (draft_ms_per_token_ > plain_ms_per_token_) {
    pause_ = pause_steps_;
    pause_steps_ = std::min(pause_steps_ * 2, kMaxPauseSteps);
    draft_ms_per_token_ = 0;  // a fresh measure after the pause
    after_pause_ = catches_up_;
  } else {
    pause_steps_ = kFirstPauseSteps;
  }
}

}  // namespace ember::speculative
