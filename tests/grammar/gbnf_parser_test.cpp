// The GBNF parser: every construct accepted and rejected through the reference matcher, exact
// "grammar:LINE:COL: message" errors, the limits, real-shaped grammars (JSON, arithmetic) and the
// printer round trip.
#include "grammar/gbnf_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ember/error.h"
#include "grammar/reference_matcher.h"

namespace ember::grammar {
namespace {

using testing::reference_matches;

// The message of the error parsing `gbnf` throws, or "(no error)".
std::string error_of(std::string_view gbnf, std::string_view root = "root") {
  try {
    parse_gbnf(gbnf, root);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "(no error)";
}

// Parses `gbnf` and checks that its language holds every `accepted` text and no `rejected` one.
void expect_language(std::string_view gbnf, const std::vector<std::string>& accepted,
                     const std::vector<std::string>& rejected) {
  SCOPED_TRACE(std::string("grammar:\n") + std::string(gbnf));
  const Grammar g = parse_gbnf(gbnf);
  for (const std::string& text : accepted) EXPECT_TRUE(reference_matches(g, text)) << "should accept: " << text;
  for (const std::string& text : rejected) EXPECT_FALSE(reference_matches(g, text)) << "should reject: " << text;
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Our copy of the shape of llama.cpp's grammars/json.gbnf (a JSON object, bounded whitespace).
constexpr std::string_view kJsonGrammar = R"gbnf(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9]{1,3})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)gbnf";

// The shape of llama.cpp's grammars/arithmetic.gbnf: lines of `expression = term`.
constexpr std::string_view kArithmeticGrammar = R"gbnf(
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)gbnf";

// --- constructs ---------------------------------------------------------------------------------

TEST(GbnfParser, LiteralsClassesAndRulesInSequence) {
  expect_language(R"(root ::= "ab" "c" [x-z] tail
tail ::= "d")",
                  {"abcxd", "abczd"}, {"", "ab", "abcd", "abcxdd", "abxcd", "abcwd"});
  expect_language(R"(root ::= "x""y"z
z ::= "z")",
                  {"xyz"}, {"xy", "x y z"});
}

TEST(GbnfParser, AlternativesIncludingAnEmptyOne) {
  expect_language(R"(root ::= "x" sp "y" | "z"
sp ::= | " " | "  ")",
                  {"xy", "x y", "x  y", "z"}, {"x   y", "xz", "", "zz"});
  expect_language(R"(root ::= "a" | "" | "bc")", {"", "a", "bc"}, {"b", "abc"});
}

TEST(GbnfParser, PostfixOperatorsApplyToTheLastItem) {
  expect_language(R"(root ::= "ab"*)", {"", "ab", "abab"}, {"a", "aba", "abb", "b"});
  expect_language(R"(root ::= "x" "ab"+)", {"xab", "xabab"}, {"x", "xabx", "xxab"});
  expect_language(R"(root ::= [0-9]? ".")", {".", "5."}, {"55.", "5"});
  expect_language(R"(root ::= ("a" | "bc")+ "!")", {"a!", "bca!", "aabc!"}, {"!", "b!", "abc"});
  expect_language(R"(root ::= d * "!"
d ::= [0-9])",
                  {"!", "123!"}, {"12", "1a!"});
}

TEST(GbnfParser, StackedPostfixOperatorsRepeatTheRepeat) {
  // "a"{2}{2,3} is (aa){2,3}: 4 or 6 a's, never 5.
  expect_language(R"(root ::= "a"{2}{2,3})", {"aaaa", "aaaaaa"}, {"aa", "aaa", "aaaaa", "aaaaaaa"});
  expect_language(R"(root ::= ("a"{2}){3})", {"aaaaaa"}, {"aaaa", "aaaaaaaa"});
  expect_language(R"(root ::= "ab"*? "c")", {"c", "abc", "ababc"}, {"ac", "abab"});
  const Grammar g = parse_gbnf(R"(root ::= "x"+?)");
  const Expr& outer = g.expr(g.rule(g.root()).body);
  ASSERT_EQ(outer.kind, ExprKind::kRepeat);
  EXPECT_EQ(outer.max, 1u);
  EXPECT_EQ(g.expr(outer.children[0]).min, 1u);
  EXPECT_EQ(g.expr(outer.children[0]).max, kUnbounded);
}

