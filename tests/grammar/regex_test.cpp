// The regex front end: every supported construct accepted and rejected through the reference
// matcher, both modes (whole text; JSON string content with its escaped spellings), every refusal
// with its message and offset, and a few real-world patterns.
#include "grammar/regex.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/utf8.h"
#include "ember/error.h"
#include "grammar/reference_matcher.h"

namespace ember::grammar {
namespace {

using testing::reference_matches;

// A compiled pattern to ask about many texts.
class Pattern {
 public:
  Pattern(std::string_view pattern, RegexMode mode) {
    g_.set_root(g_.add_rule("root", regex_to_expr(g_, pattern, mode)));
  }
  bool matches(std::string_view text) const { return reference_matches(g_, text); }
  const Grammar& grammar() const { return g_; }

 private:
  Grammar g_;
};

Pattern whole(std::string_view pattern) { return Pattern(pattern, RegexMode::kWholeText); }
Pattern json(std::string_view pattern) { return Pattern(pattern, RegexMode::kJsonStringContent); }

void expect_all(const Pattern& p, std::initializer_list<std::string_view> accepted,
                std::initializer_list<std::string_view> rejected) {
  for (const std::string_view text : accepted) EXPECT_TRUE(p.matches(text)) << "should accept: " << text;
  for (const std::string_view text : rejected) EXPECT_FALSE(p.matches(text)) << "should reject: " << text;
}

// The error regex_to_expr throws, or "" when it accepts the pattern.
std::string pattern_error(std::string_view pattern, RegexMode mode = RegexMode::kWholeText) {
  try {
    Grammar g;
    regex_to_expr(g, pattern, mode);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

std::string expected_refusal(std::string_view message, size_t offset) {
  return fmt::format("regex: {} at offset {}", message, offset);
}

std::string utf8_of(uint32_t cp) {
  std::string s;
  utf8::append(s, static_cast<char32_t>(cp));
  return s;
}

// --- whole-text mode -------------------------------------------------------------------------

TEST(RegexWholeText, LiteralsAreAnchoredAtBothEnds) {
  expect_all(whole("abc"), {"abc"}, {"", "ab", "abcd", "xabc", "ABC"});
  expect_all(whole(""), {""}, {"a"});
  expect_all(whole("^abc$"), {"abc"}, {"xabc", "abcx"});
  expect_all(whole("a/b\"c'd e"), {"a/b\"c'd e"}, {"a/b"});
}

TEST(RegexWholeText, EscapesSpellOneCodePoint) {
  expect_all(whole(R"(\t\n\r\f\v)"), {"\t\n\r\f\v"}, {"tnrfv"});
  expect_all(whole(R"(a\0b)"), {std::string_view("a\0b", 3)}, {"a0b"});
  expect_all(whole(R"(\x41\u0042\u{43}\u{1F600}\cJ)"), {"ABC\U0001F600\n"}, {"ABC"});
  expect_all(whole(R"(\uD83D\uDE00)"), {"\U0001F600"}, {});  // a surrogate pair is one code point
  expect_all(whole(R"(\u00e9\u00E9)"), {"éé"}, {});
  expect_all(whole(R"(\/\\\.\-\*\+\?\(\)\[\]\{\}\|\^\$\"\#\ )"), {R"(/\.-*+?()[]{}|^$"# )"}, {});
  expect_all(whole(R"(a\$)"), {"a$"}, {"a"});
  expect_all(whole(R"(a\\$)"), {R"(a\)"}, {R"(a\$)"});  // an escaped backslash, then the anchor
}

TEST(RegexWholeText, ClassEscapesFollowEcmaScript) {
  expect_all(whole(R"(\d)"), {"0", "9"}, {"a", "٣", ""});  // ASCII digits only
  expect_all(whole(R"(\D)"), {"a", "٣", "\n"}, {"5"});
  expect_all(whole(R"(\w)"), {"a", "Z", "0", "_"}, {"-", "é", " "});
  expect_all(whole(R"(\W)"), {"-", "é", " "}, {"a", "_"});
  expect_all(whole(R"(\s)"),
             {" ", "\t", "\n", "\v", "\f", "\r", "\u00A0", "\u1680", "\u2000", "\u200A", "\u2028", "\u2029", "\u202F",
              "\u205F", "\u3000", "\uFEFF"},
             {"a", "\u200B", "\u0085", "\u1FFF"});
  expect_all(whole(R"(\S)"), {"a", "\u200B"}, {" ", "\u3000", "\n"});
}

TEST(RegexWholeText, CharacterClasses) {
  expect_all(whole("[a-cx]"), {"a", "b", "c", "x"}, {"d", "w", "", "ab"});
  expect_all(whole("[^a-c]"), {"d", "\n", "é", "\U0001F600"}, {"a", "c"});
  expect_all(whole(R"([\d_])"), {"5", "_"}, {"a"});
  expect_all(whole(R"([^\d\s])"), {"a"}, {"5", " "});
  expect_all(whole(R"([\D])"), {"a"}, {"5"});
  expect_all(whole(R"([\b])"), {"\b"}, {"b"});  // backspace inside a class
  expect_all(whole(R"([\]\\\-^])"), {"]", "\\", "-", "^"}, {"a"});
  expect_all(whole("[-a]"), {"-", "a"}, {"b"});
  expect_all(whole("[a-]"), {"-", "a"}, {"b"});
  expect_all(whole(R"([\w-.])"), {"a", "-", "."}, {"/", ","});  // next to \w the '-' is literal
  expect_all(whole(R"([.-\d])"), {".", "-", "5"}, {"/"});
  expect_all(whole("[[]"), {"["}, {"]"});
  expect_all(whole("[^]"), {"a", "\n", "\u2028", "\U0010FFFF"}, {"", "ab"});
  expect_all(whole("[α-ω]"), {"α", "λ", "ω"}, {"a", "Ω"});
  expect_all(whole(R"([\u0100-\u017F])"), {"\u0100", "ſ"}, {"\u00FF", "\u0180"});
  expect_all(whole(R"([\x00-\x1F])"), {std::string_view("\0", 1), "\x1F"}, {" "});
}

TEST(RegexWholeText, DotIsAnyCodePointButLineTerminators) {
  expect_all(whole("."), {"a", "\t", " ", "é", "\U0001F600", "\u2027", "\u202A"}, {"\n", "\r", "\u2028", "\u2029", ""});
  expect_all(whole("a.c"), {"abc", "a.c"}, {"ac", "a\nc"});
}

TEST(RegexWholeText, GroupsAndAlternation) {
  expect_all(whole("(a|b)c"), {"ac", "bc"}, {"c", "abc"});
  expect_all(whole("(?:ab)+"), {"ab", "abab"}, {"", "aba"});
  expect_all(whole(R"((?<year>\d{4})-(?<month>\d\d))"), {"2024-01"}, {"24-01"});
  expect_all(whole("a|bc|"), {"a", "bc", ""}, {"b", "abc"});
  expect_all(whole("x()y"), {"xy"}, {"x"});
  expect_all(whole("((a|b)(c|d))*"), {"", "ac", "bdad"}, {"a", "acb"});
  expect_all(whole("a|^b|c$"), {"a", "b", "c"}, {"ab"});
}

TEST(RegexWholeText, QuantifierBounds) {
  expect_all(whole("a{3}"), {"aaa"}, {"aa", "aaaa"});
  expect_all(whole("a{2,4}"), {"aa", "aaa", "aaaa"}, {"a", "aaaaa"});
  expect_all(whole("a{2,}"), {"aa", std::string(50, 'a')}, {"a"});
  expect_all(whole("a{0}b"), {"b"}, {"ab"});
  expect_all(whole("a?"), {"", "a"}, {"aa"});
  expect_all(whole("a*"), {"", "a", "aaaa"}, {"b"});
  expect_all(whole("a+"), {"a", "aaaa"}, {""});
  expect_all(whole("(ab){2,3}"), {"abab", "ababab"}, {"ab", "abababab", "aba"});
  expect_all(whole("xa*y"), {"xy", "xaay"}, {"xa"});  // the quantifier binds to one character
  expect_all(whole("[0-9]{7,15}"), {std::string(7, '1'), std::string(15, '1')},
             {std::string(6, '1'), std::string(16, '1')});
}

TEST(RegexWholeText, LazyQuantifiersMatchTheSameLanguage) {
  expect_all(whole("a*?"), {"", "aaa"}, {"b"});
  expect_all(whole("a+?"), {"a", "aa"}, {""});
  expect_all(whole("a??"), {"", "a"}, {"aa"});
  expect_all(whole("a{2,3}?"), {"aa", "aaa"}, {"a", "aaaa"});
  expect_all(whole("a{2,}?b"), {"aab", "aaaab"}, {"ab"});
}

TEST(RegexWholeText, BracesAndBracketsThatAreNoSyntaxAreLiterals) {
  expect_all(whole("a{"), {"a{"}, {"a"});
  expect_all(whole("a{b}"), {"a{b}"}, {});
  expect_all(whole("x}]"), {"x}]"}, {});
}

TEST(RegexWholeText, Utf8PatternsMatchCodePoints) {
  expect_all(whole("é+"), {"é", "ééé"}, {"e", "\xC3"});
  expect_all(whole("日本語?"), {"日本", "日本語"}, {"日"});
  expect_all(whole("[日本]{2}"), {"日本", "本本"}, {"日"});
  expect_all(whole("\U0001F600{2}"), {"\U0001F600\U0001F600"}, {"\U0001F600"});
}

TEST(RegexWholeText, RealWorldPatterns) {
  expect_all(whole(R"(^[\w.+-]+@[\w-]+\.[\w.-]+$)"), {"john.doe+x@mail-server.example.com", "a@b.c"},
             {"john@", "@x.com", "a b@c.d", "a@b"});
  expect_all(whole(R"(^\d{4}-\d{2}-\d{2}$)"), {"2024-01-31"}, {"2024-1-31", "20240-01-31", "2024-01-3a"});
  expect_all(whole(R"(^\+?[0-9]{7,15}$)"), {"+1234567", "1234567", "123456789012345"},
             {"123456", "1234567890123456", "++1234567"});
  expect_all(whole("^[A-Z]{3}$"), {"USD", "EUR"}, {"usd", "US", "USDX"});
  const std::string semver =
      R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))"
      R"((?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$)";
  expect_all(whole(semver), {"1.2.3", "0.0.0", "1.0.0-alpha.1", "1.0.0-rc.1+build.5", "10.20.30+x-y"},
             {"01.2.3", "1.2", "1.2.3-", "1.2.3-01", "v1.2.3"});
  expect_all(whole(R"(^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$)"), {"123e4567-e89b-12d3-a456-426614174000"},
             {"123e4567-e89b-12d3-a456-42661417400"});
}

TEST(RegexWholeText, RegexGrammarIsComplete) {
  const Grammar g = regex_grammar("a|b+");
  g.check_complete();
  EXPECT_EQ(g.rule(g.root()).name, "root");
  EXPECT_TRUE(reference_matches(g, "bbb"));
  EXPECT_FALSE(reference_matches(g, "ab"));
}

// --- refusals ----------------------------------------------------------------------------------

TEST(RegexRefusals, UnsupportedFeaturesAreRefusedWithTheirOffset) {
  EXPECT_EQ(pattern_error("a(?=b)"), expected_refusal("lookahead assertions are not supported", 1));
  EXPECT_EQ(pattern_error("(?!b)"), expected_refusal("lookahead assertions are not supported", 0));
  EXPECT_EQ(pattern_error("(?<=a)b"), expected_refusal("lookbehind assertions are not supported", 0));
  EXPECT_EQ(pattern_error("x(?<!a)b"), expected_refusal("lookbehind assertions are not supported", 1));
  EXPECT_EQ(pattern_error(R"((a)\1)"), expected_refusal("backreferences are not supported", 3));
  EXPECT_EQ(pattern_error(R"((?<n>a)\k<n>)"), expected_refusal("backreferences are not supported", 7));
  EXPECT_EQ(pattern_error(R"(\bfoo)"), expected_refusal(R"(word boundary assertions (\b, \B) are not supported)", 0));
  EXPECT_EQ(pattern_error(R"(a\B)"), expected_refusal(R"(word boundary assertions (\b, \B) are not supported)", 1));
  EXPECT_EQ(pattern_error(R"(\p{L})"), expected_refusal(R"(Unicode property escapes (\p{...}) are not supported)", 0));
  EXPECT_EQ(pattern_error(R"(a\P{L})"), expected_refusal(R"(Unicode property escapes (\p{...}) are not supported)", 1));
  EXPECT_EQ(pattern_error(R"([\p{L}])"),
            expected_refusal(R"(Unicode property escapes (\p{...}) are not supported)", 1));
  EXPECT_EQ(pattern_error("(?i)a"), expected_refusal("inline flags and other (? groups are not supported", 0));
  EXPECT_EQ(pattern_error("(?"), expected_refusal("inline flags and other (? groups are not supported", 0));
  EXPECT_EQ(pattern_error("(?<>a)"), expected_refusal("invalid group name", 0));
  EXPECT_EQ(pattern_error("(?<n a)"), expected_refusal("invalid group name", 0));
  EXPECT_EQ(pattern_error(R"(\01)"), expected_refusal("octal escapes are not supported", 0));
  EXPECT_EQ(pattern_error(R"([\1])"), expected_refusal("octal escapes are not supported", 1));
  EXPECT_EQ(pattern_error(R"(\q)"), expected_refusal(R"(unknown escape \q)", 0));
  EXPECT_EQ(pattern_error(R"(\A)"), expected_refusal(R"(unknown escape \A)", 0));
  EXPECT_EQ(pattern_error(R"([\z])"), expected_refusal(R"(unknown escape \z)", 1));
}

TEST(RegexRefusals, QuantifierErrors) {
  EXPECT_EQ(pattern_error("*a"), expected_refusal("nothing to repeat", 0));
  EXPECT_EQ(pattern_error("a|+"), expected_refusal("nothing to repeat", 2));
  EXPECT_EQ(pattern_error("(*)"), expected_refusal("nothing to repeat", 1));
  EXPECT_EQ(pattern_error("a++"), expected_refusal("nothing to repeat", 2));  // possessive
  EXPECT_EQ(pattern_error("a**"), expected_refusal("nothing to repeat", 2));
  EXPECT_EQ(pattern_error("a???"), expected_refusal("nothing to repeat", 3));
  EXPECT_EQ(pattern_error("a{2}{3}"), expected_refusal("nothing to repeat", 4));
  EXPECT_EQ(pattern_error("{2}"), expected_refusal("nothing to repeat", 0));
  EXPECT_EQ(pattern_error("^*"), expected_refusal("nothing to repeat", 1));
  EXPECT_EQ(pattern_error("a{3,2}"), expected_refusal("numbers out of order in {} quantifier", 1));
  EXPECT_EQ(pattern_error("a{,3}"), expected_refusal("a {,n} quantifier needs its minimum (write {0,n})", 1));
  EXPECT_EQ(pattern_error("a{2"), expected_refusal("incomplete quantifier", 1));
  EXPECT_EQ(pattern_error("a{2,x}"), expected_refusal("incomplete quantifier", 1));
  EXPECT_EQ(pattern_error("a{100001}"), expected_refusal("repetition count above 100000", 1));
  EXPECT_EQ(pattern_error("a{1,100001}"), expected_refusal("repetition count above 100000", 1));
  EXPECT_EQ(pattern_error("a{99999999999999999999}"), expected_refusal("repetition count above 100000", 1));
  EXPECT_EQ(pattern_error("a{100000}"), "");
  EXPECT_EQ(pattern_error("a{0,100000}"), "");
}

TEST(RegexRefusals, GroupsClassesAndEscapes) {
  EXPECT_EQ(pattern_error("(a"), expected_refusal("unterminated group", 0));
  EXPECT_EQ(pattern_error("x((a)"), expected_refusal("unterminated group", 1));
  EXPECT_EQ(pattern_error("a)"), expected_refusal("unmatched ')'", 1));
  EXPECT_EQ(pattern_error("(a))b"), expected_refusal("unmatched ')'", 3));
  EXPECT_EQ(pattern_error("[]"), expected_refusal("empty character class [] matches nothing", 0));
  EXPECT_EQ(pattern_error("a[^\\s\\S]"), expected_refusal("character class matches nothing", 1));
  EXPECT_EQ(pattern_error("[abc"), expected_refusal("unterminated character class", 0));
  EXPECT_EQ(pattern_error("x[a-"), expected_refusal("unterminated character class", 1));
  EXPECT_EQ(pattern_error("[^"), expected_refusal("unterminated character class", 0));
  EXPECT_EQ(pattern_error("[az-a]"), expected_refusal("range out of order in character class", 2));
  EXPECT_EQ(pattern_error(R"(\x4)"), expected_refusal(R"(invalid \x escape (two hex digits expected))", 0));
  EXPECT_EQ(pattern_error(R"(a\xG0)"), expected_refusal(R"(invalid \x escape (two hex digits expected))", 1));
  EXPECT_EQ(pattern_error(R"(\u12)"), expected_refusal(R"(invalid \u escape (four hex digits expected))", 0));
  EXPECT_EQ(pattern_error(R"(\u{})"), expected_refusal(R"(invalid \u{...} escape)", 0));
  EXPECT_EQ(pattern_error(R"(\u{41)"), expected_refusal(R"(invalid \u{...} escape)", 0));
  EXPECT_EQ(pattern_error(R"(\u{110000})"), expected_refusal(R"(\u{...} escape above U+10FFFF)", 0));
  EXPECT_EQ(pattern_error(R"(\uD800)"), expected_refusal("lone surrogate escapes are not supported", 0));
  EXPECT_EQ(pattern_error(R"(\uDE00\uD83D)"), expected_refusal("lone surrogate escapes are not supported", 0));
  EXPECT_EQ(pattern_error(R"(\u{D800})"), expected_refusal("lone surrogate escapes are not supported", 0));
  EXPECT_EQ(pattern_error(R"(\c1)"), expected_refusal(R"(invalid \c escape)", 0));
  EXPECT_EQ(pattern_error("a\\"), expected_refusal("pattern ends with a lone backslash", 1));
  EXPECT_EQ(pattern_error("[a\\"), expected_refusal("pattern ends with a lone backslash", 2));
}

TEST(RegexRefusals, AnchorsOnlyAtTheEndsOfTopLevelAlternatives) {
  const std::string_view message = "anchors are only supported at the start and end";
  EXPECT_EQ(pattern_error("a^b"), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("a$b"), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("^^a"), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("(^a)"), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("(a$)"), expected_refusal(message, 2));
  EXPECT_EQ(pattern_error("a$$"), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("$^"), expected_refusal(message, 0));
  EXPECT_EQ(pattern_error("a$*", RegexMode::kJsonStringContent), expected_refusal(message, 1));
  EXPECT_EQ(pattern_error("^a$|^b$", RegexMode::kJsonStringContent), "");
}

TEST(RegexRefusals, LimitsAndEncoding) {
  const std::string deep_ok = std::string(100, '(') + "a" + std::string(100, ')');
  EXPECT_EQ(pattern_error(deep_ok), "");
  const std::string too_deep = std::string(101, '(') + "a" + std::string(101, ')');
  EXPECT_EQ(pattern_error(too_deep), expected_refusal("groups nested deeper than 100", 100));
  EXPECT_EQ(pattern_error(std::string(64 * 1024, 'a')), "");
  EXPECT_EQ(pattern_error(std::string(64 * 1024 + 1, 'a')), expected_refusal("pattern longer than 65536 bytes", 65536));
  EXPECT_EQ(pattern_error("ab\xFF"), expected_refusal("invalid UTF-8", 2));
  EXPECT_EQ(pattern_error("a\xC3"), expected_refusal("invalid UTF-8", 1));
  EXPECT_EQ(pattern_error(std::string(5000, '(')), expected_refusal("groups nested deeper than 100", 100));
}

// --- JSON string content mode ----------------------------------------------------------------

TEST(RegexJsonString, CharactersAcceptEveryJsonSpelling) {
  expect_all(json(R"(^a"b$)"), {R"(a\"b)", R"(a\u0022b)", R"(\u0061\"\u0062)"}, {R"(a"b)", R"(a\\"b)", "ab"});
  expect_all(json(R"(^\\$)"), {R"(\\)", R"(\u005c)", R"(\u005C)"}, {R"(\)", R"(\\\\)"});
  expect_all(json(R"(^\n$)"), {R"(\n)", R"(\u000a)", R"(\u000A)"}, {"\n", R"(\r)", "n"});
  expect_all(json(R"(^\t\r\f[\b]$)"), {R"(\t\r\f\b)", R"(\u0009\u000D\u000c\u0008)"}, {"\t\r\f\b"});
  expect_all(json("^/$"), {"/", R"(\/)", R"(\u002F)", R"(\u002f)"}, {R"(\\/)"});
  expect_all(json(R"(^\x00\x1f$)"), {R"(\u0000\u001F)"}, {std::string_view("\0\x1F", 2)});
  expect_all(json("^az$"), {"az", R"(\u0061\u007a)", R"(a\u007A)"}, {R"(\a\z)", R"(\u0061\u007g)", R"(\U0061z)"});
  expect_all(json("^é$"), {"é", R"(\u00e9)", R"(\u00E9)"}, {R"(\u00e8)", "e"});
  expect_all(json("^\U0001F600$"), {"\U0001F600", R"(\ud83d\ude00)", R"(\uD83D\uDE00)", R"(\uD83D\ude00)"},
             {R"(\ud83d)", R"(\ude00)", R"(\ud83d\ude01)", R"(\u1F600)"});
  expect_all(json(R"(^\u2028$)"), {"\u2028", R"(\u2028)"}, {});
}

TEST(RegexJsonString, ClassesExcludeTheForbiddenRawCharacters) {
  expect_all(json(R"(^[^"]*$)"), {"", "abc", R"(\u0041\\)", R"(\n)", "é"}, {R"(\")", R"(\u0022)", R"(a"b)"});
  expect_all(json(R"(^[^\\]+$)"), {"a", R"(\")", R"(\/)"}, {R"(\\)", R"(\u005C)"});
  expect_all(json("^.+$"), {"a", R"(\t)", R"(\")", R"(\\)", R"(\/)", R"(\b)", R"(\f)"},
             {R"(\n)", R"(\r)", R"(\u000a)", R"(\u2028)", "\u2029", R"(\ud800)"});
  expect_all(json("^[^]$"), {R"(\n)", R"(\u000a)", "a"}, {"\n" /* raw controls are never JSON */});
  expect_all(json(R"(^\s$)"), {" ", R"(\t)", R"(\n)", R"(\u000b)", R"(\f)", R"(\r)", R"(\u3000)", "\u3000"},
             {"\t", "\n", R"(\u000e)", "a"});
}

// Membership of every code point's \uXXXX spellings (both cases) and raw spelling against an
// oracle: all of U+0000..U+02FF, every boundary of the interesting ranges ±1 and a stride over the
// rest of the BMP, surrogates included (their escapes alone must never pass).
TEST(RegexJsonString, UnicodeEscapesSpellExactlyTheClass) {
  const auto space = [](uint32_t c) {
    return (c >= 9 && c <= 13) || c == ' ' || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
  };
  const auto surrogate = [](uint32_t c) { return c >= 0xD800 && c <= 0xDFFF; };
  const std::vector<std::pair<std::string_view, std::function<bool(uint32_t)>>> cases = {
      {"^[a-z]$", [](uint32_t c) { return c >= 'a' && c <= 'z'; }},
      {R"(^\s$)", space},
      {R"(^\S$)", [&](uint32_t c) { return !space(c) && !surrogate(c); }},
      {"^.$", [&](uint32_t c) { return c != '\n' && c != '\r' && c != 0x2028 && c != 0x2029 && !surrogate(c); }},
      {R"(^[^"]$)", [&](uint32_t c) { return c != '"' && !surrogate(c); }},
      {R"(^\w$)", [](uint32_t c) { return (c < 128 && std::isalnum(static_cast<int>(c))) || c == '_'; }},
      {R"(^[\u00e9-\u2029\uFF00-\uFFFF]$)", [](uint32_t c) { return (c >= 0xE9 && c <= 0x2029) || c >= 0xFF00; }},
  };
  std::vector<uint32_t> probes;
  for (uint32_t c = 0; c < 0x300; ++c) probes.push_back(c);
  for (const uint32_t edge : {0x1680u, 0x2000u, 0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u, 0xD7FFu, 0xD800u,
                              0xDBFFu, 0xDC00u, 0xDFFFu, 0xE000u, 0xFEFFu, 0xFF00u, 0xFFFEu}) {
    probes.insert(probes.end(), {edge - 1, edge, edge + 1});
  }
  for (uint32_t c = 0x300; c <= 0xFFFF; c += 0x137) probes.push_back(c);
  probes.push_back(0xFFFF);
  for (const auto& [pattern, member] : cases) {
    const Pattern p = json(pattern);
    for (const uint32_t c : probes) {
      const bool in = member(c);
      EXPECT_EQ(p.matches(fmt::format("\\u{:04x}", c)), in) << pattern << " U+" << std::hex << c;
      EXPECT_EQ(p.matches(fmt::format("\\u{:04X}", c)), in) << pattern << " U+" << std::hex << c;
      if (!surrogate(c) && c >= 0x20 && c != '"' && c != '\\') {
        EXPECT_EQ(p.matches(utf8_of(c)), in) << pattern << " raw U+" << std::hex << c;
      }
    }
  }
}

TEST(RegexJsonString, CodePointsAboveTheBmpAsRawTextOrSurrogatePairs) {
  const auto pair = [](uint32_t c, bool upper) {
    const uint32_t v = c - 0x10000;
    return upper ? fmt::format("\\u{:04X}\\u{:04X}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                 : fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
  };
  const std::vector<std::pair<std::string_view, std::function<bool(uint32_t)>>> cases = {
      {R"(^[\u{1F600}-\u{1F64F}]$)", [](uint32_t c) { return c >= 0x1F600 && c <= 0x1F64F; }},
      {R"(^[\u{103FF}-\u{10800}\u{10FFFF}]$)",
       [](uint32_t c) { return (c >= 0x103FF && c <= 0x10800) || c == 0x10FFFF; }},
      {"^.$", [](uint32_t) { return true; }},
      {R"(^[^\u{20000}-\u{2FFFF}]$)", [](uint32_t c) { return c < 0x20000 || c > 0x2FFFF; }},
  };
  const std::vector<uint32_t> probes = {0x10000, 0x10001, 0x103FE, 0x103FF, 0x10400, 0x107FF,  0x10800,
                                        0x10801, 0x1F5FF, 0x1F600, 0x1F601, 0x1F63F, 0x1F64F,  0x1F650,
                                        0x1FFFF, 0x20000, 0x2ABCD, 0x2FFFF, 0x30000, 0x10FFFE, 0x10FFFF};
  for (const auto& [pattern, member] : cases) {
    const Pattern p = json(pattern);
    for (const uint32_t c : probes) {
      EXPECT_EQ(p.matches(utf8_of(c)), member(c)) << pattern << " raw U+" << std::hex << c;
      EXPECT_EQ(p.matches(pair(c, false)), member(c)) << pattern << " U+" << std::hex << c;
      EXPECT_EQ(p.matches(pair(c, true)), member(c)) << pattern << " U+" << std::hex << c;
    }
  }
}

TEST(RegexJsonString, UnanchoredEndsAllowAnyContent) {
  expect_all(json("ab"), {"ab", "xxabyy", R"(\"ab\n)", R"(\u0061b)", "é ab \U0001F600"},
             {"", "a b", R"(x"ab)", R"(ab\)", "ab\n"});
  expect_all(json("^ab"), {"ab", "abxx", R"(ab\u0000)"}, {"xab"});
  expect_all(json("ab$"), {"ab", "xxab"}, {"abx"});
  expect_all(json("^ab$"), {"ab"}, {"xab", "abx"});
  expect_all(json(""), {"", "x", R"(\u0000\ud800)", R"(\"\\)"}, {"\"", "\\", "\x01"});
  expect_all(json("^a|b$"), {"a", "axx", "b", "xxb"}, {"xax", "bx"});
  expect_all(json(R"(^\d+$|^none$)"), {"123", "none"}, {"12a", "nonex"});
}

TEST(RegexJsonString, RealWorldPatterns) {
  expect_all(json(R"(^[\w.+-]+@[\w-]+\.[\w.-]+$)"), {"john.doe+x@mail.example.com", R"(a\u0040b.c)"},
             {"john@", R"(a\"b@c.d)"});
  expect_all(json(R"(^\d{4}-\d{2}-\d{2}$)"), {"2024-01-31", R"(2024\u002d01-31)"}, {"2024-1-31"});
  expect_all(json(R"(^\+?[0-9]{7,15}$)"), {"+1234567", "123456789012345"}, {"123456", "1234567890123456"});
  expect_all(json("^[A-Z]{3}$"), {"USD", R"(\u0055SD)"}, {"usd", "USDX", R"(\u0075SD)"});
  expect_all(json(R"(^(https?)://[^\s/$.?#].[^\s]*$)"), {"https://example.com/a?b=1", R"(http:\/\/x.y)"},
             {"ftp://x.y", "https:// x"});
  expect_all(json("[0-9]"), {"abc1def"}, {"abcdef"});
}

// Expressions reachable from `root` (each counted once: the IR is a DAG), rules not followed.
int live_size(const Grammar& g, ExprId root) {
  std::set<ExprId> seen;
  std::vector<ExprId> todo = {root};
  while (!todo.empty()) {
    const ExprId id = todo.back();
    todo.pop_back();
    if (!seen.insert(id).second) continue;
    for (const ExprId child : g.expr(id).children) todo.push_back(child);
  }
  return static_cast<int>(seen.size());
}

TEST(RegexJsonString, ClassGrammarsStaySmall) {
  const auto size_of = [](std::string_view pattern) {
    Grammar g;
    return live_size(g, regex_to_expr(g, pattern, RegexMode::kJsonStringContent));
  };
  EXPECT_LE(size_of("^a$"), 3);  // "a" | "\\u0061"
  EXPECT_LE(size_of("^.$"), 50);
  EXPECT_LE(size_of(R"(^[^"]$)"), 40);
  EXPECT_LE(size_of(R"(^\s$)"), 40);
  EXPECT_LE(size_of(R"(^[\u0000-\uFFFF]$)"), 20);
  EXPECT_EQ(size_of("^.....$"), size_of("^.$") + 1);  // a set used again is built once
}

TEST(RegexJsonString, JsonCharRuleIsDefinedOnceAndInlinable) {
  Grammar g;
  const ExprId a = json_string_char(g);
  const ExprId b = json_string_char(g);
  ASSERT_EQ(g.expr(a).kind, ExprKind::kRef);
  EXPECT_EQ(g.expr(a).rule, g.expr(b).rule);
  const Rule& rule = g.rule(g.expr(a).rule);
  EXPECT_EQ(rule.name, "json-char");
  EXPECT_FALSE(rule.shared);  // kept as a frame of its own, it would end after every character
  EXPECT_EQ(g.rule_count(), 1);
  g.set_root(g.add_rule("root", g.star(a)));
  for (const std::string_view ok : {"x", "é", R"(\")", R"(\\)", R"(\/)", R"(\b\f\n\r\t)", R"(\u12aF)", R"(\ud800)"}) {
    EXPECT_TRUE(reference_matches(g, ok)) << ok;
  }
  for (const std::string_view bad : {"\"", "\\", R"(\x)", R"(\u12)", R"(\U1234)", "\x01", "\n"}) {
    EXPECT_FALSE(reference_matches(g, bad)) << bad;
  }
}

}  // namespace
}  // namespace ember::grammar
