// TokenMask: one bit per vocabulary entry — the tokens a constraint allows next.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

namespace ember::grammar {

class TokenMask {
 public:
  TokenMask() = default;
  explicit TokenMask(int32_t n_vocab) { resize(n_vocab); }

  void resize(int32_t n_vocab) {
    n_vocab_ = n_vocab;
    words_.assign((static_cast<size_t>(n_vocab) + 63) / 64, 0);
  }
  void clear() { std::fill(words_.begin(), words_.end(), 0); }
  void set(int32_t token) { words_[static_cast<size_t>(token) >> 6] |= uint64_t{1} << (token & 63); }
  void reset(int32_t token) { words_[static_cast<size_t>(token) >> 6] &= ~(uint64_t{1} << (token & 63)); }
  bool test(int32_t token) const {
    return token >= 0 && token < n_vocab_ && ((words_[static_cast<size_t>(token) >> 6] >> (token & 63)) & 1) != 0;
  }
  // this |= other (same vocabulary).
  void merge(std::span<const uint64_t> other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] |= other[i];
  }
  int32_t count() const {
    int32_t n = 0;
    for (const uint64_t w : words_) n += std::popcount(w);
    return n;
  }
  // The lowest allowed token, -1 when none.
  int32_t first() const {
    for (size_t i = 0; i < words_.size(); ++i) {
      if (words_[i] != 0) return static_cast<int32_t>(i * 64) + std::countr_zero(words_[i]);
    }
    return -1;
  }
  int32_t n_vocab() const noexcept { return n_vocab_; }
  std::span<const uint64_t> words() const noexcept { return words_; }

 private:
  int32_t n_vocab_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace ember::grammar
