// Batch: one forward step's rows (DESIGN.md §2) — any mix of prefill chunks and decode tokens of
// several sequences, flattened: row i is token tokens[i] of sequence seq[i] at position pos[i], and
// logits[i] asks for that row's logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"

namespace ember {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;
  std::vector<SeqId> seq;
  std::vector<uint8_t> logits;  // 1: return this row's logits

  size_t size() const noexcept { return tokens.size(); }
  bool empty() const noexcept { return tokens.empty(); }
  void clear() noexcept {
    tokens.clear();
    pos.clear();
    seq.clear();
    logits.clear();
  }
  void add(int32_t token, int32_t position, SeqId sequence, bool want_logits) {
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(sequence);
    logits.push_back(want_logits ? 1 : 0);
  }
};

}  // namespace ember
