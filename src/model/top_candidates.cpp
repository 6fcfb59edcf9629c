// select_top_candidates: a k-heap over the row with a 16-wide skip of values that cannot enter it.
#include "model/top_candidates.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ember {
namespace {

// Whether any of x[0..16) is > t (NaN is not).
inline bool any_greater16(const float* x, float t) noexcept {
#if defined(__SSE2__)
  const __m128 v = _mm_set1_ps(t);
  const __m128 g = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(x), v), _mm_cmpgt_ps(_mm_loadu_ps(x + 4), v)),
                             _mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + 8), v), _mm_cmpgt_ps(_mm_loadu_ps(x + 12), v)));
  return _mm_movemask_ps(g) != 0;
#else
  bool any = false;
  for (size_t j = 0; j < 16; ++j) any |= x[j] > t;
  return any;
#endif
}

}  // namespace

void select_top_candidates(std::span<const float> x, size_t k, TopCandidate* out) noexcept {
  if (k == 0) return;  // (out[0] is read below)
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < k; ++i) out[i] = {std::isnan(x[i]) ? kNegInf : x[i], static_cast<int32_t>(i)};
  std::make_heap(out, out + k, ranks_before);  // the worst of the k on top
  // Ids arrive in increasing order, so a tie never displaces a lower id: `>` is the whole test (and
  // a NaN never passes it).
  const auto offer = [&](size_t j) {
    if (!(x[j] > out[0].logit)) return;
    std::pop_heap(out, out + k, ranks_before);
    out[k - 1] = {x[j], static_cast<int32_t>(j)};
    std::push_heap(out, out + k, ranks_before);
  };
  constexpr size_t kSkip = 16;
  size_t i = k;
  for (; i + kSkip <= x.size(); i += kSkip) {
    if (!any_greater16(x.data() + i, out[0].logit)) continue;
    for (size_t j = i; j < i + kSkip; ++j) offer(j);
  }
  for (; i < x.size(); ++i) offer(i);
  std::sort_heap(out, out + k, ranks_before);  // best first
}

}  // namespace ember
