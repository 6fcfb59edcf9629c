// The grammar IR's builders, printer and the reference matcher the other grammar tests rely on.
#include "grammar/grammar_ir.h"

#include <gtest/gtest.h>

#include "ember/error.h"
#include "grammar/reference_matcher.h"

namespace ember::grammar {
namespace {

using testing::reference_matches;

TEST(GrammarIr, ClassesAreNormalizedAndNegatedWithoutSurrogates) {
  Grammar g;
  const Expr& merged = g.expr(g.char_class({{'c', 'f'}, {'a', 'b'}, {'e', 'k'}}));
  ASSERT_EQ(merged.ranges.size(), 1u);
  EXPECT_EQ(merged.ranges[0], (CodepointRange{'a', 'k'}));
  const Expr& neg = g.expr(g.char_class({{'a', 'a'}}, true));
  ASSERT_EQ(neg.ranges.size(), 3u);  // 0..'a'-1, 'b'..D7FF, E000..10FFFF
  EXPECT_EQ(neg.ranges[0], (CodepointRange{0, 'a' - 1}));
  EXPECT_EQ(neg.ranges[1], (CodepointRange{'b', 0xD7FF}));
  EXPECT_EQ(neg.ranges[2], (CodepointRange{0xE000, kMaxCodepoint}));
  EXPECT_EQ(g.char_class({{0, kMaxCodepoint}}, true), -1);
  EXPECT_EQ(g.char_class({{0xD800, 0xDFFF}}), -1);
}

TEST(GrammarIr, SequencesAndChoicesFlatten) {
  Grammar g;
  const ExprId a = g.literal("a");
  const ExprId seq = g.sequence({g.empty(), a, g.sequence({a, a})});
  EXPECT_EQ(g.expr(seq).children.size(), 3u);
  EXPECT_EQ(g.sequence({a}), a);
  EXPECT_EQ(g.expr(g.sequence({})).kind, ExprKind::kEmpty);
  EXPECT_EQ(g.expr(g.choice({a, g.choice({a, a})})).children.size(), 3u);
  EXPECT_EQ(g.expr(g.literal("")).kind, ExprKind::kEmpty);
  EXPECT_EQ(g.repeat(a, 1, 1), a);
}

TEST(GrammarIr, CheckCompleteNamesTheUndefinedRule) {
  Grammar g;
  const RuleId root = g.add_rule("root", g.ref(g.declare_rule("item")));
  g.set_root(root);
  try {
    g.check_complete();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("'item'"), std::string::npos) << e.what();
  }
}

TEST(GrammarIr, PrintsGbnf) {
  Grammar g;
  const RuleId item = g.declare_rule("item");
  g.define_rule(item, g.choice({g.literal("a\"b"),
                                g.sequence({g.char_class({{'0', '9'}, {'-', '-'}}), g.repeat(g.literal("x"), 2, 5)})}));
  g.set_root(g.add_rule("root", g.sequence({g.star(g.ref(item)), g.optional(g.literal("é\n"))})));
  EXPECT_EQ(g.to_gbnf(), "root ::= item* \"é\\n\"?\nitem ::= \"a\\\"b\" | [\\-0-9] \"x\"{2,5}\n");
}

TEST(GrammarIr, ImportEmbedsAnotherGrammarUnderAPrefix) {
  Grammar inner;
  const RuleId digits = inner.add_rule("digits", inner.plus(inner.char_class({{'0', '9'}})));
  inner.set_shared(digits);
  inner.set_root(inner.add_rule("root", inner.sequence({inner.literal("("), inner.ref(digits), inner.literal(")")})));

  Grammar outer;
  outer.declare_rule("a-root");  // taken: the import must pick a fresh name
  outer.define_rule(outer.find_rule("a-root"), outer.literal("x"));
  const RuleId first = outer.import(inner, "a-");
  const RuleId second = outer.import(inner, "b-");
  outer.set_root(outer.add_rule("root", outer.sequence({outer.ref(first), outer.literal(","), outer.ref(second)})));
  EXPECT_NE(outer.rule(first).name, "a-root");
  EXPECT_TRUE(outer.rule(outer.find_rule("a-digits")).shared);
  EXPECT_TRUE(reference_matches(outer, "(12),(3)"));
  EXPECT_FALSE(reference_matches(outer, "(12),()"));
  EXPECT_FALSE(reference_matches(outer, "x,(3)"));
}

TEST(ReferenceMatcher, MatchesWholeTextsOnly) {
  Grammar g;
  const RuleId list = g.declare_rule("list");
  // list ::= "[" (item ("," item)*)? "]" ; item ::= [a-z]+ | list   (recursive, not left-recursive)
  const ExprId item = g.choice({g.plus(g.char_class({{'a', 'z'}})), g.ref(list)});
  g.define_rule(list,
                g.sequence({g.literal("["), g.optional(g.sequence({item, g.star(g.sequence({g.literal(","), item}))})),
                            g.literal("]")}));
  g.set_root(list);
  EXPECT_TRUE(reference_matches(g, "[]"));
  EXPECT_TRUE(reference_matches(g, "[ab,[c,[]],d]"));
  EXPECT_FALSE(reference_matches(g, "[ab,]"));
  EXPECT_FALSE(reference_matches(g, "[ab"));
  EXPECT_FALSE(reference_matches(g, "[ab]]"));
}

TEST(ReferenceMatcher, CountsRepetitionsAndCodepoints) {
  Grammar g;
  g.set_root(g.add_rule("root", g.repeat(g.char_class({{0x80, kMaxCodepoint}}), 2, 3)));
  EXPECT_FALSE(reference_matches(g, "é"));
  EXPECT_TRUE(reference_matches(g, "éé"));
  EXPECT_TRUE(reference_matches(g, "é😀é"));
  EXPECT_FALSE(reference_matches(g, "éééé"));
  EXPECT_FALSE(reference_matches(g, "\xC3\xC3"));  // invalid UTF-8 never matches a class
}

}  // namespace
}  // namespace ember::grammar
