// The compiled automata and the matcher against the reference matcher (whole texts), and token
// masks against checking every token alone — on synthetic vocabularies and the real llama-bpe one.
#include "grammar/matcher.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/gbnf_parser.h"
#include "grammar/json_schema.h"
#include "grammar/reference_matcher.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace ember::grammar {
namespace {

using testing::reference_matches;

// A JSON-like grammar built with the IR builders: value ::= object | array | string | number |
// "true" | "false" | "null"; the string rule is shared (kept as a frame), whitespace bounded.
Grammar json_like() {
  Grammar g;
  const RuleId value = g.declare_rule("value");
  const RuleId string = g.declare_rule("string");
  const ExprId ws = g.repeat(g.char_class({{' ', ' '}, {'\n', '\n'}}), 0, 2);
  const ExprId chr = g.choice({g.char_class({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}}, true),
                               g.sequence({g.literal("\\"), g.char_class({{'"', '"'}, {'\\', '\\'}, {'n', 'n'}})})});
  g.define_rule(string, g.sequence({g.literal("\""), g.star(chr), g.literal("\"")}));
  g.set_shared(string);
  const ExprId number =
      g.sequence({g.optional(g.literal("-")),
                  g.choice({g.literal("0"),
                            g.sequence({g.char_class({{'1', '9'}}), g.repeat(g.char_class({{'0', '9'}}), 0, 5)})})});
  const ExprId member = g.sequence({g.ref(string), ws, g.literal(":"), ws, g.ref(value)});
  const ExprId object = g.sequence(
      {g.literal("{"), ws, g.optional(g.sequence({member, g.star(g.sequence({ws, g.literal(","), ws, member}))})), ws,
       g.literal("}")});
  const ExprId array =
      g.sequence({g.literal("["), ws,
                  g.optional(g.sequence({g.ref(value), g.star(g.sequence({ws, g.literal(","), ws, g.ref(value)}))})),
                  ws, g.literal("]")});
  g.define_rule(value, g.choice({object, array, g.ref(string), number, g.literal("true"), g.literal("false"),
                                 g.literal("null")}));
  g.set_root(g.add_rule("root", g.sequence({g.ref(value)})));
  return g;
}

bool matcher_matches(const std::shared_ptr<const CompiledGrammar>& cg, const VocabTrie& trie, std::string_view text) {
  GrammarMatcher m(cg, trie, {});
  return m.accept_bytes(text) && m.can_end();
}

VocabTrie byte_vocab() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  return VocabTrie(pieces);
}

TEST(GrammarMatcher, AgreesWithTheReferenceOnEveryShortText) {
  Grammar g = json_like();
  const auto cg = CompiledGrammar::compile(g);
  const VocabTrie trie = byte_vocab();
  const std::string alphabet = "{}[]\":,0-1 a\\tn";
  // Every text of up to 4 characters over the alphabet, then random longer ones.
  std::vector<std::string> texts = {""};
  for (size_t begin = 0, len = 0; len < 4; ++len) {
    const size_t end = texts.size();
    for (size_t i = begin; i < end; ++i) {
      for (const char c : alphabet) texts.push_back(texts[i] + c);
    }
    begin = end;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string t;
    const int len = static_cast<int>(rng() % 14);
    for (int k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    texts.push_back(t);
  }
  for (const std::string s : {"{\"a\": [1, -20, \"x\\\"y\"], \"b\":{}}", "[true,false,null]", "\"é\"", "[[[[]]]]"}) {
    texts.push_back(s);
  }
  int accepted = 0;
  for (const std::string& t : texts) {
    const bool want = reference_matches(g, t);
    accepted += want ? 1 : 0;
    ASSERT_EQ(matcher_matches(cg, trie, t), want) << "text: " << t;
  }
  EXPECT_GT(accepted, 100);  // the comparison saw both answers many times
}

TEST(GrammarMatcher, RepetitionBoundsAndUtf8Classes) {
  Grammar g;
  g.set_root(g.add_rule(
      "root",
      g.sequence({g.repeat(g.char_class({{0xE9, 0xE9}, {0x1F600, 0x1F64F}, {'a', 'c'}}), 2, 4), g.literal("!")})));
  const auto cg = CompiledGrammar::compile(g);
  const VocabTrie trie = byte_vocab();
  for (const std::string t :
       {"a!", "ab!", "aé!", "é😀!", "abcé!", "abcéa!", "😀😀😀😀!", "\xC3!", "ab", "aé\xF0\x9F\x98!"}) {
    EXPECT_EQ(matcher_matches(cg, trie, t), reference_matches(g, t)) << t;
  }
  EXPECT_TRUE(matcher_matches(cg, trie, "é😀!"));
  EXPECT_FALSE(matcher_matches(cg, trie, "abcéa!"));
}

TEST(GrammarMatcher, RejectsLeftRecursionAndRulesThatNeverFinish) {
  {
    Grammar g;
    const RuleId expr = g.declare_rule("expr");
    g.define_rule(expr, g.choice({g.sequence({g.ref(expr), g.literal("+"), g.literal("1")}), g.literal("1")}));
    g.set_root(g.add_rule("root", g.ref(expr)));
    try {
      CompiledGrammar::compile(g);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("left recursion is not supported: expr -> expr"), std::string::npos)
          << e.what();
    }
  }
  {
    Grammar g;
    const RuleId loop = g.declare_rule("loop");
    g.define_rule(loop, g.sequence({g.literal("x"), g.ref(loop)}));
    g.set_root(g.add_rule("root", g.choice({g.literal("a"), g.ref(loop)})));
    try {
      CompiledGrammar::compile(g);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rule 'loop' can never finish"), std::string::npos) << e.what();
    }
  }
}

