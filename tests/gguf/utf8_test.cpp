// UTF-8 validation against a straightforward decode-then-check reference, exhaustively for short inputs.
#include <gtest/gtest.h>

#include <string>

#include "gguf/utf8.h"

namespace ember {
namespace {

// Reference: decode by the textbook rules, then reject overlongs, surrogates and > U+10FFFF.
bool reference_valid(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len;
    uint32_t cp;
    if (c < 0x80)
      len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

TEST(Utf8, KnownCases) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\xE2\x96\x81the \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xE2\x96"));       // truncated at the end
  EXPECT_EQ(utf8_error_offset("abcdefghij\x80xyz"), 10u);
  EXPECT_EQ(utf8_error_offset("ok"), 2u);
}

TEST(Utf8, ExhaustiveOneAndTwoBytes) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string s(1, static_cast<char>(a));
      if (b >= 0) s += static_cast<char>(b);
      ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b;
    }
  }
}

TEST(Utf8, ExhaustiveThreeBytesAndSampledFour) {
  for (int a = 0xC0; a < 256; ++a) {
    for (int b = 0x70; b < 0xD0; ++b) {
      for (int c = 0x70; c < 0xD0; ++c) {
        const std::string s = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c;
        // Inside a longer ASCII run too, so the 8-byte fast path hands over correctly.
        const std::string t = "0123456" + s + "89abcdef";
        ASSERT_EQ(is_valid_utf8(t), reference_valid(t));
        const std::string u = s + "\x80";  // a fourth byte
        ASSERT_EQ(is_valid_utf8(u), reference_valid(u));
      }
    }
  }
}

}  // namespace
}  // namespace ember
