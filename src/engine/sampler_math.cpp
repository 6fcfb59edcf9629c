// Row kernels of the sampler chain: NaN-safe max / argmax, a vectorizable exp, heap top-k (model's
// select_top_candidates), the weighted draw.
#include "engine/sampler_math.h"

#include <algorithm>
#include <bit>
#include <cmath>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ember::sampling {
namespace {

constexpr size_t kLanes = 8;    // independent accumulators: the compiler turns them into vectors
constexpr size_t kBlock = 256;  // exp_sum's stack buffer

// Cephes' expf: n = round(y / ln 2), r = y - n ln 2 (in two parts, so r is exact), exp(r) by a
// degree-7 polynomial on [-ln 2 / 2, ln 2 / 2], times 2^n built in the exponent bits. Branch-free
// (NaN and values below the range are clamped first, then zeroed by the caller's select), so a
// loop of it vectorizes; no FMA contraction (-ffp-contract=off), so every ISA gives the same bits.
[[gnu::always_inline]] inline float exp_clamped(float y) noexcept {
  y = y >= -87.0f ? y : -87.0f;  // NaN too: never converted to an integer
  y = y <= 88.0f ? y : 88.0f;
  const float rounded = (y * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // 1.5 * 2^23 rounds
  const float r = (y - rounded * 0.693359375f) + rounded * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent = static_cast<int32_t>(rounded) + 127;  // in [1, 254] after the clamps
  return p * std::bit_cast<float>(static_cast<uint32_t>(exponent) << 23);
}

[[gnu::always_inline]] inline double sum_block(const float* w, size_t n) noexcept {
  double acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) acc[j] += w[i + j];
  }
  double total = 0.0;
  for (; i < n; ++i) total += w[i];
  for (const double a : acc) total += a;
  return total;
}

// out[i] = exp((x[i] - shift) * scale) (0 for NaN, -inf, underflow), returns their sum.
[[gnu::always_inline]] inline double exp_sum_body(const float* x, size_t n, float shift, float scale,
                                                  float* out) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const float y = (x[i] - shift) * scale;
    const float e = exp_clamped(y);
    out[i] = y >= -87.0f ? e : 0.0f;
  }
  return sum_block(out, n);
}

// out[i] = exp(c[i].logit - shift): fast_exp's bits, vectorized over the candidates' logits.
[[gnu::always_inline]] inline double exp_candidates_body(const Candidate* c, size_t n, float shift,
                                                         float* out) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const float y = c[i].logit - shift;
    const float e = exp_clamped(y);
    out[i] = y >= -87.0f ? e : 0.0f;
  }
  return sum_block(out, n);
}

using ExpSumFn = double (*)(const float*, size_t, float, float, float*) noexcept;
using ExpCandidatesFn = double (*)(const Candidate*, size_t, float, float*) noexcept;

double exp_sum_default(const float* x, size_t n, float shift, float scale, float* out) noexcept {
  return exp_sum_body(x, n, shift, scale, out);
}
double exp_candidates_default(const Candidate* c, size_t n, float shift, float* out) noexcept {
  return exp_candidates_body(c, n, shift, out);
}

#if defined(__x86_64__)
// The same loops compiled for wider vectors, picked once by what the CPU supports.
[[gnu::target("avx2")]] double exp_sum_avx2(const float* x, size_t n, float shift, float scale, float* out) noexcept {
  return exp_sum_body(x, n, shift, scale, out);
}
[[gnu::target("avx512f")]] double exp_sum_avx512(const float* x, size_t n, float shift, float scale,
                                                 float* out) noexcept {
  return exp_sum_body(x, n, shift, scale, out);
}
[[gnu::target("avx2")]] double exp_candidates_avx2(const Candidate* c, size_t n, float shift, float* out) noexcept {
  return exp_candidates_body(c, n, shift, out);
}
[[gnu::target("avx512f")]] double exp_candidates_avx512(const Candidate* c, size_t n, float shift,
                                                        float* out) noexcept {
  return exp_candidates_body(c, n, shift, out);
}
#endif

bool isa_supported(ExpIsa isa) noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();
  switch (isa) {
    case ExpIsa::kBaseline: return true;
    case ExpIsa::kAvx2: return __builtin_cpu_supports("avx2");
    case ExpIsa::kAvx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
#else
  return isa == ExpIsa::kBaseline;
#endif
}

