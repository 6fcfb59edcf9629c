// The windows `ember perplexity` runs and the NLL statistics it reports (see perplexity.h).
#include "cli/perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ember::cli {

std::vector<PerplexityWindow> plan_chunks(int64_t n_tokens, int32_t ctx, int32_t max_chunks, bool bos) {
  EMBER_CHECK(ctx >= 3 && n_tokens >= ctx);
  int64_t n_chunks = n_tokens / ctx;
  if (max_chunks > 0) n_chunks = std::min<int64_t>(n_chunks, max_chunks);
  std::vector<PerplexityWindow> windows;
  for (int64_t i = 0; i < n_chunks; ++i) {
    const int64_t begin = i * ctx;
    // llama.cpp: the rows at positions ctx/2 .. ctx-2 predict the tokens after them.
    windows.push_back({.begin = begin, .end = begin + ctx, .score_begin = begin + ctx / 2 + 1, .bos_first = bos});
  }
  return windows;
}

std::vector<PerplexityWindow> plan_strided(int64_t n_tokens, int32_t ctx, int32_t stride, int32_t max_windows) {
  EMBER_CHECK(stride >= 1 && stride <= ctx && n_tokens >= 2);
  std::vector<PerplexityWindow> windows;
  int64_t prev_end = 0;
  for (int64_t begin = 0; prev_end < n_tokens; begin += stride) {
    if (max_windows > 0 && std::ssize(windows) == max_windows) break;
    const int64_t end = std::min(begin + ctx, n_tokens);
    const int64_t score_begin = std::max(prev_end, begin + 1);
    if (score_begin == end) break;  // stride = ctx: a last window of one token has nothing to score
    windows.push_back({.begin = begin, .end = end, .score_begin = score_begin, .bos_first = false});
    prev_end = end;
  }
  return windows;
}

double token_nll(std::span<const float> logits, int32_t token) {
  EMBER_CHECK(token >= 0 && static_cast<size_t>(token) < logits.size());
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (const float v : logits) sum += std::exp(static_cast<double>(v) - max);
  return std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(token)]) - max);
}

double NllAccumulator::mean() const noexcept { return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0; }

double NllAccumulator::mean_error() const noexcept {
  if (count_ < 2) return 0.0;
  const double m = mean();
  const double variance = sum_sq_ / static_cast<double>(count_) - m * m;
  return variance > 0 ? std::sqrt(variance / static_cast<double>(count_ - 1)) : 0.0;
}

double NllAccumulator::ppl() const noexcept { return std::exp(mean()); }

double NllAccumulator::ppl_error() const noexcept { return ppl() * mean_error(); }

}  // namespace ember::cli