// Found by the fuzzer: "."+++...+ (110 '+') doubled the automaton at every '+' until the size limit
// (seconds); nested open repeats now collapse in the IR.
TEST(GrammarMatcher, NestedRepeatsStaySmall) {
  Grammar g;
  ExprId e = g.any_codepoint();
  for (int i = 0; i < 110; ++i) e = g.plus(e);
  g.set_root(g.add_rule("root", g.sequence({g.literal("<"), e, g.literal(">")})));
  const auto cg = CompiledGrammar::compile(g);
  EXPECT_LT(cg->total_states(), 100);  // one `.+` (UTF-8 sequences, a first copy and a loop)
  const VocabTrie trie = byte_vocab();
  EXPECT_TRUE(matcher_matches(cg, trie, "<ab>"));
  EXPECT_FALSE(matcher_matches(cg, trie, "<>"));
}

// The message of the Error `body` throws, "no error" when it returns.
template <class Body>
std::string message(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Found in review: grammars that blow up matching or compiling are refused with an error, fast.
TEST(GrammarMatcher, AmbiguousAndHugeGrammarsAreErrorsNotHangs) {
  const VocabTrie trie = byte_vocab();
  {
    // root ::= "a" root "b" | "a" t "c" | "" ; t ::= root — the readings of "aaa..." double per byte.
    Grammar g;
    const RuleId root = g.declare_rule("root");
    const RuleId t = g.declare_rule("t");
    g.define_rule(root, g.choice({g.sequence({g.literal("a"), g.ref(root), g.literal("b")}),
                                  g.sequence({g.literal("a"), g.ref(t), g.literal("c")}), g.empty()}));
    g.define_rule(t, g.ref(root));
    g.set_root(root);
    GrammarMatcher m(CompiledGrammar::compile(g), trie, {});
    EXPECT_NE(message([&] {
                for (int i = 0; i < 40; ++i) m.accept_bytes("a");
              }).find("too ambiguous"),
              std::string::npos);
  }
}

TEST(GrammarMatcher, HugeSubsetsAreErrorsNotHangs) {
  {
    // ("a"?){8000}: 8001 DFA states, but subsets of thousands of NFA states each.
    Grammar g;
    g.set_root(g.add_rule("root", g.repeat(g.optional(g.literal("a")), 8000, 8000)));
    EXPECT_NE(message([&] { CompiledGrammar::compile(g); }).find("too large to compile"), std::string::npos);
  }
}

TEST(GrammarMatcher, LongRuleChainsCompileInLinearTime) {
  const VocabTrie trie = byte_vocab();
  {
    // A chain of 4000 recursive rules: hashing each rule's callees once keeps this linear.
    Grammar g;
    std::vector<RuleId> rules;
    for (int i = 0; i < 4000; ++i) {
      std::string name = "r";  // (not "r" + to_string: GCC 12 warns falsely of overlapping memcpy)
      name += std::to_string(i);
      rules.push_back(g.declare_rule(name));
    }
    for (int i = 0; i < 4000; ++i) {
      const RuleId next = rules[static_cast<size_t>((i + 1) % 4000)];
      g.define_rule(rules[static_cast<size_t>(i)],
                    g.choice({g.sequence({g.literal("a"), g.ref(next)}), g.literal("b")}));
    }
    g.set_root(rules[0]);
    const auto cg = CompiledGrammar::compile(g);
    EXPECT_TRUE(matcher_matches(cg, trie, "aaab"));
  }
}

// Random walks: at each step the mask must equal the tokens allowed one by one; then a random
// allowed token is taken. `pieces` may hold multi-byte tokens that cross rule boundaries.
GrammarMatcher::WalkStats check_masks_on_walks(const Grammar& g, const std::vector<std::string>& pieces, int walks,
                                               int steps, uint32_t seed, MaskCache* cache) {
  GrammarMatcher::WalkStats stats;
  const auto cg = CompiledGrammar::compile(g);
  const VocabTrie trie(pieces);
  const int32_t eos = static_cast<int32_t>(pieces.size()) - 1;  // the last piece is "" : the end token
  std::mt19937 rng(seed);
  TokenMask mask;
  int multi_byte_taken = 0;
  for (int w = 0; w < walks; ++w) {
    GrammarMatcher m(cg, trie, std::vector<int32_t>{eos}, cache);
    for (int step = 0; step < steps && !m.finished(); ++step) {
      m.fill_mask(mask);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < trie.n_vocab(); ++t) {
        EXPECT_EQ(mask.test(t), m.allows(t))
            << "walk " << w << " step " << step << " token " << t << " '" << pieces[t] << "'";
        if (mask.test(t)) allowed.push_back(t);
      }
      EXPECT_FALSE(allowed.empty()) << "a live grammar state always allows some token";
      if (allowed.empty() || ::testing::Test::HasFailure()) return stats;
      const int32_t t = allowed[rng() % allowed.size()];
      multi_byte_taken += pieces[static_cast<size_t>(t)].size() > 1 ? 1 : 0;
      EXPECT_TRUE(m.accept(t));
    }
    stats.walks += m.walk_stats().walks;
    stats.nodes += m.walk_stats().nodes;
    stats.whole_runs += m.walk_stats().whole_runs;
    stats.sliced_runs += m.walk_stats().sliced_runs;
  }
  EXPECT_GT(multi_byte_taken, 0);
  return stats;
}

