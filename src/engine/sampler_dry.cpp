// DRY: sequence breakers from text, then per token the longest repeat it would extend (a
// Z-function over the reversed look-back window, linear in its length).
#include "engine/sampler_dry.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

constexpr size_t kMaxBreakerBytes = 40;
constexpr size_t kMaxBreakerTail = 20;
constexpr uint8_t kOneTokenBreaker = 1;
constexpr uint8_t kBreakerHead = 2;

}  // namespace

std::vector<std::vector<int32_t>> dry_breaker_sequences(const Tokenizer& tokenizer,
                                                        std::span<const std::string> breakers) {
  std::vector<std::vector<int32_t>> sequences;
  const int32_t n_vocab = tokenizer.vocab().size();
  std::string piece;
  for (const std::string& full : breakers) {
    if (full.empty()) continue;
    const std::string breaker = full.substr(0, kMaxBreakerBytes);
    for (int32_t id = 0; id < n_vocab; ++id) {
      piece.clear();
      tokenizer.append_piece(id, /*render_special=*/true, piece);
      if (piece.find(breaker) != std::string::npos) {
        sequences.push_back({id});
        continue;
      }
      // The token's text ends with the breaker's first bytes: the breaker is this token followed
      // by the tokens of its rest.
      for (size_t pos = piece.find(breaker[0]); pos != std::string::npos; pos = piece.find(breaker[0], pos + 1)) {
        const size_t overlap = piece.size() - pos;  // < breaker.size(): the piece does not hold it
        if (piece.compare(pos, overlap, breaker, 0, overlap) != 0) continue;
        std::vector<TokenId> rest = tokenizer.encode(std::string_view(breaker).substr(overlap),
                                                     EncodeOptions{.add_special = false, .parse_special = false});
        const size_t tail = std::min(rest.size(), kMaxBreakerTail);
        std::vector<int32_t> sequence(tail + 1, id);
        std::copy_n(rest.begin(), tail, sequence.begin() + 1);
        sequences.push_back(std::move(sequence));
      }
    }
  }
  std::sort(sequences.begin(), sequences.end());
  sequences.erase(std::unique(sequences.begin(), sequences.end()), sequences.end());
  return sequences;
}

DryPenalty::DryPenalty(const SamplingParams& params, int32_t n_vocab, std::vector<std::vector<int32_t>> breakers)
    : active_(params.dry_multiplier != 0.0f && params.dry_penalty_last_n != 0),
      multiplier_(params.dry_multiplier),
      base_(params.dry_base),
      allowed_length_(params.dry_allowed_length),
      last_n_(params.dry_penalty_last_n) {
  if (!active_) return;
  // Clamp the exponent where base^exponent or multiplier * base^exponent would pass float's range:
  // the penalty of a very long repeat saturates (finite, so a greedy argmax never meets NaN).
  if (base_ > 1.0f) {
    const double room = std::log(static_cast<double>(FLT_MAX)) - std::max(0.0, std::log(double{multiplier_}));
    max_exponent_ = static_cast<int32_t>(std::min(room / std::log(double{base_}), double{INT32_MAX}));
  }
  breaker_flags_.assign(static_cast<size_t>(n_vocab), 0);
  max_repeat_.assign(static_cast<size_t>(n_vocab), 0);
  for (std::vector<int32_t>& sequence : breakers) {
    if (sequence.empty() || std::ranges::any_of(sequence, [n_vocab](int32_t t) { return t < 0 || t >= n_vocab; })) {
      continue;
    }
    const int32_t head = sequence.front();
    if (sequence.size() == 1) {
      breaker_flags_[static_cast<size_t>(head)] |= kOneTokenBreaker;
    } else {
      breaker_flags_[static_cast<size_t>(head)] |= kBreakerHead;
      tails_.emplace_back(head, std::vector<int32_t>(sequence.begin() + 1, sequence.end()));
    }
  }
  std::sort(tails_.begin(), tails_.end());
}

