// SamplerChain: picks the next token from one row of logits through composable steps (DESIGN.md
// §7, llama.cpp's samplers): logit bias, penalties, then DRY / top-n-sigma / top-k / typical-p /
// top-p / min-p / XTC / temperature in a configurable order (or mirostat v2), then a seeded draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/sampling.h"
#include "engine/sampler_dry.h"
#include "engine/sampler_math.h"

namespace ember {

class Tokenizer;

// Throws Error(kInvalidArgument) naming the field (the message starts with it): impossible values
// such as a non-finite temperature, top_p outside (0, 1], a negative top_k, mirostat not 0 or 2.
// Token ids are checked against the vocabulary by SamplerChain's constructor.
void validate(const SamplingParams& params);

// The steps `params.order` runs (llama.cpp's order when it is empty).
std::vector<SamplerStep> effective_order(const SamplingParams& params);

// llama.cpp's --samplers names: "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc",
// "temperature", "infill".
std::string_view sampler_step_name(SamplerStep step) noexcept;

// "top_k;top_p;temperature" (';' or ',' between names; llama.cpp's aliases such as "temp",
// "typical_p", "typ", "typical-p", "top-k" too). "penalties" is accepted and ignored (penalties
// always run first); "penalties" alone is {temperature}: every truncation step off. Throws
// Error(kInvalidArgument) naming an unknown step, or for a list that names nothing (";").
std::vector<SamplerStep> parse_sampler_order(std::string_view text);

class SamplerChain {
 public:
  // Throws as validate(), and for a logit_bias token outside [0, n_vocab). `tokenizer` (may be
  // null: DRY's sequence breakers are then unused, and the infill step does nothing) maps the DRY
  // sequence breakers to tokens and gives the infill step the tokens' texts.
  SamplerChain(const SamplingParams& params, int32_t n_vocab, const Tokenizer* tokenizer);
  // DRY's sequence breakers given as token sequences (dry_breaker_sequences' form).
  SamplerChain(const SamplingParams& params, int32_t n_vocab, std::vector<std::vector<int32_t>> dry_breakers);

  const SamplingParams& params() const noexcept { return params_; }
  int32_t n_vocab() const noexcept { return n_vocab_; }
  bool greedy() const noexcept { return params_.temperature <= 0.0f; }
  // Greedy with nothing that changes the logits first (logit bias, penalties, DRY): the choice is
  // the logits' argmax (Batch::kToken's rule), which the model can make where the logits are.
  bool plain_greedy() const noexcept { return greedy() && params_.logit_bias.empty() && !penalties_on_ && !dry_on_; }
  // The k of a chain whose best k logits are all it reads: sampling (not mirostat) whose first step
  // that changes anything is top-k, with no logit bias or penalties before it, and k <= max_k (and
  // below n_vocab). 0 when the whole row is needed.
  int32_t top_k_first(int32_t max_k) const noexcept { return top_k_first_ <= max_k ? top_k_first_ : 0; }
  // Mirostat's current maximum surprise (bits); 2 tau after construction or reset().
  float mirostat_mu() const noexcept { return mu_; }

  // Appends a token (prompt tokens too) to the history the penalties and DRY look at. Allocates
  // only while a look-back of the whole context (-1) outgrows what it reserved.
  void accept(int32_t token);
  // Forgets the history and mirostat's state and re-seeds the generator: the same tokens again.
  void reset();

  // The next token, in [0, n_vocab). logits.size() == n_vocab. Never throws; allocates nothing
  // once warm. NaN logits are never drawn, nor -inf ones (unless nothing else is left: then the
  // lowest id); a +inf logit is certain.
  int32_t sample(std::span<const float> logits);
  // sample() from the row's best params().top_k logits only (while top_k_first() is non-zero):
  // `best` best first, the larger logit then the lower id, a NaN as -inf (select_top_k's order). The
  // same token, and the same random state after, as sample() on the whole row.
  int32_t sample_top_k(std::span<const sampling::Candidate> best);
  // The same with a constraint: only tokens whose bit is set in `allowed` (one bit per vocabulary
  // entry, ceil(n_vocab / 64) words, at least one bit set) can be drawn. The mask applies after
  // logit bias and penalties, before every other step.
  int32_t sample(std::span<const float> logits, std::span<const uint64_t> allowed);