ExpIsa best_isa() noexcept {
  if (isa_supported(ExpIsa::kAvx512)) return ExpIsa::kAvx512;
  if (isa_supported(ExpIsa::kAvx2)) return ExpIsa::kAvx2;
  return ExpIsa::kBaseline;
}

ExpSumFn exp_sum_for(ExpIsa isa) noexcept {
#if defined(__x86_64__)
  if (isa == ExpIsa::kAvx512) return exp_sum_avx512;
  if (isa == ExpIsa::kAvx2) return exp_sum_avx2;
#endif
  (void)isa;
  return exp_sum_default;
}

ExpCandidatesFn exp_candidates_for(ExpIsa isa) noexcept {
#if defined(__x86_64__)
  if (isa == ExpIsa::kAvx512) return exp_candidates_avx512;
  if (isa == ExpIsa::kAvx2) return exp_candidates_avx2;
#endif
  (void)isa;
  return exp_candidates_default;
}

double exp_block(const float* x, size_t n, float shift, float scale, float* out) noexcept {
  static const ExpSumFn fn = exp_sum_for(best_isa());
  return fn(x, n, shift, scale, out);
}

}  // namespace

float fast_exp(float x) noexcept { return x >= -87.0f ? exp_clamped(x) : 0.0f; }

float max_logit(std::span<const float> x) noexcept {
  size_t i = 0;
  float m = kNegInf;
#if defined(__SSE2__)
  // maxps(v, m) returns m when v is NaN: NaN is skipped, as below.
  __m128 a = _mm_set1_ps(kNegInf), b = a;
  for (; i + 8 <= x.size(); i += 8) {
    a = _mm_max_ps(_mm_loadu_ps(x.data() + i), a);
    b = _mm_max_ps(_mm_loadu_ps(x.data() + i + 4), b);
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(a, b));
  for (const float v : lanes) m = v > m ? v : m;
#endif
  for (; i < x.size(); ++i) m = x[i] > m ? x[i] : m;
  return m;
}

int32_t argmax(std::span<const float> x) noexcept {
  const float m = max_logit(x);
  if (m == kNegInf) return 0;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 target = _mm_set1_ps(m);
  while (i + 4 <= x.size() && _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x.data() + i), target)) == 0) i += 4;
#endif
  for (; i < x.size(); ++i) {
    if (x[i] == m) return static_cast<int32_t>(i);
  }
  return 0;  // unreachable: m is one of the values
}

double exp_weights(std::span<const float> x, float shift, float scale, float* out) noexcept {
  return exp_block(x.data(), x.size(), shift, scale, out);
}

double exp_weights_with(ExpIsa isa, std::span<const float> x, float shift, float scale, float* out) noexcept {
  if (!isa_supported(isa)) return -1.0;
  return exp_sum_for(isa)(x.data(), x.size(), shift, scale, out);
}

double exp_candidate_weights(std::span<const Candidate> c, float shift, float* out) noexcept {
  static const ExpCandidatesFn fn = exp_candidates_for(best_isa());
  return fn(c.data(), c.size(), shift, out);
}

double exp_sum(std::span<const float> x, float shift, float scale) noexcept {
  float buffer[kBlock];
  double total = 0.0;
  for (size_t at = 0; at < x.size(); at += kBlock) {
    const size_t n = std::min(kBlock, x.size() - at);
    total += exp_block(x.data() + at, n, shift, scale, buffer);
  }
  return total;
}

size_t draw_weighted(std::span<const float> w, double total, double u) noexcept {
  const double target = u * total;
  double cumulative = 0.0;
  size_t last_block = w.size();  // the last block with weight, for a target rounding lands past
  for (size_t at = 0; at < w.size(); at += kBlock) {
    const size_t n = std::min(kBlock, w.size() - at);
    const double block = sum_block(w.data() + at, n);
    if (block <= 0.0) continue;
    last_block = at;
    if (cumulative + block <= target) {
      cumulative += block;
      continue;
    }
    for (size_t i = at; i < at + n; ++i) {
      cumulative += w[i];
      if (w[i] > 0.0f && target < cumulative) return i;
    }
  }
  if (last_block == w.size()) return 0;
  for (size_t i = std::min(w.size(), last_block + kBlock); i-- > last_block;) {
    if (w[i] > 0.0f) return i;
  }
  return last_block;
}

void select_top_k(std::span<const float> x, size_t k, std::vector<Candidate>& out) {
  out.resize(k);
  select_top_candidates(x, k, out.data());
}

}  // namespace ember::sampling