std::vector<std::string> json_pieces() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 128; ++b) pieces.emplace_back(1, static_cast<char>(b));
  for (const char* p :
       {"\"",    "\":",  "\": ",   "\",", "\"}", "\"]", "},",  "}]",  "{\"",    "[\"",         ", \"", "true",
        "false", "null", "nul",    "12",  "-1",  "0,",  "1]",  "ab",  "abc\"",  "a\"b",        "\\\"", "\\n",
        "é",     "\xC3", "\xA9\"", "{}",  "[]",  "  ",  " \n", "\n ", "x\":1}", "\"a\":\"b\"}"}) {
    pieces.emplace_back(p);
  }
  pieces.emplace_back("");  // the end token
  return pieces;
}

TEST(GrammarMatcher, MasksEqualTokensCheckedOneByOne) {
  MaskCache cache(size_t{16} << 20);
  check_masks_on_walks(json_like(), json_pieces(), 40, 40, 11, &cache);
  // Again with the cache warm: entries computed by earlier walks must give the same masks.
  check_masks_on_walks(json_like(), json_pieces(), 40, 40, 12, &cache);
  EXPECT_GT(cache.stats().hits, 0u);
}

// Pieces with long runs of the same characters (so that trie subtrees are large enough to be
// taken from a run without a walk: the "a" subtree holds only letters), whole and partial
// non-ASCII characters, and every single byte.
std::vector<std::string> run_pieces() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));  // any text can be finished
  auto repeat = [](std::string_view s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  for (int n = 2; n <= 14; ++n) pieces.push_back(repeat("a", n));
  for (int n = 2; n <= 9; ++n) pieces.push_back(repeat("\xC3\xA9", n));      // é
  for (int n = 2; n <= 6; ++n) pieces.push_back(repeat("\xE4\xB8\xAD", n));  // 中
  for (int n = 1; n <= 9; ++n) pieces.push_back(repeat("b", 1).append(repeat("xy", n)));
  for (const char* p : {"\xC3\xA9", "\xE4\xB8", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "z\xC3",
                        "\xC3\xA9"
                        "a",
                        "\xC3\xA9\xC3", "zzz\"", "\"aa", "\"aaaa\"", "\"\xC3\xA9\xC3\xA9\"", "abcdefghij",
                        "zzzzzzzzzzzz!", "zzzzz!", "\\\"", "\\n", "\\u00e9"}) {
    pieces.emplace_back(p);
  }
  pieces.emplace_back("");  // the end token
  return pieces;
}

