// Row kernels the sampler chain and logprobs share: a NaN-safe max / argmax, a vectorizable exp
// for softmax weights, and a heap selection of the k best logits (no sort of the vocabulary).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "model/batch.h"
#include "model/top_candidates.h"

namespace ember::sampling {

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A double as float, saturating to +-inf outside float's range (a plain cast would be undefined).
inline float saturate_to_float(double v) noexcept {
  if (v < -std::numeric_limits<float>::max()) return kNegInf;
  if (v > std::numeric_limits<float>::max()) return std::numeric_limits<float>::infinity();
  return static_cast<float>(v);
}

// One entry of a candidate set: a token and its (possibly transformed) logit. The model's
// Batch::kTopK entries are the same type, so its best logits are a candidate set as they come.
using Candidate = TopCandidate;

// The candidate order: higher logit first, then the lower id.
inline bool better(const Candidate& a, const Candidate& b) noexcept { return ranks_before(a, b); }

// The largest logit; NaN is skipped; -inf when there is none (empty, all -inf or NaN).
float max_logit(std::span<const float> x) noexcept;

// The index of the largest logit, the lowest such index on ties; NaN is never picked; 0 when every
// logit is -inf or NaN.
int32_t argmax(std::span<const float> x) noexcept;

// out[i] = exp((x[i] - shift) * scale), 0 for NaN, -inf and anything below float's range, with
// about 2e-7 relative error (a polynomial the compiler vectorizes: glibc's exp is ~10x slower per
// element and a 150k vocabulary pays it per token). Needs (x - shift) * scale <= ~88. Returns the
// sum, accumulated in double.
double exp_weights(std::span<const float> x, float shift, float scale, float* out) noexcept;

// out[i] = exp(c[i].logit - shift) with fast_exp's bits (the candidates' weights), vectorized.
// Returns the sum, accumulated in double.
double exp_candidate_weights(std::span<const Candidate> c, float shift, float* out) noexcept;

// The instruction sets the exp is compiled for (exp_weights picks the widest the CPU has).
enum class ExpIsa { kBaseline, kAvx2, kAvx512 };

// exp_weights with the version for `isa` (for tests: all must give the same bits); -1 when the
// CPU lacks it.
double exp_weights_with(ExpIsa isa, std::span<const float> x, float shift, float scale, float* out) noexcept;

// The same sum without storing the weights.
double exp_sum(std::span<const float> x, float shift, float scale) noexcept;

// exp(x) for one value in [-87, 88] with exp_weights' accuracy.
float fast_exp(float x) noexcept;

// The index drawn with probability w[i] / total for u in [0, 1): the first whose running sum
// passes u * total (block sums skip most of a long row). Rounding past the end picks the last
// positive weight; no positive weight at all picks 0.
size_t draw_weighted(std::span<const float> w, double total, double u) noexcept;

// out = the k best entries of x (NaN ranks as -inf), best first, ties to the lower id
// (select_top_candidates, which the model's host path runs too). 1 <= k <= x.size(); `out` is
// resized to k (no allocation once its capacity holds k).
void select_top_k(std::span<const float> x, size_t k, std::vector<Candidate>& out);

}  // namespace ember::sampling
