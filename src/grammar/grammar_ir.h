// The grammar IR every output constraint compiles to (DESIGN.md §7): named rules whose bodies are
// expressions over Unicode code points — literals, character classes, rule references, sequences,
// choices and counted repetition. GBNF, JSON Schema, regex and the built-in JSON grammar all build
// one; compiled_grammar.h turns it into per-rule byte automata for the matcher.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ember::grammar {

// Code points first..last, inclusive.
struct CodepointRange {
  uint32_t first = 0;
  uint32_t last = 0;
  friend bool operator==(const CodepointRange&, const CodepointRange&) = default;
};

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;
inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();  // Repeat::max: no limit
// Repetition counts above this are refused by the builders (an error naming the construct).
inline constexpr uint32_t kMaxRepeat = 100000;

using ExprId = int32_t;
using RuleId = int32_t;

enum class ExprKind : uint8_t {
  kEmpty,     // the empty string
  kLiteral,   // the bytes of `literal` (valid UTF-8, non-empty)
  kClass,     // one code point in `ranges` (sorted, disjoint, non-adjacent, non-empty, no surrogates)
  kRef,       // the rule `rule`
  kSequence,  // `children` one after the other (two or more)
  kChoice,    // one of `children` (two or more)
  kRepeat,    // children[0], between min and max times (max may be kUnbounded)
};

struct Expr {
  ExprKind kind = ExprKind::kEmpty;
  std::string literal = {};
  std::vector<CodepointRange> ranges = {};
  RuleId rule = -1;
  std::vector<ExprId> children = {};
  uint32_t min = 0;
  uint32_t max = 0;
};

struct Rule {
  std::string name;
  ExprId body = -1;  // -1 until defined
  // Keep this rule a rule of its own in the compiled grammar instead of inlining it into its
  // callers: the JSON builtins (string, number, value, ...) set it so that every grammar using
  // them shares their token-mask cache entries.
  bool shared = false;
};

// A grammar under construction and, once every rule has a body, complete. The builders below
// normalize as they go (a sequence of one is that one, nested choices flatten, a class is sorted
// and merged, a literal "" is kEmpty), so equal languages built the same way give equal IR.
class Grammar {
 public:
  // --- expressions (ids index this grammar's expression table) --------------------------------
  ExprId empty();
  ExprId literal(std::string_view utf8);  // "" gives empty(); the text must be valid UTF-8
  ExprId codepoint(uint32_t cp);          // a literal of one code point
  // Any one code point in `ranges` (any order, may overlap), or with `negate` any code point
  // (U+0000..U+10FFFF, surrogates excluded) outside them. Surrogates are removed. Returns -1 when
  // the class is empty (the caller reports the error with its position).
  ExprId char_class(std::vector<CodepointRange> ranges, bool negate = false);
  ExprId any_codepoint();  // `.` of GBNF: every code point but the surrogates
  ExprId ref(RuleId rule);
  ExprId sequence(std::vector<ExprId> items);              // {} gives empty()
  ExprId choice(std::vector<ExprId> alternatives);         // must be non-empty
  ExprId repeat(ExprId item, uint32_t min, uint32_t max);  // min <= max <= kMaxRepeat or max == kUnbounded
  ExprId optional(ExprId item) { return repeat(item, 0, 1); }
  ExprId star(ExprId item) { return repeat(item, 0, kUnbounded); }
  ExprId plus(ExprId item) { return repeat(item, 1, kUnbounded); }

  // --- rules ----------------------------------------------------------------------------------
  // Declares a rule (its body comes later, so rules may refer to each other). Names are unique:
  // declaring an existing name returns the existing rule.
  RuleId declare_rule(std::string_view name);
  void define_rule(RuleId rule, ExprId body);
  RuleId add_rule(std::string_view name, ExprId body) {
    const RuleId r = declare_rule(name);
    define_rule(r, body);
    return r;
  }
  // A name not yet used, from `base` ("base", "base-1", "base-2", ...), for synthesized rules.
  std::string fresh_name(std::string_view base) const;
  RuleId find_rule(std::string_view name) const;  // -1 when absent
  void set_shared(RuleId rule, bool shared = true) { rules_.at(static_cast<size_t>(rule)).shared = shared; }
  void set_root(RuleId rule) { root_ = rule; }

  RuleId root() const noexcept { return root_; }
  const Expr& expr(ExprId id) const { return exprs_.at(static_cast<size_t>(id)); }
  const Rule& rule(RuleId id) const { return rules_.at(static_cast<size_t>(id)); }
  int32_t rule_count() const noexcept { return static_cast<int32_t>(rules_.size()); }
  int32_t expr_count() const noexcept { return static_cast<int32_t>(exprs_.size()); }

  // Copies every rule of `other` (a complete grammar) into this one under its name prefixed with
  // `prefix` (shared flags kept), and returns the id here of other's root: how a larger grammar
  // embeds a JSON Schema's (a tool's arguments in a tool call). Names already taken get fresh ones.
  RuleId import(const Grammar& other, std::string_view prefix);

  // Throws Error(kInvalidArgument) when the root is unset or a rule has no body ("rule 'x' is
  // used but never defined"). Left recursion and rules that can never finish are found by the
  // compiler, which knows the automata.
  void check_complete() const;

  // GBNF text for the grammar (llama.cpp's dialect, rules in id order, root first): for error
  // messages, `ember inspect`-style dumps, round-trip tests and constraints carried as text.
  // Parsing it gives the same language. An expression shared within a rule is written at each use
  // (a DAG printed as a tree can be exponentially long): past `max_bytes` the writing stops with
  // Error(kInvalidArgument).
  std::string to_gbnf(size_t max_bytes = SIZE_MAX) const;

 private:
  ExprId add(Expr e);
  std::vector<Expr> exprs_;
  std::vector<Rule> rules_;
  std::unordered_map<std::string, RuleId> rule_ids_;  // by name
  RuleId root_ = -1;
};

}  // namespace ember::grammar