// Masks that take trie subtrees from a run of characters (whole, or token by token by length)
// must equal the tokens checked one by one: bounded and unbounded runs, ASCII and non-ASCII
// classes, runs whose end can end the rule (not sliceable), and JSON strings with maxLength.
TEST(GrammarMatcher, RunSubtreesEqualTokensCheckedOneByOne) {
  const std::vector<std::string> pieces = run_pieces();
  GrammarMatcher::WalkStats total;
  uint32_t seed = 20;
  for (const char* gbnf : {
           R"(root ::= "\"" [a-z\u00e9]{0,6} "\"")",
           R"(root ::= "\"" [^"\\]{2,9} "\"")",
           R"(root ::= "\"" [^"]* "\"" "!"?)",
           R"(root ::= [a-z]{3} | [a-z]{5} "!")",
           R"(root ::= ("\u00e9" | "\u4e2d"){1,7} "a"{0,12})",
           R"(root ::= "b" ("xy"){2,5} [a-z]{0,3})",
           R"(root ::= "\"" [a-z]{0,3} [a-m]? "\"")",
           R"(root ::= "<" [a-z]{3} [a-c] "x")",  // the run's end takes some of its characters
           // A recursive rule stays a frame: its runs end the rule, and the caller takes more.
           "root ::= item [a-z]? \";\"\nitem ::= \"(\" item \")\" | [a-z]{1,5} | \"<\" [a-z]{3}",
           // ... and may end part way through a run that goes on past that.
           "root ::= item [a-z]* \";\"\nitem ::= \"(\" item \")\" | \"<\" ([a-z]{2} | [a-z]{4} \"!\")",
       }) {
    SCOPED_TRACE(gbnf);
    MaskCache cache(size_t{16} << 20);
    const GrammarMatcher::WalkStats stats = check_masks_on_walks(parse_gbnf(gbnf), pieces, 30, 24, ++seed, &cache);
    total.whole_runs += stats.whole_runs;
    total.sliced_runs += stats.sliced_runs;
  }
  for (
      const char* schema : {
          R"({"type":"object","properties":{"s":{"type":"string","maxLength":7},"t":{"type":"string","minLength":2}},"required":["s"]})",
          R"({"type":"array","items":{"type":"string","minLength":1,"maxLength":4},"maxItems":3})",
      }) {
    SCOPED_TRACE(schema);
    MaskCache cache(size_t{16} << 20);
    const GrammarMatcher::WalkStats stats =
        check_masks_on_walks(json_schema_grammar(schema), pieces, 30, 24, ++seed, &cache);
    total.whole_runs += stats.whole_runs;
    total.sliced_runs += stats.sliced_runs;
  }
  // The shortcuts were taken, both kinds: the checks above covered them.
  EXPECT_GT(total.whole_runs, 0u);
  EXPECT_GT(total.sliced_runs, 0u);
}

