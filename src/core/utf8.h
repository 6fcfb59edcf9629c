// UTF-8 per RFC 3629 (shortest forms only, no surrogates, nothing above U+10FFFF): validation for
// the GGUF reader and writer; decoding one code point at a time (an invalid byte is U+FFFD, never a
// crash), encoding and repair of invalid text for the tokenizers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ember::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// The code point starting at text[pos] and the bytes it spans. An invalid or truncated sequence
// (stray continuation byte, overlong form, surrogate, > U+10FFFF) is U+FFFD spanning one byte, so a
// loop over decode() always advances.
struct Decoded {
  char32_t code_point;
  size_t length;
};
Decoded decode(std::string_view text, size_t pos) noexcept;

void append(std::string& out, char32_t code_point);

// Byte offset of the first ill-formed sequence, or text.size() when the whole text is valid.
size_t error_offset(std::string_view text) noexcept;

bool is_valid(std::string_view text) noexcept;

// `text` with every invalid byte (as decode() sees them) replaced by U+FFFD; valid text unchanged.
std::string sanitize(std::string_view text);

// Bytes at the end of `text` that begin a well-formed but incomplete sequence (0..3): what a
// streaming decoder must hold back until the next bytes arrive.
size_t incomplete_tail(std::string_view text) noexcept;

// Well-formed UTF-8 as a byte automaton: state 0 is a character boundary; 1-3 await that many
// continuation bytes; 4-7 await the restricted second byte after E0, ED, F0 and F4. The next state
// after `byte`, or -1 when the byte makes the text ill-formed.
inline constexpr int kAutomatonStates = 8;
namespace detail {
constexpr int next_state_slow(int state, unsigned byte) {
  const bool cont = byte >= 0x80 && byte <= 0xBF;
  switch (state) {
    case 0:
      if (byte < 0x80) return 0;
      if (byte >= 0xC2 && byte <= 0xDF) return 1;
      if (byte == 0xE0) return 4;
      if (byte == 0xED) return 5;
      if (byte >= 0xE1 && byte <= 0xEF) return 2;
      if (byte == 0xF0) return 6;
      if (byte >= 0xF1 && byte <= 0xF3) return 3;
      if (byte == 0xF4) return 7;
      return -1;
    case 1: return cont ? 0 : -1;
    case 2: return cont ? 1 : -1;
    case 3: return cont ? 2 : -1;
    case 4: return byte >= 0xA0 && byte <= 0xBF ? 1 : -1;   // after E0: no overlong forms
    case 5: return byte >= 0x80 && byte <= 0x9F ? 1 : -1;   // after ED: no surrogates
    case 6: return byte >= 0x90 && byte <= 0xBF ? 2 : -1;   // after F0: no overlong forms
    default: return byte >= 0x80 && byte <= 0x8F ? 2 : -1;  // after F4: nothing past U+10FFFF
  }
}
struct NextStateTable {
  signed char next[kAutomatonStates][256];
  constexpr NextStateTable() : next{} {
    for (int s = 0; s < kAutomatonStates; ++s) {
      for (unsigned b = 0; b < 256; ++b) next[s][b] = static_cast<signed char>(next_state_slow(s, b));
    }
  }
};
inline constexpr NextStateTable kNextState{};
}  // namespace detail
inline int next_state(int state, unsigned char byte) noexcept { return detail::kNextState.next[state][byte]; }

}  // namespace ember::utf8
