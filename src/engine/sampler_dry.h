// DRY ("don't repeat yourself", koboldcpp's and llama.cpp's semantics): penalizes the tokens that
// would extend a sequence already repeated in the recent history, more the longer the repeat.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ember/sampling.h"

namespace ember {

class Tokenizer;

// The token sequences that stand for the sequence-breaker strings: every token whose text holds
// a breaker is a one-token sequence; a token whose text ends with the beginning of a breaker is
// followed by the encoding of the breaker's rest (at most 20 tokens; breakers cut to 40 bytes).
std::vector<std::vector<int32_t>> dry_breaker_sequences(const Tokenizer& tokenizer,
                                                        std::span<const std::string> breakers);

class DryPenalty {
 public:
  // `breakers`: token sequences (dry_breaker_sequences, or crafted ones in tests); ids outside
  // [0, n_vocab) are ignored. Inactive (and free) when params.dry_multiplier is 0.
  DryPenalty(const SamplingParams& params, int32_t n_vocab, std::vector<std::vector<int32_t>> breakers);

  bool active() const noexcept { return active_; }

  // Makes compute() allocation-free for a window of `n` tokens (called as the history grows).
  void reserve(size_t n);

  // The penalties for the next token after `history` (oldest first; the look-back window is its
  // tail): (token, amount to subtract from its logit), each token once. Valid until the next call.
  std::span<const std::pair<int32_t, float>> compute(std::span<const int32_t> history);

 private:
  // How many of the newest tokens follow the most recent sequence breaker (all when none).
  int32_t repeat_limit(std::span<const int32_t> window) const noexcept;

  bool active_ = false;
  float multiplier_ = 0.0f;
  float base_ = 1.0f;
  int32_t allowed_length_ = 2;
  int32_t last_n_ = -1;
  int32_t max_exponent_ = 0;  // with base > 1: multiplier * base^max_exponent stays finite
  // Per vocabulary entry: bit 0 = a one-token breaker, bit 1 = the head of a longer breaker.
  std::vector<uint8_t> breaker_flags_;
  std::vector<std::pair<int32_t, std::vector<int32_t>>> tails_;  // head -> rest, sorted by head
  std::vector<int32_t> z_;                                       // the Z-function of the reversed window
  std::vector<int32_t> max_repeat_;  // per vocabulary entry: the longest repeat it would extend
  std::vector<std::pair<int32_t, float>> penalties_;
};

}  // namespace ember