// Masks along texts typed byte by byte, then along random walks, against allows(): for the
// run-shortcut guards below, each case fails when its guard is removed (found by review).
void check_masks_along(const std::string& gbnf, const std::vector<std::string>& extra,
                       const std::vector<std::string>& texts) {
  SCOPED_TRACE(gbnf);
  std::vector<std::string> pieces;
  auto repeat = [](std::string_view s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  for (int n = 2; n <= 14; ++n) pieces.push_back(repeat("a", n));
  for (int n = 2; n <= 9; ++n) pieces.push_back(repeat("\xC3\xA9", n));
  for (int n = 2; n <= 6; ++n) pieces.push_back(repeat("\xE4\xB8\xAD", n));
  for (int n = 1; n <= 9; ++n) pieces.push_back(repeat("b", 1).append(repeat("xy", n)));  // the longest: 19 chars
  pieces.insert(pieces.end(), extra.begin(), extra.end());
  const auto eos = static_cast<int32_t>(pieces.size());
  pieces.emplace_back();
  const VocabTrie trie(pieces);
  const auto cg = CompiledGrammar::compile(parse_gbnf(gbnf));
  TokenMask mask;
  auto masks_agree = [&](GrammarMatcher& m, const std::string& where) {
    m.fill_mask(mask);
    for (int32_t t = 0; t < trie.n_vocab(); ++t) {
      if (mask.test(t) != m.allows(t)) {
        ADD_FAILURE() << "after '" << where << "': token " << t << " mask " << mask.test(t);
        return false;
      }
    }
    return true;
  };
  for (const std::string& text : texts) {
    MaskCache cache(size_t{16} << 20);
    GrammarMatcher m(cg, trie, std::vector<int32_t>{eos}, &cache);
    for (size_t k = 0; k <= text.size(); ++k) {
      if (!masks_agree(m, text.substr(0, k))) return;
      if (k < text.size()) {
        ASSERT_TRUE(m.accept(static_cast<uint8_t>(text[k]))) << text << " at " << k;
      }
    }
  }
  std::mt19937 rng(7);
  for (int walk = 0; walk < 30; ++walk) {
    MaskCache cache(size_t{16} << 20);
    GrammarMatcher m(cg, trie, std::vector<int32_t>{eos}, &cache);
    std::string so_far;
    for (int step = 0; step < 24 && !m.finished(); ++step) {
      if (!masks_agree(m, so_far)) return;
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < eos; ++t) {
        if (mask.test(t)) allowed.push_back(t);
      }
      if (allowed.empty()) break;
      const int32_t t = allowed[rng() % allowed.size()];
      so_far += pieces[static_cast<size_t>(t)];
      ASSERT_TRUE(m.accept(t));
    }
  }
}

TEST(GrammarMatcher, RunShortcutGuards) {
  std::vector<std::string> ill_formed, a_then_e, a_then_zh, lt_a;
  for (int n = 1; n <= 10; ++n) {
    const std::string e = std::string("\xC3\xA9");
    std::string run;
    for (int k = 0; k < n; ++k) run += e;
    ill_formed.push_back(run + "\xFF");
    ill_formed.push_back(run + "\xC0\x80");
    a_then_e.push_back(std::string("a").append(run));
    std::string zh;
    for (int k = 0; k < n; ++k) zh += "\xE4\xB8\xAD";
    a_then_zh.push_back(std::string("a").append(zh));
  }
  for (int n = 1; n <= 12; ++n) lt_a.push_back(std::string("<").append(static_cast<size_t>(n), 'a'));
  // A subtree of run characters with an ill-formed byte below is walked, not taken.
  check_masks_along(R"(root ::= [^"]*)", ill_formed, {});
  // Slicing only when the frame is the one reading: here another rule takes the letters on.
  check_masks_along("root ::= \"<\" (s | [a-z]{3} \"!\")\ns ::= [a-z]* \";\" | \"(\" s \")\"", lt_a, {"<aaaaaaa;"});
  // Chains past twice the longest token: the length kept at the cut must not overestimate.
  for (const int n : {38, 41, 42, 43, 50}) {
    check_masks_along(fmt::format("root ::= [a-z]{{{}}} \"!\"", n), {},
                      {std::string(static_cast<size_t>(n), 'a') + "!"});
  }
  // The bytes tried per UTF-8 state must follow the grammar's byte classes, not only UTF-8's.
  check_masks_along(R"(root ::= [a-z\u0080\u0800\u1000\uD000\uE000\U00010000\U00040000\U00100000]*)", a_then_e, {});
  // A run's end that takes a non-ASCII character is not sliced.
  check_masks_along(R"(root ::= [^"]{3} "\u00e9" "!")", {}, {"aaa\xC3\xA9!"});
  // A class with some non-ASCII characters is not a run of all of them.
  check_masks_along(R"(root ::= [a-z\u00c0-\u00ff]*)", a_then_zh, {});
}