TEST(GbnfParser, BracedRepetitionCounts) {
  expect_language(R"(root ::= "a"{3})", {"aaa"}, {"aa", "aaaa", ""});
  expect_language(R"(root ::= "a"{ 2 , })", {"aa", "aaaaaaa"}, {"", "a"});
  expect_language(R"(root ::= [ab]{2,4})", {"ab", "bba", "abab"}, {"a", "ababa", "abc"});
  expect_language(R"(root ::= "x"{0} "y")", {"y"}, {"xy"});
  expect_language(R"(root ::= "x"{0,1}"y" {1 ,2})", {"y", "xy", "xyy"}, {"xxy", "x", "xyyy"});
  // The largest count allowed parses and keeps its bound exactly.
  const Grammar g = parse_gbnf(R"(root ::= "a"{1,100000})");
  EXPECT_EQ(g.expr(g.rule(g.root()).body).max, kMaxRepeat);
  EXPECT_TRUE(reference_matches(g, "aaaa"));
}

TEST(GbnfParser, CharacterClasses) {
  expect_language(R"(root ::= [a-cx]+)", {"abcx", "cab"}, {"d", "abd", ""});
  expect_language(R"(root ::= [-a] [a-])", {"-a", "a-", "--"}, {"b-", "ab"});
  expect_language(R"(root ::= [\]\[\-\^\\"])", {"]", "[", "-", "^", "\\", "\""}, {"a", "]]"});
  expect_language(R"(root ::= [a^])", {"^", "a"}, {"b"});  // '^' not first is a plain '^'
  expect_language(R"(root ::= [a-z-0])", {"q", "-", "0"}, {"1", "A"});
  expect_language(R"(root ::= [^abc])", {"d", "\n", "\xC3\xA9"}, {"a", "c", "", "dd"});
  expect_language(R"(root ::= [^"\\\x00-\x1F]*)", {"plain text", "tab-free"}, {"a\"b", "a\\b", "a\tb"});
  expect_language("root ::= [\n]", {"\n"}, {" "});  // a raw line break is a class member
}

TEST(GbnfParser, NegatedClassesSpanMultiByteCodePoints) {
  expect_language(R"(root ::= [^é])", {"e", "\xC3\xA8", "\xE6\x97\xA5", "\xF0\x9F\x98\x80"},
                  {"\xC3\xA9", "\xC3",
                   "\xC3\xA9"
                   "e"});
  expect_language(R"(root ::= [à-ÿ]+)", {"\xC3\xA0\xC3\xA9\xC3\xBF"}, {"a", "\xC4\x80"});  // Ā is U+0100
  expect_language(R"(root ::= [^\x00-\x7F])", {"\xC3\xA9", "\xF0\x9F\x98\x80"}, {"a", "\x7F", "\x80"});
  // U+1F600..U+1F64F: 😀 and 🙏 in, 🚀 (U+1F680) out.
  expect_language(R"(root ::= [\U0001F600-\U0001F64F])", {"\xF0\x9F\x98\x80", "\xF0\x9F\x99\x8F"},
                  {"\xF0\x9F\x9A\x80", "\xF0\x9F\x98"});
}

TEST(GbnfParser, DotIsAnyCodePointIncludingNewline) {
  expect_language(R"(root ::= "<" . ">")", {"<a>", "<\n>", "<\xC3\xA9>", "<\xF0\x9F\x98\x80>"},
                  {"<>", "<ab>", "<\xC3>", "<\xFF>"});
}

TEST(GbnfParser, EscapesAreCodePointsEncodedAsUtf8) {
  // \xE9 is U+00E9 (é), the bytes C3 A9, never the lone byte E9.
  const Grammar g = parse_gbnf(R"(root ::= "\xE9")");
  EXPECT_EQ(g.expr(g.rule(g.root()).body).literal, "\xC3\xA9");
  EXPECT_TRUE(reference_matches(g, "\xC3\xA9"));
  EXPECT_FALSE(reference_matches(g, "\xE9"));
  expect_language(R"(root ::= "\u00e9\U0001F600\x41")",
                  {"\xC3\xA9\xF0\x9F\x98\x80"
                   "A"},
                  {"\xC3\xA9", "A"});
  expect_language(R"(root ::= "\t\r\n\\\"\[\]\-")", {"\t\r\n\\\"[]-"}, {"\\t\\r\\n"});
  expect_language(R"(root ::= [\x41-\x43\u00e9\t])", {"A", "C", "\xC3\xA9", "\t"}, {"D", "\xE9"});
  expect_language(R"(root ::= "\x00")", {std::string(1, '\0')}, {""});
}

