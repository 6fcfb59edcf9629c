// Speculative decoding's two pure parts: drafting by prompt lookup (the tokens that followed an
// earlier occurrence of the last n-gram of the prompt and output), and verification of a draft by
// modified rejection sampling, which keeps the target model's output distribution exactly at any
// temperature (Leviathan et al. 2023, Chen et al. 2023). The engine feeds them distributions from
// SamplerChain::distribution().
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace ember::speculative {

// (token, probability > 0) pairs sorted by token id, summing to 1: SamplerChain::distribution's form.
using Distribution = std::vector<std::pair<int32_t, double>>;

// Prompt lookup: the tokens that followed the latest earlier occurrence of the last n tokens of
// `history`, trying n from `n_max` down to `n_min` (the longest match wins), at most `max_tokens`
// of them. Empty when nothing matches. O(history x n_max).
std::vector<int32_t> ngram_draft(std::span<const int32_t> history, int n_min, int n_max, int max_tokens);

struct Verdict {
  int32_t accepted = 0;  // the draft tokens kept: draft[0, accepted)
  int32_t next = -1;     // then this token: the residual draw at the first rejection, else a draw from the
                         // target's distribution after the whole draft
};

// Verifies draft d_1..d_k against the target's distributions p_1..p_{k+1} (p_i: the target's next
// token after d_1..d_{i-1}; target.size() == draft.size() + 1). `proposals` holds the draft model's
// q_1..q_k, or is empty for deterministic proposals (prompt lookup: q_i is d_i with certainty).
// d_i is kept with probability min(1, p_i(d_i) / q_i(d_i)); at the first rejection the next token
// is drawn from max(0, p_i - q_i), renormalized. Then every emitted token is distributed as the
// target alone would draw it. Greedy (one-hot p) keeps exactly the drafts that match the target's
// choice.
Verdict verify(std::span<const int32_t> draft, std::span<const Distribution> proposals,
               std::span<const Distribution> target, std::mt19937_64& rng);

// A token drawn from `weights` (not necessarily normalized: a Distribution, or a residual); -1 when
// they sum to 0.
int32_t draw(const std::vector<std::pair<int32_t, double>>& weights, std::mt19937_64& rng);

// The next draft's length after a draft of `drafted` tokens of which `accepted` were kept: longer
// (by 2) after a draft of the current length kept whole, shorter (by 1) after a rejection, the
// same after a shorter draft kept whole; within [min, max].
int32_t next_draft_length(int32_t current, int32_t drafted, int32_t accepted, int32_t min, int32_t max);

// p(token) in `d` (0 when absent); binary search.
double probability(const Distribution& d, int32_t token);

// Greedy speculation's pause: moving averages of the time per emitted token of the steps that tried
// to draft (the draft's time included, whatever came of it) and of plain steps; when drafting
// measures slower it pauses for kFirstPauseSteps plain steps, then tries again, pausing twice as
// long each time it still does not pay (at most kMaxPauseSteps). Pure: the caller times the steps.
class SlowerPause {
 public:
  static constexpr int32_t kFirstPauseSteps = 8;
  static constexpr int32_t kMaxPauseSteps = 256;

  // Off (`enabled` false): never pauses. On, it starts with one plain step, to know what drafting
  // has to beat. `catches_up`: the first drafting step after a pause also carries the paused
  // steps (a draft model's cache catching up), so it is not weighed.
  explicit SlowerPause(bool enabled = false, bool catches_up = false);
  // Whether the next step should be plain.
  bool paused() const noexcept { return pause_ > 0; }
  // After each decode step: whether it tried to draft, how long it took and how many tokens it
  // emitted.
  void weigh(bool drafting, double ms, int32_t tokens);

 private:
  bool enabled_;
  bool catches_up_;
  double plain_ms_per_token_ = 0;
  double draft_ms_per_token_ = 0;
  int32_t pause_ = 0;  // plain steps left
  int32_t pause_steps_ = kFirstPauseSteps;
  bool after_pause_ = false;  // the next drafting step is the first after a pause
};

// The softmax probability (temperature 1) of the most likely token under `logits`, among the tokens
// `allowed` holds (a bitset of 64-bit words; empty: all): how sure a draft model is of its next
// token, before the sampler's other steps. Logits more than 20 below the top are left out (e^-20
// each: a threshold's input, not a distribution), so most of a large vocabulary costs a compare.
// 0 for no finite allowed logit.
double top_probability(std::span<const float> logits, std::span<const uint64_t> allowed = {});

}  // namespace ember::speculative
