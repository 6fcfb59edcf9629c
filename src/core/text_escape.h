// Text shown to people on one line (errors, tables, log-like output): control characters, line
// separators, bidirectional overrides and ill-formed UTF-8 escaped, long strings cut.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ember {

// `text` with backslash, quote, \n, \r, \t escaped and other control characters (C0, DEL, C1,
// U+2028/U+2029) and ill-formed UTF-8 bytes written as \xNN or \uNNNN: the result is one line.
std::string escape_text(std::string_view text);
// `text` on one line for a message: as escape_text() but keeping backslashes and quotes as they
// are (messages quote the values they name themselves, and `\"gpt2\"` reads worse than "gpt2").
std::string one_line_text(std::string_view text);

// A quoted, escaped string, cut at a character boundary after `max_bytes` with "… (N bytes)".
std::string quote_text(std::string_view text, size_t max_bytes);

}  // namespace ember