TEST(GbnfParser, Utf8LiteralsAndRawNewlinesInLiterals) {
  expect_language(R"(root ::= "héllo, 日本 😀")", {"h\xC3\xA9llo, \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"},
                  {"hello, \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80", "h\xC3\xA9llo"});
  expect_language("root ::= \"a\nb\" \"#c\"", {"a\nb#c"}, {"ab#c", "a\nb"});
}

TEST(GbnfParser, CommentsAndLineEndings) {
  expect_language(R"(# a leading comment
root ::= item ("," item)* # a trailing comment
# between rules

item ::= [a-z]+ # letters)",
                  {"a", "ab,c,def"}, {"", "a,", ",a", "a b"});
  expect_language("root ::= a\r\na ::= \"x\" | # c\r\n  \"y\"\r\n", {"x", "y"}, {"xy", ""});
  expect_language(R"(root ::= ( # a comment inside a group
  "a" # more
  "b" ) "c")",
                  {"abc"}, {"ac", "ab"});
}

TEST(GbnfParser, RulesContinueAfterBarAndInsideParentheses) {
  expect_language(R"(root ::= "a" |
  "b" |
  ( "c"
    "d"
  | "e" )
other ::= "unused")",
                  {"a", "b", "cd", "e"}, {"c", "d", "ab", "other", "unused"});
  expect_language(R"(root ::=
  "x" "y"
)",
                  {"xy"}, {"x", "y"});
}

TEST(GbnfParser, ForwardReferencesAndRecursion) {
  expect_language(R"(root ::= list
list ::= "[" (item ("," item)*)? "]"
item ::= list | num
num  ::= [0-9]+)",
                  {"[]", "[1,22]", "[[],[3,[4]]]"}, {"[", "[1,]", "[[]", "1", "[1 2]"});
  expect_language(R"g(root ::= ("(" root ")")*)g", {"", "()", "(()())", "((()))()"}, {"(", "(()", ")(", "())"});
}

TEST(GbnfParser, NamesMayUseUnderscoresDigitsAndDashes) {
  expect_language(R"(root ::= my_rule-2 3d
my_rule-2 ::= "ok"
3d ::= "!")",
                  {"ok!"}, {"ok", "!"});
}

TEST(GbnfParser, ChoosesTheRootRuleByName) {
  const Grammar g = parse_gbnf("start ::= \"s\" other\nother ::= \"o\"\n", "start");
  EXPECT_EQ(g.rule(g.root()).name, "start");
  EXPECT_TRUE(reference_matches(g, "so"));
  EXPECT_FALSE(reference_matches(g, "o"));
  EXPECT_EQ(error_of("start ::= \"s\"\n", "begin"), "grammar:1:1: grammar has no rule named 'begin'");
}

// --- real-shaped grammars -----------------------------------------------------------------------

TEST(GbnfParser, JsonGrammarAcceptsJsonTexts) {
  expect_language(kJsonGrammar,
                  {
                      "{}",
                      R"({"a": 1})",
                      R"({"name": "ember", "version": 1.5e3, "tags": ["c++", "llm"], "ok": true, "none": null,)"
                      R"( "nested": {"x": -0.25, "y": [1, [2, {}]], "z": 0}})",
                      R"({"esc": "quote \" backslash \\ slash \/ newline \n unicode \u00e9 raw é 😀"})",
                      "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\" : false\n}",
                  },
                  {
                      "[1, 2]",
                      R"({"a": 1,})",
                      R"({'a': 1})",
                      R"({"a": 01})",
                      R"({a: 1})",
                      "{\"a\": \"tab\there\"}",
                      R"({"a": tru})",
                      R"({"a" 1})",
                      R"({"a": 1} extra)",
                      R"({"a": "\x"})",
                      R"({"a": 1.})",
                      R"({"a": "\u00e"})",
                      R"({"a": [1 2]})",
                      "{",
                  });
}

