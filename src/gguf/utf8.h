// Strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <string_view>

namespace ember {

// True when `text` is well-formed UTF-8.
bool is_valid_utf8(std::string_view text) noexcept;

// Byte offset of the first ill-formed sequence, or text.size() when the whole text is valid.
size_t utf8_error_offset(std::string_view text) noexcept;

}  // namespace ember