// A rule that can end at several points inside one token: only an earlier end lets the caller
// take the rest ("aab": x takes "a", the caller "ab"; ending x after "aa" leaves "b", which the
// caller refuses). Every end point must be tried, not only the last.
TEST(GrammarMatcher, UncertainTokensTryEveryPointTheRuleCouldEnd) {
  const Grammar g = parse_gbnf("root ::= x \"ab\"\nx ::= \"a\" x | \"\"");
  const std::vector<std::string> pieces = {"a", "b", "aab", "aaab", "ab", "aa", "aaa", "abb", ""};
  MaskCache cache(size_t{1} << 20);
  check_masks_on_walks(g, pieces, 20, 8, 3, &cache);
  const VocabTrie trie(pieces);
  GrammarMatcher m(CompiledGrammar::compile(g), trie, std::vector<int32_t>{8}, &cache);
  TokenMask mask;
  m.fill_mask(mask);
  EXPECT_TRUE(mask.test(2) && mask.test(3) && mask.test(4));  // "aab", "aaab", "ab"
  EXPECT_FALSE(mask.test(7));                                 // "abb"
}

// Speculative decoding rolls the matcher back along a rejected draft: after restore() the masks
// and the answers are those of the checkpoint, lazy triggers and the end included.
TEST(GrammarMatcher, RestoreRollsBackAcceptedTokens) {
  Grammar g;
  g.set_root(g.add_rule("root", g.sequence({g.literal("<call>"), g.plus(g.char_class({{'0', '9'}})), g.literal("!")})));
  const auto cg = CompiledGrammar::compile(g);
  const std::vector<std::string> pieces = {"hi ", "<call>", "12", "!", "3", ""};
  const VocabTrie trie(pieces);
  GrammarMatcher m(cg, trie, std::vector<int32_t>{5});
  m.set_lazy({{.text = "<call>", .token = -1}}, true);
  TokenMask before, after;
  const GrammarMatcher::Checkpoint waiting = m.checkpoint();
  ASSERT_TRUE(m.accept(0) && m.accept(1));
  EXPECT_FALSE(m.unconstrained());
  const GrammarMatcher::Checkpoint started = m.checkpoint();
  m.fill_mask(before);
  ASSERT_TRUE(m.accept(2) && m.accept(3) && m.accept(5));
  EXPECT_TRUE(m.finished());
  m.restore(started);
  EXPECT_FALSE(m.finished());
  m.fill_mask(after);
  EXPECT_EQ(before.count(), after.count());
  for (int32_t t = 0; t < trie.n_vocab(); ++t) EXPECT_EQ(before.test(t), after.test(t)) << t;
  EXPECT_FALSE(m.accept(3));  // "!" needs a digit first, as before
  EXPECT_TRUE(m.accept(4) && m.accept(3));
  m.restore(waiting);
  EXPECT_TRUE(m.unconstrained());  // waiting for the trigger again
  EXPECT_TRUE(m.accept(3));        // anything goes before it
}

TEST(GrammarMatcher, EndTokenOnlyWhenCompleteAndFinishedAfterIt) {
  Grammar g;
  g.set_root(g.add_rule("root", g.sequence({g.literal("ab"), g.optional(g.literal("c"))})));
  const auto cg = CompiledGrammar::compile(g);
  const std::vector<std::string> pieces = {"a", "b", "c", "abc", ""};
  const VocabTrie trie(pieces);
  GrammarMatcher m(cg, trie, std::vector<int32_t>{4});
  EXPECT_FALSE(m.allows(4));
  EXPECT_TRUE(m.accept(0));
  EXPECT_FALSE(m.accept(2));
  EXPECT_TRUE(m.accept(1));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.finished());  // "c" may still follow
  TokenMask mask;
  m.fill_mask(mask);
  EXPECT_EQ(mask.count(), 2);  // "c" and the end token
  EXPECT_TRUE(mask.test(2) && mask.test(4));
  EXPECT_TRUE(m.accept(2));
  EXPECT_TRUE(m.finished());  // nothing can follow "abc"
  EXPECT_TRUE(m.accept(4));
  m.fill_mask(mask);
  EXPECT_EQ(mask.count(), 0);
}