TEST(GbnfParser, ArithmeticGrammar) {
  // Spaces may follow an operand but not an operator, as in llama.cpp's grammar.
  expect_language(kArithmeticGrammar, {"1+2=3\n", "(a +b) *c = x_1\n", "1+2=3\n(2*x) /4 = z\n"},
                  {"1+2=3", "1++2=3\n", "=3\n", "(1+2=3\n", "A=1\n", "1=2+3\n", "1 + 2=3\n"});
}

TEST(GbnfParser, PrintedGrammarParsesToTheSameLanguage) {
  struct Case {
    std::string_view gbnf;
    std::vector<std::string> samples;
  };
  const std::vector<Case> cases = {
      {kJsonGrammar,
       {"{}", R"({"a": [1, 2.5e-3, "x\"y\u00e9"]})", "{\n\t\"k\": null}", "[1]", R"({"a": 01})", "{\"a\": \"\t\"}"}},
      {kArithmeticGrammar, {"1+2=3\n", "(a +b) *c = x_1\n", "1+2=3", "A=1\n", "1 + 2=3\n"}},
      {R"(root ::= ("a"{2,3} | [^\x00-\x1F"\]\-\^\\] | "\x7F\t" | "é"+ | "ab"*? | .{2}){1,3} tail
tail ::= ("x" | "") [\u00e0-\U0010FFFF]? "\"#"{0}
unused ::= "never" [\x00-\x7F]{4,})",
       {"aa", "aaa", "a", "]", "\\", "-", "^", "\x7F\t", "\xC3\xA9\xC3\xA9x", "abab", "\n\n", "\n", "aaaaaaaa",
        "aax\xC3\xA0", "x", "\x01", "\"#"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.gbnf));
    const Grammar original = parse_gbnf(c.gbnf);
    const std::string printed = original.to_gbnf();
    const Grammar reparsed = parse_gbnf(printed);
    int accepted = 0;
    for (const std::string& text : c.samples) {
      const bool expected = reference_matches(original, text);
      EXPECT_EQ(reference_matches(reparsed, text), expected) << "sample: " << text << "\nprinted:\n" << printed;
      accepted += expected ? 1 : 0;
    }
    // The samples must tell languages apart: some accepted, some rejected.
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, static_cast<int>(c.samples.size()));
    // The same rules with the same bodies (the order of the rules after root may differ).
    EXPECT_EQ(reparsed.rule(reparsed.root()).name, original.rule(original.root()).name);
    EXPECT_EQ(sorted_lines(reparsed.to_gbnf()), sorted_lines(printed));
  }
}

// --- errors ---------------------------------------------------------------------------------------

TEST(GbnfParser, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(error_of("root ::= a\na ::= \"x\"\nb ::= @\n"), "grammar:3:7: unexpected '@'");
  EXPECT_EQ(error_of("root ::= (\n  \"a\"\n  \"b\" @\n)\n"), "grammar:3:7: expecting ')' to close the '(' at 1:10");
  EXPECT_EQ(error_of("root ::= \"a\"\n\"b\""), "grammar:2:1: expecting a rule name");
  EXPECT_EQ(error_of("root ::= \"a\"\n| \"b\""),
            "grammar:2:1: expecting a rule name (a line may not start with '|'; end the previous line with it)");
  EXPECT_EQ(error_of("root ::= \"a\"\n  | \"b\""),
            "grammar:2:3: expecting a rule name (a line may not start with '|'; end the previous line with it)");
  EXPECT_EQ(error_of("root = \"a\""), "grammar:1:6: expecting '::=' after the rule name 'root'");
  EXPECT_EQ(error_of("root ::= \"abc"), "grammar:1:10: unterminated string literal");
  EXPECT_EQ(error_of("root ::= [abc"), "grammar:1:10: unterminated character class");
  EXPECT_EQ(error_of("root ::= (\"a\" | \"b\""), "grammar:1:10: unclosed '('");
  EXPECT_EQ(error_of("root ::= (\"a\" \"b\"]"), "grammar:1:18: expecting ')' to close the '(' at 1:10");
  EXPECT_EQ(error_of("root ::= \"a\")"), "grammar:1:13: unexpected ')' without a matching '('");
  EXPECT_EQ(error_of("root ::= * \"a\""), "grammar:1:10: expecting an item before '*'");
  EXPECT_EQ(error_of("root ::= \"a\" | +"), "grammar:1:16: expecting an item before '+'");
  EXPECT_EQ(error_of("root ::= \"a\" \"b\" ::= \"c\""),
            "grammar:1:18: unexpected '::=' (does the rule before end with '|' or leave a '(' open?)");
  EXPECT_EQ(error_of("root ::= \"a\" |\nb ::= \"c\""),
            "grammar:2:3: unexpected '::=' (does the rule before end with '|' or leave a '(' open?)");
  EXPECT_EQ(error_of("root ::= \"a\" \x01"), "grammar:1:14: unexpected U+0001");
  EXPECT_EQ(error_of("root ::= \"a\" \xC3\xA9"), "grammar:1:14: unexpected '\xC3\xA9'");
  EXPECT_EQ(error_of("root ::= \"\xFF\""), "grammar:1:11: invalid UTF-8");
}

