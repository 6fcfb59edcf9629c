// Code-point ranges as UTF-8 byte-range sequences (the range splitting of RE2 and Rust's
// utf8-ranges): [U+0080, U+07FF] is the one sequence [C2-DF][80-BF], and any range becomes a few
// such sequences, each matching exactly the encodings of its code points.
#pragma once

#include <cstdint>
#include <vector>

#include "grammar/grammar_ir.h"

namespace ember::grammar {

struct ByteRange {
  uint8_t first = 0;
  uint8_t last = 0;
};

// One sequence: a code point's encoding has one byte in each range, in order (1 to 4 ranges).
using ByteRangeSequence = std::vector<ByteRange>;

// The sequences whose union is exactly the UTF-8 encodings of [range.first, range.last] (which
// holds no surrogates). Appends to `out`.
void utf8_sequences(CodepointRange range, std::vector<ByteRangeSequence>& out);

}  // namespace ember::grammar