// Lazy grammars: free output until the trigger, found across token boundaries, then the grammar
// from the trigger's start (in_grammar) or its end; a token trigger by id; bytes that do not fit.
TEST(GrammarMatcher, LazyTriggersStartTheGrammarAcrossTokens) {
  Grammar g;
  g.set_root(
      g.add_rule("root", g.sequence({g.literal("<call>"), g.plus(g.char_class({{'0', '9'}})), g.literal("</call>")})));
  const auto cg = CompiledGrammar::compile(g);
  //                                      0     1      2      3       4     5       6      7     8
  const std::vector<std::string> pieces = {"hi ", "<ca", "ll>", "12", "</call>", "x", "<call>", "", "7"};
  const VocabTrie trie(pieces);
  TokenMask mask;
  {
    GrammarMatcher m(cg, trie, std::vector<int32_t>{7});
    m.set_lazy({{.text = "<call>", .token = -1}}, true);
    EXPECT_TRUE(m.unconstrained());
    EXPECT_TRUE(m.accept(0) && m.accept(5) && m.accept(1));  // anything goes while waiting
    EXPECT_TRUE(m.unconstrained());
    EXPECT_TRUE(m.accept(2));  // "<ca" + "ll>": the trigger, split across two tokens
    EXPECT_FALSE(m.unconstrained());
    m.fill_mask(mask);
    EXPECT_TRUE(mask.test(3) && mask.test(8));
    EXPECT_FALSE(mask.test(4) || mask.test(0) || mask.test(7));
    EXPECT_TRUE(m.accept(3) && m.accept(4));
    EXPECT_TRUE(m.finished());
  }
  {
    // The trigger outside the language: the grammar starts after it.
    Grammar digits;
    digits.set_root(digits.add_rule("root", digits.plus(digits.char_class({{'0', '9'}}))));
    GrammarMatcher m(CompiledGrammar::compile(digits), trie, std::vector<int32_t>{7});
    m.set_lazy({{.text = "<call>", .token = 6}}, false);
    EXPECT_TRUE(m.accept(0) && m.accept(6));
    EXPECT_FALSE(m.unconstrained());
    m.fill_mask(mask);
    EXPECT_EQ(mask.count(), 2);  // "12" and "7": the end token only once a digit is there
    EXPECT_TRUE(m.accept(8));
    EXPECT_TRUE(m.can_end());
  }
  {
    // Bytes after the trigger that the grammar rejects: the constraint gives up, output stays free.
    const std::vector<std::string> p2 = {"<call>x", "y", ""};
    const VocabTrie t2(p2);
    GrammarMatcher m(cg, t2, std::vector<int32_t>{2});
    m.set_lazy({{.text = "<call>", .token = -1}}, true);
    EXPECT_TRUE(m.accept(0));
    EXPECT_TRUE(m.unconstrained());
    EXPECT_FALSE(m.finished());
    EXPECT_TRUE(m.accept(1));
  }
}