TEST(GbnfParser, RepetitionErrors) {
  EXPECT_EQ(error_of("root ::= \"a\"{,3}"), "grammar:1:14: expecting a number");
  EXPECT_EQ(error_of("root ::= \"a\"{3,2}"), "grammar:1:13: repetition {3,2} has its minimum above its maximum");
  EXPECT_EQ(error_of("root ::= \"a\"{100001}"), "grammar:1:14: repetition count above the limit of 100000");
  EXPECT_EQ(error_of("root ::= \"a\"{2,100001}"), "grammar:1:16: repetition count above the limit of 100000");
  EXPECT_EQ(error_of("root ::= \"a\"{99999999999999999999999}"),
            "grammar:1:14: repetition count above the limit of 100000");
  EXPECT_EQ(error_of("root ::= \"a\"{2 3}"), "grammar:1:16: expecting ',' or '}'");
  EXPECT_EQ(error_of("root ::= \"a\"{2,3"), "grammar:1:17: expecting '}'");
  EXPECT_EQ(error_of("root ::= \"a\"{x}"), "grammar:1:14: expecting a number");
}

TEST(GbnfParser, ClassAndEscapeErrors) {
  EXPECT_EQ(error_of("root ::= []"), "grammar:1:10: empty character class");
  EXPECT_EQ(error_of("root ::= \"x\" [^]"), "grammar:1:14: empty character class");
  EXPECT_EQ(error_of("root ::= [^\\x00-\\U0010FFFF]"), "grammar:1:10: empty character class");
  EXPECT_EQ(error_of("root ::= [a-cz-a]"), "grammar:1:14: character range U+007A-U+0061 is reversed");
  EXPECT_EQ(error_of("root ::= \"\\q\""), "grammar:1:11: unknown escape '\\q'");
  EXPECT_EQ(error_of("root ::= \"\\^\""), "grammar:1:11: unknown escape '\\^'");
  EXPECT_EQ(error_of("root ::= [\\d]"), "grammar:1:11: unknown escape '\\d'");
  EXPECT_EQ(error_of("root ::= \"\\\xC3\xA9\""), "grammar:1:11: unknown escape '\\\xC3\xA9'");
  EXPECT_EQ(error_of("root ::= \"\\\n\""), "grammar:1:11: unknown escape: '\\' followed by U+000A");
  EXPECT_EQ(error_of("root ::= \"\\"), "grammar:1:11: incomplete escape at the end of the input");
  EXPECT_EQ(error_of("root ::= \"\\x4\""), "grammar:1:11: expecting 2 hex digits after '\\x'");
  EXPECT_EQ(error_of("root ::= \"\\u12G4\""), "grammar:1:11: expecting 4 hex digits after '\\u'");
  EXPECT_EQ(error_of("root ::= \"\\U0001F60\""), "grammar:1:11: expecting 8 hex digits after '\\U'");
  EXPECT_EQ(error_of("root ::= \"\\U00110000\""), "grammar:1:11: code point U+110000 is above U+10FFFF");
  EXPECT_EQ(error_of("root ::= [a\\uD800]"), "grammar:1:12: code point U+D800 is a surrogate");
}

