// escape_text / one_line_text / quote_text (see text_escape.h).
#include "core/text_escape.h"

#include <cstdint>

#include <fmt/format.h>

#include "core/utf8.h"

namespace ember {
namespace {

std::string escape(std::string_view text, bool quotes_and_backslashes) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\': out += quotes_and_backslashes ? "\\\\" : "\\"; break;
        case '"': out += quotes_and_backslashes ? "\\\"" : "\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const utf8::Decoded d = utf8::decode(text, i);
    const char32_t cp = d.code_point;
    if (d.length == 1) {  // ill-formed (a well-formed U+FFFD spans three bytes)
      out += fmt::format("\\x{:02x}", c);
    } else if (cp <= 0x9F || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
               (cp >= 0x2066 && cp <= 0x2069)) {
      // C1 controls, line separators and bidirectional overrides (which could reorder how a line
      // of hostile metadata displays in a terminal).
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
    } else {
      out.append(text.substr(i, d.length));
    }
    i += d.length;
  }
  return out;
}

}  // namespace

std::string escape_text(std::string_view text) { return escape(text, true); }

std::string one_line_text(std::string_view text) { return escape(text, false); }

std::string quote_text(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return fmt::format("\"{}\"", escape_text(text));
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // character boundary
  return fmt::format("\"{}\"… ({} bytes)", escape_text(text.substr(0, cut)), text.size());
}

}  // namespace ember
