// Splits a code-point range until every byte position of its encodings spans a full byte range.
#include "grammar/utf8_ranges.h"

#include <array>

#include "core/check.h"

namespace ember::grammar {
namespace {

int encoded_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

std::array<uint8_t, 4> encode(uint32_t cp, int length) {
  switch (length) {
    case 1: return {static_cast<uint8_t>(cp), 0, 0, 0};
    case 2: return {static_cast<uint8_t>(0xC0 | (cp >> 6)), static_cast<uint8_t>(0x80 | (cp & 0x3F)), 0, 0};
    case 3:
      return {static_cast<uint8_t>(0xE0 | (cp >> 12)), static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
              static_cast<uint8_t>(0x80 | (cp & 0x3F)), 0};
    default:
      return {static_cast<uint8_t>(0xF0 | (cp >> 18)), static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
              static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)), static_cast<uint8_t>(0x80 | (cp & 0x3F))};
  }
}

// [first, last] share one encoded length.
void split_same_length(uint32_t first, uint32_t last, std::vector<ByteRangeSequence>& out) {
  const int length = encoded_length(first);
  // Where first and last differ above the low i continuation bytes, the range must start at a
  // multiple of 64^i and end just before one, or be split there.
  for (int i = 1; i < length; ++i) {
    const uint32_t low_mask = (1u << (6 * i)) - 1;
    if ((first & ~low_mask) != (last & ~low_mask)) {
      if ((first & low_mask) != 0) {
        split_same_length(first, first | low_mask, out);
        split_same_length((first | low_mask) + 1, last, out);
        return;
      }
      if ((last & low_mask) != low_mask) {
        split_same_length(first, (last & ~low_mask) - 1, out);
        split_same_length(last & ~low_mask, last, out);
        return;
      }
    }
  }
  const auto a = encode(first, length);
  const auto b = encode(last, length);
  ByteRangeSequence seq;
  for (int k = 0; k < length; ++k) seq.push_back({a[static_cast<size_t>(k)], b[static_cast<size_t>(k)]});
  out.push_back(std::move(seq));
}

}  // namespace

void utf8_sequences(CodepointRange range, std::vector<ByteRangeSequence>& out) {
  EMBER_CHECK(range.first <= range.last && range.last <= kMaxCodepoint);
  static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodepoint};
  uint32_t first = range.first;
  for (const uint32_t end : kLengthEnds) {
    if (first > range.last) break;
    if (first > end) continue;
    const uint32_t last = range.last < end ? range.last : end;
    split_same_length(first, last, out);
    first = last + 1;
  }
}

}  // namespace ember::grammar