void DryPenalty::reserve(size_t n) {
  if (!active_) return;
  z_.reserve(n);
  penalties_.reserve(n);
}

int32_t DryPenalty::repeat_limit(std::span<const int32_t> window) const noexcept {
  const auto n = static_cast<int32_t>(window.size());
  // back(i): the token i places before the newest (back(0) is the newest).
  const auto back = [&](int32_t i) { return window[static_cast<size_t>(n - 1 - i)]; };
  for (int32_t i = 0; i < n; ++i) {
    const int32_t token = back(i);
    const uint8_t flags = breaker_flags_[static_cast<size_t>(token)];
    if (flags == 0) continue;
    int32_t longest = (flags & kOneTokenBreaker) != 0 ? 0 : -1;
    if ((flags & kBreakerHead) != 0) {
      const auto first = std::lower_bound(tails_.begin(), tails_.end(), token,
                                          [](const auto& entry, int32_t head) { return entry.first < head; });
      for (auto it = first; it != tails_.end() && it->first == token; ++it) {
        const auto length = static_cast<int32_t>(it->second.size());
        if (length <= longest || length > i) continue;  // the rest must lie within the window
        bool match = true;
        for (int32_t k = 0; k < length && match; ++k) match = it->second[static_cast<size_t>(k)] == back(i - 1 - k);
        if (match) longest = length;
      }
    }
    if (longest >= 0) return i - longest;  // the newest breaker: repeats cannot reach past it
  }
  return n;
}

std::span<const std::pair<int32_t, float>> DryPenalty::compute(std::span<const int32_t> history) {
  penalties_.clear();
  if (!active_) return {};
  const size_t window_size = last_n_ < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(last_n_));
  const auto n = static_cast<int32_t>(window_size);
  if (n <= allowed_length_) return {};
  const std::span<const int32_t> window = history.last(window_size);
  const int32_t limit = repeat_limit(window);
  if (limit < allowed_length_) return {};

  // s = the window reversed (s[0] is the newest token). z[k] = the longest common prefix of s and
  // s[k..]: the tokens ending k places before the newest repeat the newest z[k] tokens, so the
  // token that followed them, s[k - 1], would extend that repeat by one.
  const auto s = [&](int32_t m) { return window[static_cast<size_t>(n - 1 - m)]; };
  z_.resize(window_size);
  int32_t left = 0, right = 0;  // the rightmost match [left, right) found so far
  for (int32_t k = 1; k < n; ++k) {
    int32_t z = k < right ? std::min(right - k, z_[static_cast<size_t>(k - left)]) : 0;
    while (k + z < n && s(z) == s(k + z)) ++z;
    if (k + z > right) left = k, right = k + z;
    z_[static_cast<size_t>(k)] = z;
  }
  const int32_t min_length = std::max(allowed_length_, 1);  // a repeat of nothing is no repeat
  for (int32_t k = 1; k < n; ++k) {
    const int32_t length = std::min(z_[static_cast<size_t>(k)], limit);
    if (length < min_length) continue;
    const int32_t token = s(k - 1);
    int32_t& best = max_repeat_[static_cast<size_t>(token)];
    if (best == 0) penalties_.emplace_back(token, 0.0f);
    best = std::max(best, length);
  }
  size_t kept = 0;
  for (size_t i = 0; i < penalties_.size(); ++i) {
    const int32_t token = penalties_[i].first;
    int32_t& length = max_repeat_[static_cast<size_t>(token)];
    int32_t exponent = length - allowed_length_;
    length = 0;                                                                          // ready for the next call
    if ((breaker_flags_[static_cast<size_t>(token)] & kOneTokenBreaker) != 0) continue;  // breakers go free
    if (base_ > 1.0f) exponent = std::min(exponent, max_exponent_);
    // min: rounding at the clamp could still reach inf.
    penalties_[kept++] = {token, std::min(multiplier_ * std::pow(base_, static_cast<float>(exponent)), FLT_MAX)};
  }
  penalties_.resize(kept);
  return penalties_;
}

}  // namespace ember
