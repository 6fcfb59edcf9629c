// The arithmetic of `ember perplexity`, apart from the model: which windows of the text are run and
// which of their tokens are scored (llama-perplexity's chunks or Hugging Face's strided windows),
// and the negative log-likelihood accumulator with llama.cpp's uncertainty.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ember::cli {

// One forward pass over text tokens [begin, end) from an empty cache. Tokens [score_begin, end) are
// scored, token t by the logits of the row of token t - 1 (so score_begin > begin).
struct PerplexityWindow {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t score_begin = 0;
  bool bos_first = false;  // the window's first token is replaced by BOS

  int64_t scored() const noexcept { return end - score_begin; }
};

// llama-perplexity: chunk i is tokens [i*ctx, (i+1)*ctx) (n_tokens / ctx chunks, at most
// max_chunks when > 0), its first token replaced by BOS when `bos`; tokens ctx/2 + 1 .. ctx - 1 of
// each chunk are scored (ctx - ctx/2 - 1 of them). Needs ctx >= 3 and n_tokens >= ctx.
std::vector<PerplexityWindow> plan_chunks(int64_t n_tokens, int32_t ctx, int32_t max_chunks, bool bos);

// Hugging Face's sliding windows: window k is tokens [k*stride, min(k*stride + ctx, n_tokens)),
// scoring those not scored by an earlier window (the first window every token after its first;
// never a window's first token, which has nothing before it); the last window is the one that
// reaches n_tokens (or the max_windows-th, when > 0), unless it would score nothing (a lone last
// token when stride = ctx). Needs 1 <= stride <= ctx and n_tokens >= 2.
std::vector<PerplexityWindow> plan_strided(int64_t n_tokens, int32_t ctx, int32_t stride, int32_t max_windows);

// -log softmax(logits)[token], in double.
double token_nll(std::span<const float> logits, int32_t token);

// Sums of negative log-likelihoods and of their squares.
class NllAccumulator {
 public:
  void add(double nll) noexcept {
    sum_ += nll;
    sum_sq_ += nll * nll;
    ++count_;
  }
  void add(const NllAccumulator& other) noexcept {
    sum_ += other.sum_;
    sum_sq_ += other.sum_sq_;
    count_ += other.count_;
  }

  int64_t count() const noexcept { return count_; }
  double mean() const noexcept;  // mean NLL (nats per token); 0 when empty
  // The standard error of mean(): sqrt((mean of squares - mean²) / (count - 1)); 0 with fewer than
  // two values or no spread.
  double mean_error() const noexcept;
  double ppl() const noexcept;        // exp(mean())
  double ppl_error() const noexcept;  // ppl() * mean_error(), to first order

 private:
  double sum_ = 0;
  double sum_sq_ = 0;
  int64_t count_ = 0;
};

}  // namespace ember::cli