  // The distribution sample() would draw from, as (token, probability) for every token with
  // probability > 0, by token id: for tests and diagnostics. Advances the state as sample() does
  // (XTC's coin), except the draw itself and mirostat's update.
  void distribution(std::span<const float> logits, std::vector<std::pair<int32_t, double>>& out);
  // Takes `other`'s random state: a copy that drew speculative verification's coins (XTC) hands
  // them back, so the next step does not draw the same ones again.
  void take_rng(const SamplerChain& other) { rng_ = other.rng_; }
  // The same under a constraint's mask (as sample(logits, allowed)): speculative verification.
  void distribution(std::span<const float> logits, std::span<const uint64_t> allowed,
                    std::vector<std::pair<int32_t, double>>& out);

 private:
  using Candidate = sampling::Candidate;

  // --- the current candidate set --------------------------------------------------------------
  // Either the whole vocabulary (full_): token i's value is (logits_[i] - shift_) * scale_, so a
  // temperature costs nothing until a step reads the values; or cands_ (best first if sorted_).
  void make_writable();  // logits_ becomes work_, a copy the steps may change
  float full_max();      // the largest raw logit of the full set (cached)
  float full_value(size_t i) const noexcept { return (logits_[i] - shift_) * scale_; }
  void keep_at_least(float raw_threshold);  // full set -> the candidates with raw logit >= it
  void keep_only_best();
  void materialize();  // full set -> every live candidate
  float candidates_max() const noexcept;
  size_t set_size() const noexcept { return full_ ? static_cast<size_t>(n_vocab_) : cands_.size(); }
  // weights_[i] = exp(value - best) for the current set (per vocabulary entry or per candidate).
  double set_weights();
  int32_t draw();  // a token of the current set with probability weight / sum

  // --- the steps (sampler_steps.cpp, sampler_chain.cpp) ----------------------------------------
  void apply_logit_bias();
  void apply_penalties();
  void apply_dry();
  void top_n_sigma(float n);
  void top_k(int32_t k);
  void typical(float p);
  void top_p(float p);
  void min_p(float p);
  void xtc(float probability, float threshold);
  void temperature(float t);
  void dynamic_temperature();
  void infill();
  size_t mirostat_truncate();  // the kept candidates, their weights at the front of weights_
  int32_t mirostat_v2();
  // Bias, penalties and the steps; a token when they decide alone (greedy, one candidate left,
  // a +inf logit), else -1 and the set to draw from.
  int32_t run_steps(std::span<const float> logits, std::span<const uint64_t> allowed = {});
  // order_[first, end): a token when one candidate is left, else -1.
  int32_t run_order(size_t first);
  int32_t first_step_top_k() const noexcept;  // computes top_k_first_ (construction)
  void apply_mask(std::span<const uint64_t> allowed);
  double uniform();  // [0, 1), 53 bits: the same on every standard library

  SamplingParams params_;
  int32_t n_vocab_;
  std::vector<SamplerStep> order_;
  bool penalties_on_ = false;
  bool dry_on_ = false;
  int32_t top_k_first_ = 0;  // top_k_first() without a limit, fixed by the parameters
  std::mt19937_64 rng_;
  float mu_ = 0.0f;

  std::vector<int32_t> history_;  // accepted tokens, oldest first (trimmed to history_keep_)
  size_t history_keep_ = 0;       // 0: keep everything (a look-back of -1)
  std::vector<int32_t> counts_;   // occurrences of each token in the penalty window
  DryPenalty dry_;
  std::vector<float> dry_amount_;  // per vocabulary entry while DRY applies to candidates

  // Per call.
  std::span<const float> logits_;
  bool full_ = true;
  bool sorted_ = false;
  bool max_valid_ = false;
  float max_raw_ = 0.0f;
  float shift_ = 0.0f;
  float scale_ = 1.0f;
  std::vector<float> work_;       // writable logits (bias, penalties, DRY, XTC)
  std::vector<float> weights_;    // exp(value - best), per vocabulary entry or candidate
  std::vector<Candidate> cands_;  // capacity n_vocab: no step ever grows it
  const Tokenizer* tokenizer_ = nullptr;
  std::vector<std::string> infill_pieces_;  // the infill step's scratch: each candidate's text ...
  std::vector<double> infill_p_;            // ... and probability
  std::vector<uint16_t> bucket_;            // per vocabulary entry: its histogram bucket (top-k, top-p, typical)
};

}  // namespace ember
