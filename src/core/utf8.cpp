// UTF-8 validation (with an ASCII fast path: vocabularies and prompts are mostly ASCII), decoding
// and encoding per RFC 3629.
#include "core/utf8.h"

#include <cstdint>
#include <cstring>

namespace ember::utf8 {
namespace {

// Sequence length a lead byte announces, 0 for bytes that cannot start one.
size_t lead_length(unsigned char lead) noexcept {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte, or the overlong leads C0 / C1
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

bool is_continuation(unsigned char byte) noexcept { return (byte & 0xC0) == 0x80; }

// The allowed range of the second byte (the first continuation) for a lead byte: it rules out
// overlong 3- and 4-byte forms, surrogates and code points above U+10FFFF.
bool second_byte_ok(unsigned char lead, unsigned char second) noexcept {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return is_continuation(second);
  }
}

}  // namespace

Decoded decode(std::string_view text, size_t pos) noexcept {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t length = lead_length(lead);
  if (length == 1) return {lead, 1};
  if (length == 0 || pos + length > text.size()) return {kReplacement, 1};
  if (!second_byte_ok(lead, static_cast<unsigned char>(text[pos + 1]))) return {kReplacement, 1};
  char32_t cp = lead & (0xFF >> (length + 1));
  for (size_t i = 1; i < length; ++i) {
    const auto byte = static_cast<unsigned char>(text[pos + i]);
    if (!is_continuation(byte)) return {kReplacement, 1};
    cp = (cp << 6) | (byte & 0x3F);
  }
  return {cp, length};
}

void append(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t error_offset(std::string_view text) noexcept {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Skip 8 ASCII bytes at a time.
    if (i + 8 <= n) {
      uint64_t chunk;
      std::memcpy(&chunk, text.data() + i, 8);
      if ((chunk & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const Decoded d = decode(text, i);
    if (d.code_point == kReplacement && d.length == 1) return i;
    i += d.length;
  }
  return n;
}

bool is_valid(std::string_view text) noexcept { return error_offset(text) == text.size(); }

std::string sanitize(std::string_view text) {
  size_t bad = error_offset(text);
  if (bad == text.size()) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  size_t pos = 0;
  while (bad < text.size()) {
    out.append(text.substr(pos, bad - pos));
    append(out, kReplacement);  // one per invalid byte, as decode() sees them
    pos = bad + 1;
    bad = pos + error_offset(text.substr(pos));
  }
  out.append(text.substr(pos));
  return out;
}

size_t incomplete_tail(std::string_view text) noexcept {
  // A sequence is at most 4 bytes, so an incomplete one starts within the last 3.
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto byte = static_cast<unsigned char>(text[n - back]);
    if (is_continuation(byte)) continue;
    const size_t length = lead_length(byte);
    if (length <= back) return 0;  // ASCII, invalid lead, or a complete sequence
    if (back >= 2 && !second_byte_ok(byte, static_cast<unsigned char>(text[n - back + 1]))) return 0;
    return back;
  }
  return 0;
}

}  // namespace ember::utf8
