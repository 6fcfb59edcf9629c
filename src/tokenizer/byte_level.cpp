// The byte-level alphabet's two tables, built once.
#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"

namespace ember::byte_level {
namespace {

bool stands_for_itself(int byte) {
  return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
}

struct Tables {
  std::array<std::string, 256> chars;
  std::array<int16_t, 512> byte_of_code_point;  // every stand-in is below U+0200; -1 elsewhere

  Tables() {
    byte_of_code_point.fill(-1);
    char32_t next_extra = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const char32_t cp = stands_for_itself(byte) ? static_cast<char32_t>(byte) : next_extra++;
      utf8::append(chars[static_cast<size_t>(byte)], cp);
      byte_of_code_point[cp] = static_cast<int16_t>(byte);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view char_of(uint8_t byte) noexcept { return tables().chars[byte]; }

void encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  for (unsigned char byte : bytes) out += t.chars[byte];
}

bool decode(std::string_view text, std::string& out) {
  const Tables& t = tables();
  const size_t mark = out.size();
  for (size_t pos = 0; pos < text.size();) {
    const utf8::Decoded d = utf8::decode(text, pos);
    // (An invalid byte decodes as U+FFFD, which is outside the table.)
    if (d.code_point >= t.byte_of_code_point.size() || t.byte_of_code_point[d.code_point] < 0) {
      out.resize(mark);
      return false;
    }
    out += static_cast<char>(t.byte_of_code_point[d.code_point]);
    pos += d.length;
  }
  return true;
}

}  // namespace ember::byte_level