TEST(GbnfParser, RuleErrors) {
  EXPECT_EQ(error_of("root ::= item+\nitem ::= \"x\" |\n  other\n"), "grammar:3:3: undefined rule 'other'");
  EXPECT_EQ(error_of("root ::= a b\nb ::= \"x\"\n"), "grammar:1:10: undefined rule 'a'");
  EXPECT_EQ(error_of("root ::= a\na ::= \"x\"\na ::= \"y\"\n"),
            "grammar:3:1: rule 'a' is defined twice (lines 2 and 3)");
  EXPECT_EQ(error_of("start ::= \"x\""), "grammar:1:1: grammar has no rule named 'root'");
  EXPECT_EQ(error_of(""), "grammar:1:1: grammar has no rule named 'root'");
  EXPECT_EQ(error_of("# only a comment\n\n"), "grammar:1:1: grammar has no rule named 'root'");
  EXPECT_EQ(error_of("other ::= root\n"), "grammar:1:11: undefined rule 'root'");
}

TEST(GbnfParser, TokenTerminalsAreNotSupported) {
  EXPECT_EQ(error_of("root ::= <think> \"x\""), "grammar:1:10: token terminals (<...>) are not supported");
  EXPECT_EQ(error_of("root ::= \"a\" |\n  \"b\" <[123]>"), "grammar:2:7: token terminals (<...>) are not supported");
  EXPECT_EQ(error_of("root ::= !<[2]>"), "grammar:1:10: token terminals (<...>) are not supported");
  EXPECT_EQ(error_of("root ::= \"<think>\" [<>]"), "(no error)");  // '<' inside literals and classes is text
}

TEST(GbnfParser, SizeLimitsAreErrors) {
  const std::string literal_rule = "root ::= \"" + std::string(1000 * 1000, 'a') + "\"";
  EXPECT_EQ(error_of(literal_rule), "(no error)");
  EXPECT_EQ(error_of("root ::= \"" + std::string(1 << 20, 'a') + "\""), "grammar:1:1: grammar is larger than 1 MiB");

  const auto nested = [](int depth) {
    std::string text = "root ::= ";
    for (int i = 0; i < depth; ++i) text += "\"a\" (";
    text += "\"b\"";
    for (int i = 0; i < depth; ++i) text += ")*";
    return text;
  };
  // root ::= "a" ("a" ( ... ("b")* ... )*)*: the "b" needs all 100 levels.
  const Grammar deep = parse_gbnf(nested(100));
  EXPECT_TRUE(reference_matches(deep, std::string(100, 'a') + "b"));
  EXPECT_TRUE(reference_matches(deep, "aaa"));
  EXPECT_FALSE(reference_matches(deep, "ab"));
  EXPECT_FALSE(reference_matches(deep, std::string(99, 'a') + "b"));
  // The k-th '(' is at column 9 + 5k.
  EXPECT_EQ(error_of(nested(101)), "grammar:1:514: groups nested more than 100 deep");
  EXPECT_EQ(error_of(nested(100000)), "grammar:1:514: groups nested more than 100 deep");

  std::string many = "root ::=";
  for (int i = 0; i <= 200000; ++i) many += " \"a\"";
  // The 200001st item starts at column 10 + 4 * 200000.
  EXPECT_EQ(error_of(many), "grammar:1:800010: grammar has more than 200000 expressions");

  // Postfix operators that do not collapse into one repeat ((x?)? is x?, (x+)+ is x+) nest:
  // "?{2}" adds two levels to the literal's one; the 501st level is the "{2}" of the 250th pair, at
  // column 13 + 4 * 249 + 1.
  std::string deep_ops;
  for (int i = 0; i < 300; ++i) deep_ops += "?{2}";
  EXPECT_EQ(error_of("root ::= \"a\"" + deep_ops.substr(0, 4 * 249) + "?"), "(no error)");
  EXPECT_EQ(error_of("root ::= \"a\"" + deep_ops), "grammar:1:1010: expression nested more than 500 levels deep");
  EXPECT_EQ(error_of("root ::= \"a\"" + std::string(600, '?')), "(no error)");  // one optional

  std::string rules = "root ::=";
  for (int i = 0; i < 10000; ++i) rules += " r" + std::to_string(i);
  const size_t last = rules.rfind(" r9999") + 2;
  EXPECT_EQ(error_of(rules), "grammar:1:" + std::to_string(last) + ": more than 10000 rules");
}

}  // namespace
}  // namespace ember::grammar