// Triggers at the start only (Llama 3.x calls), and control tokens standing for their text.
TEST(GrammarMatcher, StartOnlyTriggersAndControlTokenTexts) {
  Grammar g;
  g.set_root(
      g.add_rule("root", g.sequence({g.literal("{\"n\":"), g.plus(g.char_class({{'0', '9'}})), g.literal("}")})));
  const auto cg = CompiledGrammar::compile(g);
  //                                      0      1      2     3      4     5   6 (control: no bytes)
  const std::vector<std::string> pieces = {"{\"", "n\":", "12", "}", "ok ", "", ""};
  const VocabTrie trie(pieces);
  {
    GrammarMatcher m(cg, trie, std::vector<int32_t>{5});
    m.set_lazy({{.text = "{\"n\":", .token = -1}}, true, true);
    EXPECT_TRUE(m.accept(0));
    EXPECT_TRUE(m.unconstrained());  // "{\"" could still begin the trigger
    EXPECT_TRUE(m.accept(1));
    EXPECT_FALSE(m.unconstrained());
    EXPECT_TRUE(m.accept(2) && m.accept(3) && m.finished());
  }
  {
    GrammarMatcher m(cg, trie, std::vector<int32_t>{5});
    m.set_lazy({{.text = "{\"n\":", .token = -1}}, true, true);
    EXPECT_TRUE(m.accept(4));  // "ok " cannot begin the trigger: the constraint stays idle for good
    EXPECT_TRUE(m.accept(0) && m.accept(1));
    EXPECT_TRUE(m.unconstrained());
  }
  {
    Grammar marked;
    marked.set_root(marked.add_rule("root", marked.sequence({marked.literal("[CALL]"), marked.literal("12")})));
    GrammarMatcher m(CompiledGrammar::compile(marked), trie, std::vector<int32_t>{5});
    m.add_token_text(6, "[CALL]");
    TokenMask mask;
    m.fill_mask(mask);
    EXPECT_EQ(mask.count(), 1);
    EXPECT_TRUE(mask.test(6));
    EXPECT_TRUE(m.accept(6) && m.accept(2) && m.finished());
  }
}

// Real vocabularies: BPE with byte-level pieces (128k tokens) and SPM with byte-fallback tokens.
// Every mask of random walks through the JSON-like grammar equals the tokens checked one by one.
TEST(GrammarMatcher, MasksOnRealVocabulariesEqualTokensCheckedOneByOne) {
  EMBER_SHARED_DATA_OR_SKIP(data);
  // Strings of bounded length: masks there take whole trie subtrees by token length.
  const Grammar bounded = json_schema_grammar(
      R"({"type":"object","properties":{"code":{"type":"string","minLength":4,"maxLength":4},)"
      R"("bio":{"type":"string","maxLength":10},"tags":{"type":"array","items":{"type":"string","pattern":"^[a-z]{2,12}$"}}},)"
      R"("required":["code","bio","tags"]})");
  for (const char* name : {"llama-bpe", "llama-spm"}) {
    SCOPED_TRACE(name);
    const Tokenizer tok =
        Tokenizer::from_gguf(GgufFile::open((data / "vocab" / (std::string("ggml-vocab-") + name + ".gguf")).string()));
    const VocabTrie& trie = tok.vocab_trie();
    ASSERT_GT(trie.token_count(), tok.vocab().size() / 2);
    const std::vector<int32_t>& eog = tok.vocab().end_of_generation();
    for (const bool json : {true, false}) {
      const auto cg = CompiledGrammar::compile(json ? json_like() : bounded);
      MaskCache cache(size_t{64} << 20);
      std::mt19937 rng(5);
      TokenMask mask;
      int dense = 0;
      GrammarMatcher::WalkStats stats;
      for (int walk = 0; walk < 3; ++walk) {
        GrammarMatcher m(cg, trie, eog, &cache);
        for (int step = 0; step < 12 && !m.finished(); ++step) {
          m.fill_mask(mask);
          std::vector<int32_t> allowed;
          for (int32_t t = 0; t < trie.n_vocab(); ++t) {
            ASSERT_EQ(mask.test(t), m.allows(t))
                << "walk " << walk << " step " << step << " token " << t << " '" << trie.piece(t) << "'";
            if (mask.test(t)) allowed.push_back(t);
          }
          ASSERT_FALSE(allowed.empty());
          dense += static_cast<int32_t>(allowed.size()) > trie.n_vocab() / 2 ? 1 : 0;
          ASSERT_TRUE(m.accept(allowed[rng() % allowed.size()]));
        }
        stats.whole_runs += m.walk_stats().whole_runs;
        stats.sliced_runs += m.walk_stats().sliced_runs;
      }
      EXPECT_GT(stats.whole_runs, 0u);
      if (json) {
        EXPECT_GT(dense, 0);  // the walks went inside strings, where most tokens fit
      } else {
        EXPECT_GT(stats.sliced_runs, 0u);
      }
    }
  }
}

}  // namespace
}  // namespace ember::grammar
