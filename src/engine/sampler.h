// Sampler: picks the next token from one row of logits — greedy, or temperature, top-k, top-p and
// a seeded categorical draw (the SamplerChain of DESIGN.md §7 replaces it).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace ember {

// llama.cpp's defaults.
struct SamplerOptions {
  float temperature = 0.8f;  // logits are divided by it; <= 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 40;        // keep the k most likely tokens; 0: the whole vocabulary
  float top_p = 0.95f;       // then the fewest that hold this probability mass, in (0, 1]; 1: off
  uint64_t seed = 0;         // the same seed and logits give the same tokens, on every platform
};

// Throws Error(kInvalidArgument) naming the option: a non-finite temperature, a negative top_k,
// a top_p outside (0, 1].
void validate(const SamplerOptions& options);

class Sampler {
 public:
  // Throws as validate().
  explicit Sampler(const SamplerOptions& options = {});

  const SamplerOptions& options() const noexcept { return options_; }
  bool greedy() const noexcept { return options_.temperature <= 0.0f; }

  // The next token id, in [0, logits.size()). NaN logits are never picked (nor are -inf ones, unless
  // every logit is: then the lowest id). Temperature applies before top-p (as in Hugging Face and
  // vLLM). No full sort of the vocabulary: a heap scan finds top-k's candidates; top-p alone orders
  // only as many of the best tokens as its mass needs.
  int32_t sample(std::span<const float> logits);

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  // The candidate order: higher logit first, then lower id.
  static bool better(const Candidate& a, const Candidate& b) noexcept;
  // candidates_ = the m highest logits, best first (equal logits: lower id first).
  void select_top(std::span<const float> logits, size_t m);
  // The fewest best candidates whose weights reach `target` (top-p over the whole vocabulary).
  void select_top_p(std::span<const float> logits, double target, float inv_temperature);
  // probs_[i] = exp((candidate i's logit - the best's) / temperature) for i in [from, to).
  void set_weights(size_t from, size_t to, float inv_temperature);
  int32_t draw(double total);  // a candidate's id with probability probs_[i] / total

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<double> probs_;  // unnormalized, one per candidate (or per vocabulary entry)
};

}  // namespace ember
