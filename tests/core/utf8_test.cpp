// UTF-8 validation against a straightforward decode-then-check reference, exhaustively for short
// inputs; decoding, encoding, repair and the incomplete tail a stream holds back.
#include <gtest/gtest.h>

#include <string>

#include "core/utf8.h"

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
  EXPECT_TRUE(utf8::is_valid(""));
  EXPECT_TRUE(utf8::is_valid("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(utf8::is_valid("\xE2\x96\x81the \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(utf8::is_valid("abc\xE2\x96"));       // truncated at the end
  EXPECT_EQ(utf8::error_offset("abcdefghij\x80xyz"), 10u);
  EXPECT_EQ(utf8::error_offset("ok"), 2u);
}

TEST(Utf8, ExhaustiveOneAndTwoBytes) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string s(1, static_cast<char>(a));
      if (b >= 0) s += static_cast<char>(b);
      ASSERT_EQ(utf8::is_valid(s), reference_valid(s)) << a << " " << b;
    }
  }
}

TEST(Utf8, ExhaustiveThreeBytesAndSampledFour) {
  for (int a = 0xC0; a < 256; ++a) {
    for (int b = 0x70; b < 0xD0; ++b) {
      for (int c = 0x70; c < 0xD0; ++c) {
        const std::string s = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        ASSERT_EQ(utf8::is_valid(s), reference_valid(s)) << a << " " << b << " " << c;
        // Inside a longer ASCII run too, so the 8-byte fast path hands over correctly.
        const std::string t = "0123456" + s + "89abcdef";
        ASSERT_EQ(utf8::is_valid(t), reference_valid(t));
        const std::string u = s + "\x80";  // a fourth byte
        ASSERT_EQ(utf8::is_valid(u), reference_valid(u));
      }
    }
  }
}

// The byte automaton (used to walk vocabularies byte by byte) accepts exactly the valid texts,
// and its state is 0 exactly at character boundaries.
bool automaton_valid(const std::string& s) {
  int state = 0;
  for (const char ch : s) {
    state = utf8::next_state(state, static_cast<unsigned char>(ch));
    if (state < 0) return false;
  }
  return state == 0;
}

TEST(Utf8, ByteAutomatonAgreesWithValidation) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string s(1, static_cast<char>(a));
      if (b >= 0) s += static_cast<char>(b);
      ASSERT_EQ(automaton_valid(s), reference_valid(s)) << a << " " << b;
    }
  }
  for (int a = 0xE0; a < 0xF8; ++a) {
    for (int b = 0x70; b < 0xD0; ++b) {
      for (int c = 0x70; c < 0xD0; ++c) {
        for (const int d : {-1, 0x41, 0x80, 0x8F, 0x90, 0xBF, 0xC0}) {
          std::string s = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
          if (d >= 0) s += static_cast<char>(d);
          ASSERT_EQ(automaton_valid(s), reference_valid(s)) << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

TEST(Utf8, DecodeAgreesWithValidationAndEncodeInvertsIt) {
  // Every code point round trips; surrogates and out-of-range values encode as U+FFFD.
  for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
    std::string s;
    utf8::append(s, cp);
    const utf8::Decoded d = utf8::decode(s, 0);
    if (cp >= 0xD800 && cp <= 0xDFFF) {
      ASSERT_EQ(d.code_point, utf8::kReplacement);
    } else {
      ASSERT_EQ(d.code_point, cp);
      ASSERT_EQ(d.length, s.size());
    }
  }
  std::string big;
  utf8::append(big, 0x110000);
  EXPECT_EQ(big, "\xEF\xBF\xBD");
  // An invalid byte decodes as U+FFFD spanning one byte, so a decode loop always advances.
  EXPECT_EQ(utf8::decode("\x80", 0).length, 1u);
  EXPECT_EQ(utf8::decode("\xE2\x96", 0).code_point, utf8::kReplacement);
}

TEST(Utf8, SanitizeReplacesEachInvalidByte) {
  EXPECT_EQ(utf8::sanitize("plain"), "plain");
  EXPECT_EQ(utf8::sanitize("a\x80"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::sanitize("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("ok \xE2\x96\x81 then \xE2\x96"), "ok \xE2\x96\x81 then \xEF\xBF\xBD\xEF\xBF\xBD");
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 3) {
      const std::string s = {'x', static_cast<char>(a), static_cast<char>(b), 'y', 'z', 'w', 'v', 'u', 't', 's'};
      ASSERT_TRUE(utf8::is_valid(utf8::sanitize(s))) << a << " " << b;
    }
  }
}

TEST(Utf8, IncompleteTailIsWhatAStreamHolds) {
  EXPECT_EQ(utf8::incomplete_tail(""), 0u);
  EXPECT_EQ(utf8::incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8::incomplete_tail("a\xE4"), 1u);          // lead of 中
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8"), 2u);      // two of its three bytes
  EXPECT_EQ(utf8::incomplete_tail("a\xE4\xB8\xAD"), 0u);  // complete
  EXPECT_EQ(utf8::incomplete_tail("\xF0\x9F\xA6"), 3u);   // three of 🦙's four
  EXPECT_EQ(utf8::incomplete_tail("\x80"), 0u);           // a stray continuation never completes
  EXPECT_EQ(utf8::incomplete_tail("\xE0\x80"), 0u);       // an overlong start never completes
}

}  // namespace
}  // namespace ember
