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

}  // namespace ember::utf8
